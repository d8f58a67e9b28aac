"""Async engines for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from loanfund.config import normalise_database_url


def is_postgres(conn_or_engine: AsyncConnection | AsyncEngine) -> bool:
    return conn_or_engine.dialect.name == "postgresql"


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """`hide_parameters`: a failed statement's error and log carry no values, which may be ID numbers."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        # One connection per process: SQLite has one writer anyway, and a single connection turns
        # concurrent requests of this process into a queue instead of "database is locked" errors.
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=60,
    )
    if engine.dialect.driver == "asyncpg":
        _ping_in_one_round_trip(engine)
    _ping_after_idle(engine)
    return engine


# A connection back in the pool for less than this is reused without a ping.
IDLE_BEFORE_PING_SECONDS = 1.0


def _ping_after_idle(engine: AsyncEngine) -> None:
    """The pool's pessimistic disconnect check, only for connections that sat idle.

    `pool_pre_ping` pings on every checkout: under load that is one round trip in each request, about a
    sixth of an approval's CPU (docs/performance.md). A connection the server dropped (a restart, an
    idle timeout, a failover) is found by the ping after it sat in the pool for a second; one checked in
    a moment ago was just used. A failed ping raises `DisconnectionError`, which makes the pool discard
    the connection and check out another (SQLAlchemy's documented recipe)."""
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def on_checkin(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def on_checkout(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        idle_since = connection_record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"connection dropped while idle: {error}") from error
        if not alive:
            raise exc.DisconnectionError("connection dropped while idle")


def _ping_in_one_round_trip(engine: AsyncEngine) -> None:
    """The pool's pre-ping (which replaces connections the server has dropped) in one round trip.

    SQLAlchemy's asyncpg dialect wraps its ping in BEGIN … ROLLBACK, three round trips on every
    checkout, for PgBouncer's transaction pooling, which loanfund cannot sit behind anyway (asyncpg
    prepares its statements per session). In autocommit mode the same ping sends only the empty query.
    """
    dialect = engine.dialect
    ping = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        if getattr(dbapi_connection, "autocommit", True):
            return ping(dbapi_connection)
        dbapi_connection.autocommit = True
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.autocommit = False  # back to the isolation level it had

    dialect.do_ping = do_ping  # type: ignore[method-assign]


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event open transactions itself (BEGIN IMMEDIATE below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN so two processes never deadlock upgrading read locks.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

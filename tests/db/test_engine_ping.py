"""The pool pings a connection only after it sat idle, and replaces one the server dropped meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa

from loanfund.db import engine as engine_module
from loanfund.db.engine import create_engine

pytestmark = pytest.mark.postgres_only


async def _backend_pid(engine: sa.ext.asyncio.AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT pg_backend_pid()")))


async def test_a_connection_dropped_while_idle_is_replaced(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_BEFORE_PING_SECONDS", 0.2)
    engine = create_engine(db_url, pool_size=1)
    try:
        pid = await _backend_pid(engine)
        admin = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
        # The pooled connection is dead; the ping finds it and the pool opens another.
        assert await _backend_pid(engine) != pid
    finally:
        await engine.dispose()


async def test_a_connection_reused_at_once_is_not_pinged(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=1)
    try:
        pings: list[object] = []
        original = engine.dialect.do_ping
        engine.dialect.do_ping = lambda connection: pings.append(connection) or original(connection)  # type: ignore[method-assign]
        first = await _backend_pid(engine)
        second = await _backend_pid(engine)
        assert first == second
        assert pings == []
    finally:
        await engine.dispose()

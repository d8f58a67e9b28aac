"""Events that partner banks and regions poll (`GET /events`): an append-only, ordered feed.

An event is written in the same transaction as the change it reports (an outbox), so a reader never
sees an event of a change that rolled back, nor misses one that committed.

Exactly once, in order. Ids come from a sequence when a transaction writes its events, but
transactions commit in another order: reading "ids above my cursor" would skip an event with a
smaller id that commits after a larger one was read. So the feed's order is (tx_id, id), where
`tx_id` is the writing transaction's id on PostgreSQL (`pg_current_xact_id()`), and a reader sees
only events whose transaction is below the oldest transaction still running in its snapshot (like
`pg_snapshot_xmin(pg_current_snapshot())`, but leaving out transactions of other databases on the same
server): every transaction below it has ended, so nothing can appear before them any more, and every
transaction that has not ended — or has not begun — has a larger id, so whatever it writes comes
after. A cursor is the last event id read; its position is looked up. On SQLite writers take turns
(one database lock), ids are given in commit order, and `tx_id` is 0. A long-running write
transaction in this database delays the feed (never loses an event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import events
from loanfund.errors import invalid

# Built once: a statement object keeps its compiled form cached, and the values go in as parameters.
_INSERT = events.insert()


def _xid(value: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    # xid8 has no cast to bigint; its text form has one (a 64-bit xid never reaches 2**63 in practice).
    return sa.cast(sa.cast(value, sa.Text), sa.BigInteger)


_INSERT_POSTGRES = events.insert().values(tx_id=_xid(sa.func.pg_current_xact_id()))


def tx_id_column(conn: AsyncConnection) -> sa.ColumnElement[int]:
    """The `tx_id` an event written by this connection's transaction must carry, for writers that insert
    events with `INSERT … SELECT` (the scheduled jobs' alerts) instead of `write_all`."""
    if conn.dialect.name == "postgresql":
        return _xid(sa.func.pg_current_xact_id())
    return sa.literal(0, sa.BigInteger())


# The oldest transaction still running in the statement's snapshot, leaving out those that
# pg_stat_activity shows in other databases of the server (they can never write this table, and a
# server often holds other databases); without any, the snapshot's xmax. An xid that cannot be placed
# (a prepared transaction, a backend that just ended) counts as this database's: it may only delay.
_OLDEST_RUNNING = sa.literal_column(
    """(SELECT coalesce(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
    FROM pg_snapshot_xip(pg_current_snapshot()) AS x
    WHERE x::text::bigint NOT IN (
        SELECT backend_xid::text::bigint FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()))""",
    type_=sa.BigInteger(),
)


def row(
    type: str,
    *,
    fund_code: str | None,
    region_code: str | None,
    bank_code: str | None,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """An event as `write_all` writes it (see `loanfund.uow.Tx.emit`)."""
    return {
        "occurred_at": utcnow(),
        "type": type,
        "fund_code": fund_code,
        "region_code": region_code,
        "bank_code": bank_code,
        "data": dict(data),
    }


async def write_all(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(_INSERT_POSTGRES if conn.dialect.name == "postgresql" else _INSERT, list(rows))


async def emit(
    conn: AsyncConnection,
    type: str,
    *,
    fund_code: str | None,
    region_code: str | None,
    bank_code: str | None,
    data: Mapping[str, Any],
) -> None:
    await write_all(
        conn, [row(type, fund_code=fund_code, region_code=region_code, bank_code=bank_code, data=data)]
    )


async def list_events(
    conn: AsyncConnection,
    *,
    bank_code: str | None = None,
    region_prefix: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Events in feed order after the cursor; a bank sees its own bank's, a region role its region's.

    `after_id` is the id of an event read before (any caller's: only its position is used); an id
    that is no event is refused.
    """
    query = sa.select(events).order_by(events.c.tx_id, events.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.where(events.c.tx_id < _OLDEST_RUNNING)
    if bank_code is not None:
        query = query.where(events.c.bank_code == bank_code)
    if region_prefix is not None:
        query = query.where(events.c.region_code.startswith(region_prefix, autoescape=True))
    if after_id is not None:
        tx_id = await conn.scalar(sa.select(events.c.tx_id).where(events.c.id == after_id))
        if tx_id is None:
            raise invalid("after", "is not the id of an event")
        query = query.where(
            sa.tuple_(events.c.tx_id, events.c.id) > sa.tuple_(sa.literal(tx_id), sa.literal(after_id))
        )
    return list((await conn.execute(query)).all())

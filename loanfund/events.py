"""Events that partner banks and regions poll (`GET /events`): an append-only, ordered feed.

An event is written in the same transaction as the change it reports, so a reader never sees an event
of a change that rolled back, nor misses one that committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import events

# Built once: a statement object keeps its compiled form cached, and the values go in as parameters.
_INSERT = events.insert()


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
        await conn.execute(_INSERT, list(rows))


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
    """Events in order of occurrence; a bank sees its own bank's, a region role its region's."""
    query = sa.select(events).order_by(events.c.id).limit(limit)
    if bank_code is not None:
        query = query.where(events.c.bank_code == bank_code)
    if region_prefix is not None:
        query = query.where(events.c.region_code.startswith(region_prefix, autoescape=True))
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    return list((await conn.execute(query)).all())

"""Reference-rate fixings in the database: the starting data (seeded by the first migration) plus
the fixings administrators add."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import reference_rate_fixings as fixings_table
from loanfund.errors import Duplicate
from loanfund.rates.reference import Fixing, RateTable, starting_dense_through
from loanfund.uow import Tx


async def rate_table(conn: AsyncConnection) -> RateTable:
    rows = await conn.execute(
        sa.select(fixings_table.c.kind, fixings_table.c.effective_on, fixings_table.c.rate_pct)
    )
    return RateTable(
        (Fixing(row.kind, row.effective_on, row.rate_pct) for row in rows),
        dense_through=starting_dense_through(),
    )


async def add_fixing(tx: Tx, *, kind: str, effective_on: date, rate_pct: Decimal) -> Fixing:
    conn = tx.conn
    fixing = Fixing(kind, effective_on, rate_pct)  # validates kind and rate
    existing = await conn.scalar(
        sa.select(fixings_table.c.rate_pct).where(
            fixings_table.c.kind == kind, fixings_table.c.effective_on == effective_on
        )
    )
    if existing is not None:
        raise Duplicate(f"{kind} already has a fixing on {effective_on}", rate_pct=str(existing))
    await conn.execute(
        fixings_table.insert().values(
            kind=kind, effective_on=effective_on, rate_pct=rate_pct, source="admin", created_at=utcnow()
        )
    )
    tx.audit(
        "reference_rate.added",
        "reference_rate",
        f"{kind}:{effective_on.isoformat()}",
        {"kind": kind, "effective_on": effective_on.isoformat(), "rate_pct": str(rate_pct)},
    )
    return fixing

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
from loanfund.rates.reference import Fixing, RateTable, ReferenceRate, band_for, starting_dense_through
from loanfund.uow import Tx


async def rate_table(conn: AsyncConnection) -> RateTable:
    rows = await conn.execute(
        sa.select(fixings_table.c.kind, fixings_table.c.effective_on, fixings_table.c.rate_pct)
    )
    return RateTable(
        (Fixing(row.kind, row.effective_on, row.rate_pct) for row in rows),
        dense_through=starting_dense_through(),
    )


_COLUMNS = (fixings_table.c.kind, fixings_table.c.effective_on, fixings_table.c.rate_pct)
_OF_KIND = fixings_table.c.kind == sa.bindparam("b_kind")
# The two fixings of a band that pricing a loan can use: the latest on or before the contract date,
# and the first of the band (which a refusal for a date before it names).
_FOR_LOAN = sa.union_all(
    sa.select(*_COLUMNS)
    .where(_OF_KIND, fixings_table.c.effective_on <= sa.bindparam("b_on"))
    .order_by(fixings_table.c.effective_on.desc())
    .limit(1)
    .subquery()
    .select(),
    sa.select(*_COLUMNS).where(_OF_KIND).order_by(fixings_table.c.effective_on).limit(1).subquery().select(),
)


async def rate_for_loan(conn: AsyncConnection, term_months: int, contract_date: date) -> ReferenceRate:
    """`(await rate_table(conn)).for_loan(term_months, contract_date)` reading two fixings instead of
    the whole table (every disbursement prices a loan); the same rate, flag and refusals."""
    kind = band_for(term_months, contract_date)
    rows = await conn.execute(_FOR_LOAN, {"b_kind": kind, "b_on": contract_date})
    table = RateTable(
        (Fixing(row.kind, row.effective_on, row.rate_pct) for row in rows),
        dense_through=starting_dense_through(),
    )
    return table.reference(kind, contract_date)


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

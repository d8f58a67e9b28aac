"""Every SQL read of compensation claims, recoveries and write-offs, and the sums compensation rates need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.rows import read_model
from loanfund.db.tables import compensation_claims, loan_recoveries, loan_write_offs, loans
from loanfund.errors import NotFound
from loanfund.listing import ListFilter, filtered

SUBMITTED, PAID, REJECTED = "submitted", "paid", "rejected"
STATUSES = (SUBMITTED, PAID, REJECTED)


@dataclass(frozen=True)
class Claim:
    id: str
    loan_id: str
    fund_code: str
    bank_code: str
    region_code: str
    agreement_id: str
    claimed_on: date
    days_past_due: int
    claim_after_days: int
    base_principal_fen: int
    base_interest_fen: int
    fund_loss_share_pct: Decimal
    amount_fen: int
    status: str
    filed_by: str | None
    filed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decided_on: date | None
    reason: str | None
    entry_id: str | None
    recovered_fund_fen: int
    recovered_bank_fen: int
    written_off_fen: int

    @property
    def base_fen(self) -> int:
        return self.base_principal_fen + self.base_interest_fen

    @property
    def recoverable_fen(self) -> int:
        """Paid by the fund and neither recovered nor written off yet."""
        if self.status != PAID:
            return 0
        return self.amount_fen - self.recovered_fund_fen - self.written_off_fen


@dataclass(frozen=True)
class Recovery:
    id: str
    loan_id: str
    claim_id: str
    amount_fen: int
    fund_part_fen: int
    bank_part_fen: int
    recovered_on: date
    entry_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class WriteOff:
    id: str
    loan_id: str
    claim_id: str
    amount_fen: int
    reason: str
    written_off_on: date
    entry_id: str | None
    created_at: datetime


def claim_from_row(row: Any) -> Claim:
    return read_model(Claim, row)


async def get_claim(conn: AsyncConnection, claim_id: str, *, for_update: bool = False) -> Claim:
    query = sa.select(compensation_claims).where(compensation_claims.c.id == claim_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"compensation claim {claim_id} not found")
    return claim_from_row(row)


async def open_claim(conn: AsyncConnection, loan_id: str, *, for_update: bool = False) -> Claim | None:
    """The loan's claim that is submitted or paid (at most one: a unique column says so)."""
    query = sa.select(compensation_claims).where(compensation_claims.c.open_loan_id == loan_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else claim_from_row(row)


async def list_claims(
    conn: AsyncConnection,
    *,
    region_prefix: str | None = None,
    bank_code: str | None = None,
    fund_code: str | None = None,
    loan_id: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Claim]:
    query = filtered(
        compensation_claims,
        ListFilter(
            region_prefix=region_prefix, bank_code=bank_code, fund_code=fund_code, after=after, limit=limit
        ),
    )
    if loan_id is not None:
        query = query.where(compensation_claims.c.loan_id == loan_id)
    if status is not None:
        query = query.where(compensation_claims.c.status == status)
    return [claim_from_row(row) for row in await conn.execute(query)]


async def recoveries(conn: AsyncConnection, loan_id: str) -> list[Recovery]:
    query = (
        sa.select(loan_recoveries)
        .where(loan_recoveries.c.loan_id == loan_id)
        .order_by(loan_recoveries.c.recovered_on, loan_recoveries.c.id)
    )
    return [read_model(Recovery, row) for row in await conn.execute(query)]


async def write_off_of(conn: AsyncConnection, loan_id: str) -> WriteOff | None:
    row = (await conn.execute(sa.select(loan_write_offs).where(loan_write_offs.c.loan_id == loan_id))).first()
    if row is None:
        return None
    return read_model(WriteOff, row)


async def compensation_paid_fen(
    conn: AsyncConnection, fund_code: str, bank_code: str | None, after: date, through: date
) -> int:
    """Compensation paid on days in (after, through] by the fund (at one bank, or all)."""
    query = sa.select(sa.func.coalesce(sa.func.sum(compensation_claims.c.amount_fen), 0)).where(
        compensation_claims.c.fund_code == fund_code,
        compensation_claims.c.status == PAID,
        compensation_claims.c.decided_on > after,
        compensation_claims.c.decided_on <= through,
    )
    if bank_code is not None:
        query = query.where(compensation_claims.c.bank_code == bank_code)
    return int(await conn.scalar(query) or 0)


async def released_principal_fen(
    conn: AsyncConnection, fund_code: str, bank_code: str | None, after: date, through: date
) -> int:
    """Principal of the guarantees released on days in (after, through]: loans repaid in full then,
    and loans whose compensation was paid then (each loan's principal as disbursed)."""
    repaid = sa.select(sa.func.coalesce(sa.func.sum(loans.c.principal_fen), 0)).where(
        loans.c.fund_code == fund_code,
        loans.c.repaid_on.is_not(None),
        loans.c.repaid_on > after,
        loans.c.repaid_on <= through,
    )
    compensated = (
        sa.select(sa.func.coalesce(sa.func.sum(loans.c.principal_fen), 0))
        .select_from(loans.join(compensation_claims, compensation_claims.c.loan_id == loans.c.id))
        .where(
            compensation_claims.c.fund_code == fund_code,
            compensation_claims.c.status == PAID,
            compensation_claims.c.decided_on > after,
            compensation_claims.c.decided_on <= through,
        )
    )
    if bank_code is not None:
        repaid = repaid.where(loans.c.bank_code == bank_code)
        compensated = compensated.where(compensation_claims.c.bank_code == bank_code)
    row = (await conn.execute(sa.select(repaid.scalar_subquery(), compensated.scalar_subquery()))).one()
    return int(row[0] or 0) + int(row[1] or 0)

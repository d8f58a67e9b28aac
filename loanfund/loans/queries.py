"""Every read of loans and their repayments. Status `overdue` and `days_past_due` are derived here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import loan_extensions, loan_repayments, loans
from loanfund.errors import NotFound
from loanfund.listing import ListFilter, filtered
from loanfund.uow import Tx


class LoanStatus(StrEnum):
    ACTIVE = "active"
    OVERDUE = "overdue"  # derived: active and past due
    REPAID = "repaid"
    COMPENSATED = "compensated"
    WRITTEN_OFF = "written_off"


STATUSES = tuple(LoanStatus)


@dataclass(frozen=True)
class Repayment:
    id: str
    loan_id: str
    principal_fen: int
    interest_fen: int
    paid_on: date
    outstanding_after_fen: int
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class Extension:
    id: str
    previous_maturity_on: date
    new_maturity_on: date
    guarantor_consent: bool
    extended_on: date
    created_by: str | None


@dataclass(frozen=True)
class LoanRecord:
    """A loan's stored facts, with its status and days past due derived on the day asked."""

    id: str
    application_id: str
    fund_code: str
    bank_code: str
    borrower_id: str
    region_code: str
    guarantee_id: str
    loan_number: str
    principal_fen: int
    outstanding_fen: int
    annual_rate_pct: Decimal
    disbursed_on: date
    contracted_on: date
    maturity_on: date
    original_maturity_on: date
    term_months: int
    reference_rate_kind: str
    reference_rate_pct: Decimal
    reference_rate_date: date
    reference_rate_stale: bool
    rate_ceiling_pct: Decimal
    policy_edition: str
    status: str  # effective on the day asked
    stored_status: str
    overdue_since: date | None  # first day overdue by a reported missed instalment
    overdue_principal_fen: int
    days_past_due: int
    extension_count: int
    repaid_on: date | None
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class Loan(LoanRecord):
    interest_paid_fen: int  # the sum of the interest of its repayments


@dataclass(frozen=True)
class LockedLoan(LoanRecord):
    """A loan whose row the transaction holds locked until it ends (`lock_loan`); commands on a loan
    take one. It has no interest paid: that is read after the lock by whoever needs it, since a read
    in the locking statement itself could miss a repayment committed while it waited."""


LoanT = TypeVar("LoanT", bound=LoanRecord)


def overdue_from(stored_status: str, overdue_since: date | None, maturity_on: date) -> date | None:
    """The first day an active loan is overdue: a reported missed instalment, or the day after maturity."""
    if stored_status != "active":
        return None
    after_maturity = maturity_on + timedelta(days=1)
    return min(overdue_since, after_maturity) if overdue_since is not None else after_maturity


def days_past_due(stored_status: str, overdue_since: date | None, maturity_on: date, today: date) -> int:
    """Days overdue as of `today`, the first overdue day counting as 1 (so a loan maturing on the 10th
    is 1 day past due on the 11th); 0 when the loan is not overdue."""
    start = overdue_from(stored_status, overdue_since, maturity_on)
    if start is None or today < start:
        return 0
    return (today - start).days + 1


def overdue_on(day: date) -> sa.ColumnElement[bool]:
    """Loans whose derived status is `overdue` on `day`: `days_past_due(…) > 0`, in SQL. Never NULL
    (a loan without a reported missed instalment gives false, not unknown), so it can be negated."""
    reported = sa.and_(loans.c.overdue_since.is_not(None), loans.c.overdue_since <= day)
    return sa.and_(loans.c.status == "active", sa.or_(reported, loans.c.maturity_on < day))


def _record(row: Any, today: date) -> dict[str, Any]:
    dpd = days_past_due(row.status, row.overdue_since, row.maturity_on, today)
    return dict(
        id=row.id,
        application_id=row.application_id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        borrower_id=row.borrower_id,
        region_code=row.region_code,
        guarantee_id=row.guarantee_id,
        loan_number=row.loan_number,
        principal_fen=row.principal_fen,
        outstanding_fen=row.outstanding_fen,
        annual_rate_pct=row.annual_rate_pct,
        disbursed_on=row.disbursed_on,
        contracted_on=row.contracted_on,
        maturity_on=row.maturity_on,
        original_maturity_on=row.original_maturity_on,
        term_months=row.term_months,
        reference_rate_kind=row.reference_rate_kind,
        reference_rate_pct=row.reference_rate_pct,
        reference_rate_date=row.reference_rate_date,
        reference_rate_stale=bool(row.reference_rate_stale),
        rate_ceiling_pct=row.rate_ceiling_pct,
        policy_edition=row.policy_edition,
        status="overdue" if dpd > 0 else row.status,
        stored_status=row.status,
        overdue_since=row.overdue_since,
        overdue_principal_fen=row.overdue_principal_fen,
        days_past_due=dpd,
        extension_count=row.extension_count,
        repaid_on=row.repaid_on,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _loan(row: Any, today: date, interest_paid_fen: int) -> Loan:
    return Loan(**_record(row, today), interest_paid_fen=interest_paid_fen)


def new_loan(row: Any, today: date) -> Loan:
    """A loan just disbursed, from its row as inserted: nothing repaid yet."""
    return _loan(row, today, 0)


def with_interest_paid(loan: LoanRecord, interest_paid_fen: int) -> Loan:
    return Loan(
        **{f.name: getattr(loan, f.name) for f in dataclasses.fields(LoanRecord)},
        interest_paid_fen=interest_paid_fen,
    )


def restated(loan: LoanT, today: date, **changes: Any) -> LoanT:
    """The loan with stored fields changed as just written, its status and days past due derived again
    (what `get_loan` would now read, without reading it)."""
    changed = dataclasses.replace(loan, **changes)
    dpd = days_past_due(changed.stored_status, changed.overdue_since, changed.maturity_on, today)
    return dataclasses.replace(
        changed, status="overdue" if dpd > 0 else changed.stored_status, days_past_due=dpd
    )


async def _interest_paid(conn: AsyncConnection, loan_ids: list[str]) -> dict[str, int]:
    if not loan_ids:
        return {}
    query = (
        sa.select(loan_repayments.c.loan_id, sa.func.sum(loan_repayments.c.interest_fen).label("fen"))
        .where(loan_repayments.c.loan_id.in_(loan_ids))
        .group_by(loan_repayments.c.loan_id)
    )
    return {row.loan_id: int(row.fen) for row in await conn.execute(query)}


# Built once (hot paths run them): the compiled forms stay cached, the id is a parameter.
_BY_ID = sa.select(loans).where(loans.c.id == sa.bindparam("b_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
# A separate statement from the (locking) read of the loan: one that waited for the lock must still
# see the repayments committed meanwhile.
_INTEREST_PAID = sa.select(sa.func.coalesce(sa.func.sum(loan_repayments.c.interest_fen), 0)).where(
    loan_repayments.c.loan_id == sa.bindparam("b_id")
)


async def lock_loan(tx: Tx, loan_id: str) -> LockedLoan:
    """The loan, its row locked until the transaction ends."""
    row = (await tx.conn.execute(_BY_ID_FOR_UPDATE, {"b_id": loan_id})).first()
    if row is None:
        raise NotFound(f"loan {loan_id} not found")
    return LockedLoan(**_record(row, tx.today))


async def interest_paid(conn: AsyncConnection, loan_id: str) -> int:
    return int(await conn.scalar(_INTEREST_PAID, {"b_id": loan_id}) or 0)


async def get_loan(conn: AsyncConnection, loan_id: str, today: date) -> Loan:
    row = (await conn.execute(_BY_ID, {"b_id": loan_id})).first()
    if row is None:
        raise NotFound(f"loan {loan_id} not found")
    return _loan(row, today, int(await conn.scalar(_INTEREST_PAID, {"b_id": row.id}) or 0))


async def find_by_number(conn: AsyncConnection, bank_code: str, loan_number: str) -> str | None:
    found = await conn.scalar(
        sa.select(loans.c.id).where(loans.c.bank_code == bank_code, loans.c.loan_number == loan_number)
    )
    return None if found is None else str(found)


def _status_filter(status: str, today: date) -> sa.ColumnElement[bool]:
    if status == "overdue":
        return overdue_on(today)
    if status == "active":
        return sa.and_(loans.c.status == "active", sa.not_(overdue_on(today)))
    return loans.c.status == status


async def list_loans(
    conn: AsyncConnection,
    today: date,
    *,
    region_prefix: str | None = None,
    bank_code: str | None = None,
    fund_code: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Loan]:
    """Loans in id (= disbursement) order; `bank_code` is a filter and, for a bank, its scope."""
    query = filtered(loans, ListFilter(region_prefix, bank_code, fund_code, after, limit))
    if status is not None:
        query = query.where(_status_filter(status, today))
    rows = (await conn.execute(query)).all()
    paid = await _interest_paid(conn, [row.id for row in rows])
    return [_loan(row, today, paid.get(row.id, 0)) for row in rows]


async def get_repayment(conn: AsyncConnection, repayment_id: str) -> Repayment:
    row = (await conn.execute(sa.select(loan_repayments).where(loan_repayments.c.id == repayment_id))).first()
    if row is None:
        raise NotFound(f"repayment {repayment_id} not found")
    return Repayment(
        row.id,
        row.loan_id,
        row.principal_fen,
        row.interest_fen,
        row.paid_on,
        row.outstanding_after_fen,
        row.created_at,
        row.created_by,
    )


async def repayments(conn: AsyncConnection, loan_id: str) -> list[Repayment]:
    query = (
        sa.select(loan_repayments)
        .where(loan_repayments.c.loan_id == loan_id)
        .order_by(loan_repayments.c.paid_on, loan_repayments.c.id)
    )
    return [
        Repayment(
            row.id,
            row.loan_id,
            row.principal_fen,
            row.interest_fen,
            row.paid_on,
            row.outstanding_after_fen,
            row.created_at,
            row.created_by,
        )
        for row in await conn.execute(query)
    ]


async def extensions(conn: AsyncConnection, loan_id: str) -> list[Extension]:
    query = (
        sa.select(loan_extensions).where(loan_extensions.c.loan_id == loan_id).order_by(loan_extensions.c.id)
    )
    return [
        Extension(
            row.id,
            row.previous_maturity_on,
            row.new_maturity_on,
            bool(row.guarantor_consent),
            row.extended_on,
            row.created_by,
        )
        for row in await conn.execute(query)
    ]

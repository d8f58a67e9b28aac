"""Every read of applications. Status `lapsed` is derived here from the guarantee's last day."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.borrowers.queries import Borrower, borrower_from_row
from loanfund.db.tables import application_guarantors, application_other_loans, applications, borrowers
from loanfund.eligibility import queries as eligibility_queries
from loanfund.eligibility.rules import OtherLoanFacts
from loanfund.errors import NotFound
from loanfund.listing import ListFilter, filtered
from loanfund.uow import Tx


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    GUARANTEE_APPROVED = "guarantee_approved"
    DISBURSED = "disbursed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"  # derived: approved, and the guarantee's last day has passed


STATUSES = tuple(ApplicationStatus)


@dataclass(frozen=True)
class Application:
    id: str
    fund_code: str
    bank_code: str
    borrower_id: str
    region_code: str
    amount_fen: int
    term_months: int
    purpose: str
    micro_profit: bool
    guarantee_kind: str
    guarantor_ids: tuple[str, ...]
    collateral_description: str | None
    joint_borrower_ids: tuple[str, ...]
    partner_borrower_ids: tuple[str, ...]
    jobs_created: int
    applied_on: date
    policy_edition: str
    is_4050: bool
    eligibility: dict[str, Any]
    status: str  # effective on the day asked: `lapsed` for an approval whose guarantee has lapsed
    stored_status: str
    guarantee_id: str | None
    guarantee_amount_fen: int | None
    guarantee_expires_on: date | None
    approved_on: date | None
    loan_id: str | None
    submitted_at: datetime
    submitted_by: str | None
    approved_at: datetime | None
    approved_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    disbursed_at: datetime | None
    disbursed_by: str | None


@dataclass(frozen=True)
class LockedApplication(Application):
    """An application whose row the transaction holds locked until it ends (`lock_application`).
    Commands on an application take one, so their decisions are made one at a time. It comes with
    its borrower, read in the same statement (the row of the borrower is not locked), and the other
    loans declared with it (facts fixed at submission)."""

    borrower: Borrower
    other_loans: tuple[OtherLoanFacts, ...]


def effective_status(stored: str, expires_on: date | None, today: date) -> str:
    if stored == "guarantee_approved" and expires_on is not None and expires_on < today:
        return "lapsed"
    return stored


def _application(row: Any, guarantor_ids: tuple[str, ...], today: date) -> Application:
    return Application(
        id=row.id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        borrower_id=row.borrower_id,
        region_code=row.region_code,
        amount_fen=row.amount_fen,
        term_months=row.term_months,
        purpose=row.purpose,
        micro_profit=bool(row.micro_profit),
        guarantee_kind=row.guarantee_kind,
        guarantor_ids=guarantor_ids,
        collateral_description=row.collateral_description,
        joint_borrower_ids=tuple(row.joint_borrower_ids),
        partner_borrower_ids=tuple(row.partner_borrower_ids or ()),
        jobs_created=row.jobs_created,
        applied_on=row.applied_on,
        policy_edition=row.policy_edition,
        is_4050=bool(row.is_4050),
        eligibility=dict(row.eligibility),
        status=effective_status(row.status, row.guarantee_expires_on, today),
        stored_status=row.status,
        guarantee_id=row.guarantee_id,
        guarantee_amount_fen=row.guarantee_amount_fen,
        guarantee_expires_on=row.guarantee_expires_on,
        approved_on=row.approved_on,
        loan_id=row.loan_id,
        submitted_at=row.submitted_at,
        submitted_by=row.submitted_by,
        approved_at=row.approved_at,
        approved_by=row.approved_by,
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        close_reason=row.close_reason,
        disbursed_at=row.disbursed_at,
        disbursed_by=row.disbursed_by,
    )


async def _guarantor_ids(conn: AsyncConnection, application_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """Guarantors of the given applications; only `guarantor` guarantees have any (see
    `eligibility.service.validate_guarantee`), so callers pass just those and others cost no query."""
    if not application_ids:
        return {}
    rows = await conn.execute(
        sa.select(application_guarantors)
        .where(application_guarantors.c.application_id.in_(application_ids))
        .order_by(application_guarantors.c.application_id, application_guarantors.c.guarantor_id)
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.application_id, []).append(row.guarantor_id)
    return {key: tuple(value) for key, value in found.items()}


# Built once (hot paths run them): the compiled forms stay cached, the id is a parameter.
_BY_ID = sa.select(applications).where(applications.c.id == sa.bindparam("b_id"))
_BORROWER = "borrower__"  # prefix of the borrower's columns read with a locked application
_BY_ID_FOR_UPDATE = (
    sa.select(
        applications,
        *(column.label(_BORROWER + column.name) for column in borrowers.c),
        # Most applications declare no other loan: then there is nothing more to read.
        sa.exists()
        .where(application_other_loans.c.application_id == applications.c.id)
        .label("has_other_loans"),
    )
    .join(borrowers, borrowers.c.id == applications.c.borrower_id)
    .where(applications.c.id == sa.bindparam("b_id"))
    .with_for_update(of=applications)
)


async def get_application(conn: AsyncConnection, application_id: str, today: date) -> Application:
    row = (await conn.execute(_BY_ID, {"b_id": application_id})).first()
    if row is None:
        raise NotFound(f"application {application_id} not found")
    ids = await _guarantor_ids(conn, [row.id] if row.guarantee_kind == "guarantor" else [])
    return _application(row, ids.get(row.id, ()), today)


async def lock_application(tx: Tx, application_id: str) -> LockedApplication:
    """The application, its row locked until the transaction ends."""
    row = (await tx.conn.execute(_BY_ID_FOR_UPDATE, {"b_id": application_id})).first()
    if row is None:
        raise NotFound(f"application {application_id} not found")
    ids = await _guarantor_ids(tx.conn, [row.id] if row.guarantee_kind == "guarantor" else [])
    app = _application(row, ids.get(row.id, ()), tx.today)
    other_loans = (
        (await eligibility_queries.other_loans(tx.conn, [row.id]))[row.id] if row.has_other_loans else ()
    )
    return LockedApplication(
        **{f.name: getattr(app, f.name) for f in dataclasses.fields(app)},
        borrower=borrower_from_row(row, prefix=_BORROWER),
        other_loans=other_loans,
    )


def _status_filter(status: str, today: date) -> sa.ColumnElement[bool]:
    if status == "lapsed":
        return sa.and_(
            applications.c.status == "guarantee_approved", applications.c.guarantee_expires_on < today
        )
    if status == "guarantee_approved":
        return sa.and_(
            applications.c.status == "guarantee_approved", applications.c.guarantee_expires_on >= today
        )
    return applications.c.status == status


async def list_applications(
    conn: AsyncConnection,
    today: date,
    *,
    region_prefix: str | None = None,
    bank_code: str | None = None,
    status: str | None = None,
    fund_code: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Application]:
    """Applications in id (= submission) order; `bank_code` is a filter and, for a bank, its scope."""
    wanted = ListFilter(region_prefix, bank_code, fund_code, after, limit)
    query = filtered(applications, wanted)
    if status is not None:
        query = query.where(_status_filter(status, today))
    rows = (await conn.execute(query)).all()
    ids = await _guarantor_ids(conn, [row.id for row in rows if row.guarantee_kind == "guarantor"])
    return [_application(row, ids.get(row.id, ()), today) for row in rows]

"""Application commands: submit (window), approve (fund manager), reject, withdraw, and the
disbursement mark set by the loans service.

Capacity is never decided here: approval reserves headroom through `loanfund.agreements.reservations`
and rejection or withdrawal releases it. Every transition is a compare-and-set on the stored status of
a locked row, timestamped with its actor and written to the audit log with the fund's region.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.agreements import reservations
from loanfund.applications import queries
from loanfund.applications.queries import Application, LockedApplication
from loanfund.banks import get_bank
from loanfund.borrowers import service as borrower_service
from loanfund.borrowers.queries import Borrower
from loanfund.clock import utcnow
from loanfund.db.tables import application_guarantors, applications, borrowers
from loanfund.eligibility import service as eligibility
from loanfund.eligibility.rules import Eligibility
from loanfund.errors import (
    GuarantorLimitExceeded,
    Ineligible,
    InvalidState,
    NotFound,
    SameMakerChecker,
    invalid,
    stated_reason,
)
from loanfund.funds import queries as fund_queries
from loanfund.funds.service import fund_policy
from loanfund.guarantors import queries as guarantor_queries
from loanfund.ids import new_id
from loanfund.money import format_fen
from loanfund.uow import Tx


async def check_bank(conn: AsyncConnection, bank_code: str) -> None:
    try:
        await get_bank(conn, bank_code)
    except NotFound:
        raise invalid("bank_code", f"no bank with code {bank_code}") from None


async def submit(
    tx: Tx,
    request: eligibility.ApplicationRequest,
    *,
    borrower: Borrower,
    purpose: str,
    micro_profit: bool,
    jobs_created: int,
    region_prefix: str | None,
) -> tuple[str, Eligibility]:
    """Store an eligible application as `submitted`; an ineligible one raises `Ineligible` with the
    checks and stores nothing. `region_prefix` is the window's scope for guarantors and joint members."""
    conn, today = tx.conn, tx.today
    purpose = purpose.strip()
    if not purpose:
        raise invalid("purpose", "must not be empty")
    if jobs_created < 0:
        raise invalid("jobs_created", "must not be negative")
    fund = await fund_queries.get_fund(conn, request.fund_code)
    await check_bank(conn, request.bank_code)
    # One submission per person at a time: the rows of the borrower and of every partner are the locks
    # (see no_open_application), taken in id order.
    members = sorted({borrower.id, *request.partner_borrower_ids})
    await conn.execute(
        sa.select(borrowers.c.id)
        .where(borrowers.c.id.in_(members))
        .order_by(borrowers.c.id)
        .with_for_update()
    )
    result = await eligibility.check(
        conn, request, borrower=borrower, region_prefix=region_prefix, today=today
    )
    if not result.eligible:
        failed = [check.rule for check in result.checks if not check.passed]
        raise Ineligible(
            f"not eligible under {result.policy_edition}: {', '.join(failed)}",
            eligible=False,
            is_4050=result.is_4050,
            policy_edition=result.policy_edition,
            checks=[check.to_json() for check in result.checks],
        )
    application_id = new_id("app")
    guarantee = request.guarantee
    await conn.execute(
        applications.insert().values(
            id=application_id,
            fund_code=request.fund_code,
            bank_code=request.bank_code,
            borrower_id=borrower.id,
            region_code=fund.region_code,
            amount_fen=request.amount_fen,
            term_months=request.term_months,
            purpose=purpose,
            micro_profit=micro_profit,
            guarantee_kind=guarantee.kind,
            collateral_description=guarantee.collateral_description,
            joint_borrower_ids=list(guarantee.joint_borrower_ids),
            partner_borrower_ids=list(request.partner_borrower_ids),
            jobs_created=jobs_created,
            applied_on=request.applied_on,
            policy_edition=result.policy_edition,
            is_4050=result.is_4050,
            eligibility=result.to_json(),
            status="submitted",
            submitted_at=utcnow(),
            submitted_by=tx.actor.client_id,
        )
    )
    if guarantee.guarantor_ids:
        await conn.execute(
            application_guarantors.insert(),
            [{"application_id": application_id, "guarantor_id": g} for g in guarantee.guarantor_ids],
        )
    await eligibility.record_facts(conn, application_id, request)
    tx.audit(
        "application.submitted",
        "application",
        application_id,
        {
            "fund_code": request.fund_code,
            "bank_code": request.bank_code,
            "borrower_id": borrower.id,
            "amount_fen": request.amount_fen,
            "term_months": request.term_months,
            "applied_on": request.applied_on.isoformat(),
            "guarantee_kind": guarantee.kind,
            "guarantor_ids": list(guarantee.guarantor_ids),
            "joint_borrower_ids": list(guarantee.joint_borrower_ids),
            "partner_borrower_ids": list(request.partner_borrower_ids),
            "policy_edition": result.policy_edition,
            "is_4050": result.is_4050,
        },
        region_code=fund.region_code,
    )
    # The fund's managers must see the borrower they decide on.
    await borrower_service.share_with_region(tx, borrower_id=borrower.id, region_code=fund.region_code)
    return application_id, result


# Built once: the SET clause comes from the parameters' names, the compiled form stays cached.
_TRANSITION = applications.update().where(
    applications.c.id == sa.bindparam("b_id"), applications.c.status == sa.bindparam("b_expected")
)


async def _transition(
    conn: AsyncConnection, application_id: str, expected: str, values: dict[str, object]
) -> None:
    result = await conn.execute(_TRANSITION, {"b_id": application_id, "b_expected": expected, **values})
    if result.rowcount != 1:
        raise InvalidState(f"application {application_id} is no longer {expected}")


async def approve(tx: Tx, app: LockedApplication) -> Application:
    """The fund's guarantee: reserve the amount at the bank (refusals change nothing)."""
    conn, actor, today = tx.conn, tx.actor, tx.today
    if actor.client_id is not None and app.submitted_by == actor.client_id:
        raise SameMakerChecker("the client that submitted an application may not approve it")
    if app.status != "submitted":
        raise InvalidState(f"application {app.id} is {app.status}", status=app.status)
    if app.guarantor_ids:
        limit = (await fund_policy(conn, app.fund_code, app.applied_on)).integer("guarantor_max_active")
        await guarantor_queries.lock(conn, app.guarantor_ids)
        counts = await guarantor_queries.active_guarantees(conn, app.guarantor_ids, today)
        for guarantor_id in app.guarantor_ids:
            if counts[guarantor_id] >= limit:
                raise GuarantorLimitExceeded(
                    f"guarantor {guarantor_id} already backs {counts[guarantor_id]} active guarantee(s);"
                    f" the limit is {limit}",
                    guarantor_id=guarantor_id,
                    active_guarantees=counts[guarantor_id],
                    guarantor_max_active=limit,
                )
    reservation = await reservations.reserve(
        tx,
        fund_code=app.fund_code,
        bank_code=app.bank_code,
        amount_fen=app.amount_fen,
        approved_on=today,
        application_id=app.id,
    )
    approved_at = utcnow()
    await _transition(
        conn,
        app.id,
        "submitted",
        {
            "status": "guarantee_approved",
            "guarantee_id": reservation.id,
            "guarantee_amount_fen": reservation.amount_fen,
            "guarantee_expires_on": reservation.expires_on,
            "approved_on": today,
            "approved_at": approved_at,
            "approved_by": actor.client_id,
        },
    )
    tx.audit(
        "application.approved",
        "application",
        app.id,
        {
            "status": "guarantee_approved",
            "guarantee_id": reservation.id,
            "amount_fen": reservation.amount_fen,
            "expires_on": reservation.expires_on.isoformat(),
        },
        region_code=app.region_code,
    )
    tx.emit(
        "guarantee_approved",
        fund_code=app.fund_code,
        region_code=app.region_code,
        bank_code=app.bank_code,
        data={
            "application_id": app.id,
            "guarantee_id": reservation.id,
            "fund_code": app.fund_code,
            "bank_code": app.bank_code,
            "borrower_id": app.borrower_id,
            "currency": "CNY",
            "amount": format_fen(reservation.amount_fen),
            "term_months": app.term_months,
            "expires_on": reservation.expires_on.isoformat(),
        },
    )
    # The row as now stored, without reading it again (the values are those just written).
    return Application(
        **{
            **{f.name: getattr(app, f.name) for f in dataclasses.fields(Application)},
            "status": queries.effective_status("guarantee_approved", reservation.expires_on, today),
            "stored_status": "guarantee_approved",
            "guarantee_id": reservation.id,
            "guarantee_amount_fen": reservation.amount_fen,
            "guarantee_expires_on": reservation.expires_on,
            "approved_on": today,
            "approved_at": approved_at,
            "approved_by": actor.client_id,
        }
    )


async def _close(tx: Tx, app: LockedApplication, *, status: str, reason: str) -> Application:
    if app.status not in ("submitted", "guarantee_approved"):
        raise InvalidState(f"application {app.id} is {app.status}", status=app.status)
    if app.guarantee_id is not None:
        await reservations.release(
            tx, app.guarantee_id, on=tx.today, reason=f"application {status}: {reason}"
        )
    await _transition(
        tx.conn,
        app.id,
        app.stored_status,
        {"status": status, "closed_at": utcnow(), "closed_by": tx.actor.client_id, "close_reason": reason},
    )
    tx.audit(
        f"application.{status}",
        "application",
        app.id,
        {"status": status, "previous_status": app.status, "reason": reason, "guarantee_id": app.guarantee_id},
        region_code=app.region_code,
    )
    tx.emit(
        f"application_{status}",
        fund_code=app.fund_code,
        region_code=app.region_code,
        bank_code=app.bank_code,
        data={
            "application_id": app.id,
            "guarantee_id": app.guarantee_id,
            "fund_code": app.fund_code,
            "bank_code": app.bank_code,
            "previous_status": app.status,
            "reason": reason,
        },
    )
    return await queries.get_application(tx.conn, app.id, tx.today)


async def reject(tx: Tx, app: LockedApplication, *, reason: str) -> Application:
    """Refused by the fund or the bank; any reservation goes back to headroom."""
    return await _close(tx, app, status="rejected", reason=stated_reason(reason))


async def withdraw(tx: Tx, app: LockedApplication, *, reason: str | None) -> Application:
    """Withdrawn at the window (the borrower changed their mind); any reservation is released."""
    text = stated_reason(reason) if reason is not None else "withdrawn at the window"
    return await _close(tx, app, status="withdrawn", reason=text)


async def mark_disbursed(tx: Tx, app: LockedApplication, *, loan_id: str) -> None:
    """Called by the loans service in the disbursement's transaction."""
    await _transition(
        tx.conn,
        app.id,
        "guarantee_approved",
        {
            "status": "disbursed",
            "loan_id": loan_id,
            "disbursed_at": utcnow(),
            "disbursed_by": tx.actor.client_id,
        },
    )

"""Compensation claims (bank files, manager approves or rejects), recoveries (bank) and write-offs
(manager): api.md "Compensation, recovery, write-off"."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import READERS, authorize, list_scope
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_choice, check_limit, decode_cursor, page
from api.routes.agreements import CapacityOut, capacity_out
from api.routes.loans import scoped_loan
from api.types import Code, Currency, LongText, Yuan, YuanOut
from loanfund.agreements import queries as agreement_queries
from loanfund.claims import queries, risk, service
from loanfund.claims.queries import STATUSES, Claim, Recovery, WriteOff
from loanfund.claims.risk import CompensationRate
from loanfund.funds import queries as fund_queries
from loanfund.money import CURRENCY, format_fen, format_pct, parse_yuan

Ctx = NamedDependency[RequestContext]

FILERS = ("admin", "bank")
DECIDERS = ("admin", "fund_manager")
VIEWERS = (*READERS, "bank")


# ---- schemas -------------------------------------------------------------------------------------


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    loan_id: Code
    claimed_on: date


class RejectIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText


class RecoveryIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Yuan
    recovered_on: date


class WriteOffIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText


class ClaimOut(msgspec.Struct):
    id: str
    status: str
    loan_id: str
    fund_code: str
    bank_code: str
    agreement_id: str
    claimed_on: date
    days_past_due: int
    claim_after_days: int
    currency: Currency
    base_principal: YuanOut
    base_interest: YuanOut
    base: YuanOut
    fund_loss_share_pct: str
    amount: YuanOut
    recovered: YuanOut  # the fund's part of recoveries so far
    bank_recovered: YuanOut
    written_off: YuanOut
    recoverable: YuanOut  # paid and neither recovered nor written off
    filed_at: datetime
    decided_at: datetime | None
    decided_on: date | None
    reason: str | None
    entry_id: str | None


class RateOut(msgspec.Struct):
    compensation_rate_pct: str | None
    currency: Currency
    compensation_paid: YuanOut
    released_principal: YuanOut
    window_after: date
    window_through: date


class PaymentOut(ClaimOut):
    capacity: CapacityOut
    agreement_compensation_rate: RateOut
    compensation_suspend_pct: str
    agreement_suspended: bool  # by this payment
    fund_compensation_rate: RateOut
    fund_red_flag: bool  # raised by this payment


class AgreementRateOut(msgspec.Struct):
    agreement_id: str
    fund_code: str
    bank_code: str
    as_of: date
    compensation_rate: RateOut
    compensation_suspend_pct: str
    above_threshold: bool
    fund_compensation_rate: RateOut
    fund_red_flag_pct: str
    fund_red_flag: bool


class ClaimPage(msgspec.Struct):
    items: list[ClaimOut]
    next_cursor: str | None


class RecoveryOut(msgspec.Struct):
    id: str
    loan_id: str
    claim_id: str
    currency: Currency
    amount: YuanOut
    fund_part: YuanOut
    bank_part: YuanOut
    recovered_on: date
    entry_id: str | None
    created_at: datetime


class WriteOffOut(msgspec.Struct):
    id: str
    loan_id: str
    claim_id: str
    status: str  # the loan's: written_off
    currency: Currency
    written_off: YuanOut
    reason: str
    written_off_on: date
    entry_id: str | None
    created_at: datetime


def _claim_fields(claim: Claim) -> dict[str, Any]:
    return {
        "id": claim.id,
        "status": claim.status,
        "loan_id": claim.loan_id,
        "fund_code": claim.fund_code,
        "bank_code": claim.bank_code,
        "agreement_id": claim.agreement_id,
        "claimed_on": claim.claimed_on,
        "days_past_due": claim.days_past_due,
        "claim_after_days": claim.claim_after_days,
        "currency": CURRENCY,
        "base_principal": format_fen(claim.base_principal_fen),
        "base_interest": format_fen(claim.base_interest_fen),
        "base": format_fen(claim.base_fen),
        "fund_loss_share_pct": format_pct(claim.fund_loss_share_pct),
        "amount": format_fen(claim.amount_fen),
        "recovered": format_fen(claim.recovered_fund_fen),
        "bank_recovered": format_fen(claim.recovered_bank_fen),
        "written_off": format_fen(claim.written_off_fen),
        "recoverable": format_fen(claim.recoverable_fen),
        "filed_at": claim.filed_at,
        "decided_at": claim.decided_at,
        "decided_on": claim.decided_on,
        "reason": claim.reason,
        "entry_id": claim.entry_id,
    }


def claim_out(claim: Claim) -> ClaimOut:
    return ClaimOut(**_claim_fields(claim))


def rate_out(rate: CompensationRate) -> RateOut:
    return RateOut(
        compensation_rate_pct=None if rate.rate_pct is None else format_pct(rate.rate_pct),
        currency=CURRENCY,
        compensation_paid=format_fen(rate.compensation_paid_fen),
        released_principal=format_fen(rate.released_principal_fen),
        window_after=rate.window_after,
        window_through=rate.window_through,
    )


def recovery_out(recovery: Recovery) -> RecoveryOut:
    return RecoveryOut(
        id=recovery.id,
        loan_id=recovery.loan_id,
        claim_id=recovery.claim_id,
        currency=CURRENCY,
        amount=format_fen(recovery.amount_fen),
        fund_part=format_fen(recovery.fund_part_fen),
        bank_part=format_fen(recovery.bank_part_fen),
        recovered_on=recovery.recovered_on,
        entry_id=recovery.entry_id,
        created_at=recovery.created_at,
    )


async def _scoped_claim(ctx: RequestContext, claim_id: str, roles: tuple[str, ...]) -> Claim:
    claim = await queries.get_claim(ctx.conn, claim_id)
    authorize(ctx, roles, region_code=claim.region_code, bank_code=claim.bank_code, what="claim")
    return claim


# ---- handlers ------------------------------------------------------------------------------------


@post("/compensation-claims", operation_class=with_body(ClaimIn), status_code=201)
async def file_claim(ctx: Ctx, request: Request[Any, Any, Any]) -> ClaimOut:
    authorize(ctx, FILERS)
    body = await decode_body(request, ClaimIn)
    # Another bank's loan is out of the caller's scope: 404, as if it did not exist.
    await scoped_loan(ctx, body.loan_id, FILERS)
    tx = ctx.tx
    claim = await service.file_claim(tx, loan_id=body.loan_id, claimed_on=body.claimed_on)
    return claim_out(claim)


@get("/compensation-claims")
async def list_claims(
    ctx: Ctx,
    status: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    fund_code: FromQuery[str | None] = None,
    loan_id: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> ClaimPage:
    authorize(ctx, VIEWERS)
    limit = check_limit(limit)
    check_choice(status, "status", STATUSES)
    scope = list_scope(ctx, bank_code)
    if scope.empty:
        return ClaimPage([], None)
    rows = await queries.list_claims(
        ctx.conn,
        region_prefix=scope.region_prefix,
        bank_code=scope.bank_code,
        fund_code=fund_code,
        loan_id=loan_id,
        status=status,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    return ClaimPage([claim_out(item) for item in items], next_cursor)


@get("/compensation-claims/{claim_id:str}")
async def get_claim(ctx: Ctx, claim_id: FromPath[str]) -> ClaimOut:
    return claim_out(await _scoped_claim(ctx, claim_id, VIEWERS))


@post("/compensation-claims/{claim_id:str}/approve", status_code=200)
async def approve_claim(ctx: Ctx, claim_id: FromPath[str]) -> PaymentOut:
    await _scoped_claim(ctx, claim_id, DECIDERS)
    tx = ctx.tx
    payment = await service.approve_claim(tx, claim_id)
    outcome = payment.outcome
    return PaymentOut(
        **_claim_fields(payment.claim),
        capacity=capacity_out(payment.capacity),
        agreement_compensation_rate=rate_out(outcome.agreement_rate),
        compensation_suspend_pct=format_pct(outcome.threshold_pct),
        agreement_suspended=outcome.suspended,
        fund_compensation_rate=rate_out(outcome.fund_rate),
        fund_red_flag=outcome.red_flag_raised,
    )


@post("/compensation-claims/{claim_id:str}/reject", operation_class=with_body(RejectIn), status_code=200)
async def reject_claim(ctx: Ctx, claim_id: FromPath[str], request: Request[Any, Any, Any]) -> ClaimOut:
    await _scoped_claim(ctx, claim_id, DECIDERS)
    body = await decode_body(request, RejectIn)
    tx = ctx.tx
    claim = await service.reject_claim(tx, claim_id, reason=body.reason)
    return claim_out(claim)


@post("/loans/{loan_id:str}/recoveries", operation_class=with_body(RecoveryIn), status_code=201)
async def record_recovery(ctx: Ctx, loan_id: FromPath[str], request: Request[Any, Any, Any]) -> RecoveryOut:
    await scoped_loan(ctx, loan_id, FILERS)
    body = await decode_body(request, RecoveryIn)
    amount = parse_yuan(body.amount, field="amount")
    tx = ctx.tx
    recovery = await service.record_recovery(tx, loan_id, amount_fen=amount, recovered_on=body.recovered_on)
    return recovery_out(recovery)


@get("/loans/{loan_id:str}/recoveries")
async def list_recoveries(ctx: Ctx, loan_id: FromPath[str]) -> list[RecoveryOut]:
    await scoped_loan(ctx, loan_id, VIEWERS)
    return [recovery_out(item) for item in await queries.recoveries(ctx.conn, loan_id)]


@post("/loans/{loan_id:str}/write-off", operation_class=with_body(WriteOffIn), status_code=200)
async def write_off(ctx: Ctx, loan_id: FromPath[str], request: Request[Any, Any, Any]) -> WriteOffOut:
    await scoped_loan(ctx, loan_id, DECIDERS)
    body = await decode_body(request, WriteOffIn)
    tx = ctx.tx
    record: WriteOff = await service.write_off(tx, loan_id, reason=body.reason)
    return WriteOffOut(
        id=record.id,
        loan_id=record.loan_id,
        claim_id=record.claim_id,
        status=service.WRITTEN_OFF,
        currency=CURRENCY,
        written_off=format_fen(record.amount_fen),
        reason=record.reason,
        written_off_on=record.written_off_on,
        entry_id=record.entry_id,
        created_at=record.created_at,
    )


@get("/agreements/{agreement_id:str}/compensation-rate")
async def agreement_compensation_rate(
    ctx: Ctx, agreement_id: FromPath[str], as_of: FromQuery[date | None] = None
) -> AgreementRateOut:
    """The trailing-12-month compensation rate of the agreement's bank and of the whole fund, against
    the agreement's suspension threshold and the fund's red flag (loanfund/claims/risk.py)."""
    agreement = await agreement_queries.get_agreement(ctx.conn, agreement_id)
    fund = await fund_queries.get_fund(ctx.conn, agreement.fund_code)
    authorize(ctx, VIEWERS, region_code=fund.region_code, bank_code=agreement.bank_code, what="agreement")
    day = as_of or ctx.today
    rate = await risk.compensation_rate(ctx.conn, agreement.fund_code, agreement.bank_code, as_of=day)
    fund_rate = await risk.compensation_rate(ctx.conn, agreement.fund_code, None, as_of=day)
    threshold = await risk.suspend_threshold_pct(ctx.conn, agreement, day)
    return AgreementRateOut(
        agreement_id=agreement.id,
        fund_code=agreement.fund_code,
        bank_code=agreement.bank_code,
        as_of=day,
        compensation_rate=rate_out(rate),
        compensation_suspend_pct=format_pct(threshold),
        above_threshold=rate.above(threshold),
        fund_compensation_rate=rate_out(fund_rate),
        fund_red_flag_pct=format_pct(risk.FUND_RED_FLAG_PCT),
        fund_red_flag=fund_rate.above(risk.FUND_RED_FLAG_PCT),
    )


router = Router(
    path="/",
    route_handlers=[
        file_claim,
        list_claims,
        get_claim,
        approve_claim,
        reject_claim,
        record_recovery,
        list_recoveries,
        write_off,
        agreement_compensation_rate,
    ],
)

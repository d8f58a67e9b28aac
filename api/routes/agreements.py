"""Partner-bank agreements, deposits and withdrawals, suspension, and capacity (leverage) views."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import MANAGERS, READERS, authorize
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from api.types import Currency, LongText, Pct, Text, Yuan, YuanOut
from loanfund.agreements import capacity as cap
from loanfund.agreements import queries, service
from loanfund.clock import not_in_future
from loanfund.funds import queries as fund_queries
from loanfund.money import CURRENCY, format_fen, format_pct, parse_pct, parse_yuan

Ctx = NamedDependency[RequestContext]
VIEWERS = (*READERS, "bank")

Multiple = Annotated[
    str,
    msgspec.Meta(max_length=32, description="Leverage multiple as a decimal string.", examples=["5", "7.5"]),
]


# ---- schemas -------------------------------------------------------------------------------------


class CreateAgreement(msgspec.Struct, forbid_unknown_fields=True):
    bank_code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    leverage_multiple: Multiple
    fund_loss_share_pct: Pct
    claim_after_days: Annotated[int, msgspec.Meta(ge=1, le=service.MAX_CLAIM_AFTER_DAYS)]
    claim_covers_interest: bool
    effective_from: date
    effective_to: date | None = None
    compensation_suspend_pct: Pct | None = None


class DepositIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Yuan
    deposited_on: date
    reference: Text


class WithdrawalIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Yuan
    withdrawn_on: date
    reference: Text


class SuspendIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText


class ResumeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText | None = None


class CapacityOut(msgspec.Struct):
    currency: Currency
    deposit: YuanOut
    leverage_multiple: str
    capacity: YuanOut
    outstanding: YuanOut
    reserved: YuanOut
    headroom: YuanOut
    leverage_ratio: str | None
    max_withdrawal: YuanOut


class AgreementOut(msgspec.Struct):
    id: str
    fund_code: str
    bank_code: str
    status: str
    leverage_multiple: str
    fund_loss_share_pct: str
    claim_after_days: int
    claim_covers_interest: bool
    compensation_suspend_pct: str | None
    effective_from: date
    effective_to: date | None
    suspended_reason: str | None
    suspended_at: datetime | None
    created_at: datetime
    capacity: CapacityOut


class AgreementPage(msgspec.Struct):
    items: list[AgreementOut]
    next_cursor: str | None


class LeverageTotals(msgspec.Struct):
    currency: Currency
    deposit: YuanOut
    capacity: YuanOut
    outstanding: YuanOut
    reserved: YuanOut
    headroom: YuanOut
    leverage_ratio: str | None


class LeverageOut(msgspec.Struct):
    fund_code: str
    as_of: date
    items: list[AgreementOut]
    totals: LeverageTotals


class DepositOut(msgspec.Struct):
    id: str
    agreement_id: str
    fund_code: str
    bank_code: str
    currency: Currency
    amount: YuanOut
    deposited_on: date
    reference: str
    entry_id: str
    capacity: CapacityOut


class WithdrawalOut(msgspec.Struct):
    id: str
    agreement_id: str
    fund_code: str
    bank_code: str
    currency: Currency
    amount: YuanOut
    withdrawn_on: date
    reference: str
    entry_id: str
    capacity: CapacityOut


# ---- helpers -------------------------------------------------------------------------------------


def _ratio(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def capacity_out(c: cap.Capacity) -> CapacityOut:
    return CapacityOut(
        currency=CURRENCY,
        deposit=format_fen(c.deposit_fen),
        leverage_multiple=format_pct(c.leverage_multiple),
        capacity=format_fen(c.capacity_fen),
        outstanding=format_fen(c.outstanding_fen),
        reserved=format_fen(c.reserved_fen),
        headroom=format_fen(c.headroom_fen),
        leverage_ratio=_ratio(c.leverage_ratio),
        max_withdrawal=format_fen(c.max_withdrawal_fen),
    )


def _agreement_out(row: Any, capacity: cap.Capacity, today: date) -> AgreementOut:
    return AgreementOut(
        id=row.id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        status=cap.agreement_status(row, today),
        leverage_multiple=format_pct(row.leverage_multiple),
        fund_loss_share_pct=format_pct(row.fund_loss_share_pct),
        claim_after_days=row.claim_after_days,
        claim_covers_interest=row.claim_covers_interest,
        compensation_suspend_pct=(
            None if row.compensation_suspend_pct is None else format_pct(row.compensation_suspend_pct)
        ),
        effective_from=row.effective_from,
        effective_to=row.effective_to,
        suspended_reason=row.suspended_reason,
        suspended_at=row.suspended_at,
        created_at=row.created_at,
        capacity=capacity_out(capacity),
    )


async def agreement_out(ctx: RequestContext, row: Any) -> AgreementOut:
    today = ctx.today
    return _agreement_out(row, await cap.agreement_capacity(ctx.conn, row, today=today), today)


async def scoped_agreement(ctx: RequestContext, agreement_id: str, roles: tuple[str, ...]) -> Any:
    row = await queries.get_agreement(ctx.conn, agreement_id)
    fund = await fund_queries.get_fund(ctx.conn, row.fund_code)
    authorize(ctx, roles, region_code=fund.region_code, bank_code=row.bank_code, what="agreement")
    return row


# ---- handlers ------------------------------------------------------------------------------------


@post("/funds/{code:str}/agreements", operation_class=with_body(CreateAgreement), status_code=201)
async def create_agreement(ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]) -> AgreementOut:
    fund = await fund_queries.get_fund(ctx.conn, code)
    authorize(ctx, MANAGERS, region_code=fund.region_code, what="fund")
    body = await decode_body(request, CreateAgreement)
    multiple = parse_pct(body.leverage_multiple, field="leverage_multiple")
    share = parse_pct(body.fund_loss_share_pct, field="fund_loss_share_pct")
    suspend_pct = (
        None
        if body.compensation_suspend_pct is None
        else parse_pct(body.compensation_suspend_pct, field="compensation_suspend_pct")
    )
    agreement_id = await service.create_agreement(
        ctx.tx,
        fund_code=code,
        bank_code=body.bank_code,
        leverage_multiple=multiple,
        fund_loss_share_pct=share,
        claim_after_days=body.claim_after_days,
        claim_covers_interest=body.claim_covers_interest,
        effective_from=body.effective_from,
        effective_to=body.effective_to,
        compensation_suspend_pct=suspend_pct,
    )
    return await agreement_out(ctx, await queries.get_agreement(ctx.conn, agreement_id))


@get("/agreements")
async def list_agreements(
    ctx: Ctx,
    fund_code: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> AgreementPage:
    authorize(ctx, VIEWERS)
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    client = ctx.client
    if client.role == "bank":
        if bank_code is not None and bank_code != client.bank_code:
            return AgreementPage(items=[], next_cursor=None)
        bank_code = client.bank_code
    region_prefix = client.region_prefix if client.role != "admin" and client.role != "bank" else None
    rows = await queries.list_agreements(
        ctx.conn,
        fund_code=fund_code,
        bank_code=bank_code,
        region_prefix=region_prefix,
        after=after,
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    return AgreementPage(items=[await agreement_out(ctx, row) for row in items], next_cursor=next_cursor)


@get("/agreements/{agreement_id:str}")
async def get_agreement(ctx: Ctx, agreement_id: FromPath[str]) -> AgreementOut:
    return await agreement_out(ctx, await scoped_agreement(ctx, agreement_id, VIEWERS))


@get("/funds/{code:str}/leverage")
async def get_leverage(ctx: Ctx, code: FromPath[str]) -> LeverageOut:
    fund = await fund_queries.get_fund(ctx.conn, code)
    authorize(ctx, READERS, region_code=fund.region_code, what="fund")
    today = ctx.today
    leverage = await cap.fund_leverage(ctx.conn, code, today)
    totals = LeverageTotals(
        currency=CURRENCY,
        deposit=format_fen(leverage.deposit_fen),
        capacity=format_fen(leverage.capacity_fen),
        outstanding=format_fen(leverage.outstanding_fen),
        reserved=format_fen(leverage.reserved_fen),
        headroom=format_fen(leverage.headroom_fen),
        leverage_ratio=_ratio(leverage.leverage_ratio),
    )
    items = [_agreement_out(row, capacity, today) for row, capacity in leverage.lines]
    return LeverageOut(fund_code=code, as_of=today, items=items, totals=totals)


async def _move_money(
    ctx: RequestContext,
    agreement_id: str,
    request: Request[Any, Any, Any],
    body_type: type[DepositIn | WithdrawalIn],
) -> tuple[Any, DepositIn | WithdrawalIn, int, str, CapacityOut]:
    """Deposits and withdrawals differ only in direction and in the name of their date."""
    row = await scoped_agreement(ctx, agreement_id, MANAGERS)
    body = await decode_body(request, body_type)
    amount = parse_yuan(body.amount)
    if isinstance(body, DepositIn):
        not_in_future(body.deposited_on, "deposited_on", ctx.today)
        entry_id = await service.deposit(
            ctx.tx,
            agreement_id,
            amount_fen=amount,
            deposited_on=body.deposited_on,
            reference=body.reference,
        )
    else:
        not_in_future(body.withdrawn_on, "withdrawn_on", ctx.today)
        entry_id = await service.withdraw(
            ctx.tx,
            agreement_id,
            amount_fen=amount,
            withdrawn_on=body.withdrawn_on,
            reference=body.reference,
        )
    capacity = capacity_out(await cap.agreement_capacity(ctx.conn, row, today=ctx.today))
    return row, body, amount, entry_id, capacity


@post("/agreements/{agreement_id:str}/deposits", operation_class=with_body(DepositIn), status_code=201)
async def record_deposit(
    ctx: Ctx, agreement_id: FromPath[str], request: Request[Any, Any, Any]
) -> DepositOut:
    row, body, amount, entry_id, capacity = await _move_money(ctx, agreement_id, request, DepositIn)
    assert isinstance(body, DepositIn)
    return DepositOut(
        id=entry_id,
        agreement_id=agreement_id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        currency=CURRENCY,
        amount=format_fen(amount),
        deposited_on=body.deposited_on,
        reference=body.reference,
        entry_id=entry_id,
        capacity=capacity,
    )


@post("/agreements/{agreement_id:str}/withdrawals", operation_class=with_body(WithdrawalIn), status_code=201)
async def record_withdrawal(
    ctx: Ctx, agreement_id: FromPath[str], request: Request[Any, Any, Any]
) -> WithdrawalOut:
    row, body, amount, entry_id, capacity = await _move_money(ctx, agreement_id, request, WithdrawalIn)
    assert isinstance(body, WithdrawalIn)
    return WithdrawalOut(
        id=entry_id,
        agreement_id=agreement_id,
        fund_code=row.fund_code,
        bank_code=row.bank_code,
        currency=CURRENCY,
        amount=format_fen(amount),
        withdrawn_on=body.withdrawn_on,
        reference=body.reference,
        entry_id=entry_id,
        capacity=capacity,
    )


@post("/agreements/{agreement_id:str}/suspend", operation_class=with_body(SuspendIn), status_code=200)
async def suspend_agreement(
    ctx: Ctx, agreement_id: FromPath[str], request: Request[Any, Any, Any]
) -> AgreementOut:
    await scoped_agreement(ctx, agreement_id, MANAGERS)
    body = await decode_body(request, SuspendIn)
    await service.suspend(ctx.tx, agreement_id, reason=body.reason)
    return await agreement_out(ctx, await queries.get_agreement(ctx.conn, agreement_id))


@post("/agreements/{agreement_id:str}/resume", operation_class=with_body(ResumeIn), status_code=200)
async def resume_agreement(
    ctx: Ctx, agreement_id: FromPath[str], request: Request[Any, Any, Any]
) -> AgreementOut:
    await scoped_agreement(ctx, agreement_id, MANAGERS)
    # The contract gives resume no body; an optional {"reason"} is accepted for the audit log.
    body = await decode_body(request, ResumeIn) if (await request.body()).strip() else ResumeIn()
    await service.resume(ctx.tx, agreement_id, reason=body.reason)
    return await agreement_out(ctx, await queries.get_agreement(ctx.conn, agreement_id))


router = Router(
    path="/",
    route_handlers=[
        create_agreement,
        list_agreements,
        get_agreement,
        get_leverage,
        record_deposit,
        record_withdrawal,
        suspend_agreement,
        resume_agreement,
    ],
)

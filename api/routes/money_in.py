"""Money into a fund: allocations and their matching, contributions, reversals, the subsidy budget."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import MANAGERS, READERS
from api.body import decode_body, with_body
from api.context import RequestContext
from api.routes.funds import scoped_fund
from api.types import Code, Currency, LongText, Pct, Text, Yuan, YuanOut
from loanfund import ledger
from loanfund.clock import not_in_future
from loanfund.errors import ValidationFailed
from loanfund.funds import queries, service
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, format_fen, format_pct, parse_pct, parse_yuan

Ctx = NamedDependency[RequestContext]


class RecordAllocation(msgspec.Struct, forbid_unknown_fields=True):
    amount: Yuan
    received_on: date
    reference: Text
    match_ratio_pct: Pct
    match_due_on: date


class RecordContribution(msgspec.Struct, forbid_unknown_fields=True):
    source: Code
    amount: Yuan
    received_on: date
    reference: Text
    allocation_id: Code | None = None


class Reverse(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText


class SubsidyBudgetIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Yuan
    received_on: date
    reference: Text


class MatchingOut(msgspec.Struct):
    required: YuanOut
    matched: YuanOut
    shortfall: YuanOut
    status: str


class AllocationOut(msgspec.Struct):
    id: str
    fund_code: str
    currency: Currency
    amount: YuanOut
    received_on: date
    reference: str
    match_ratio_pct: Pct
    match_due_on: date
    entry_id: str
    reversal_entry_id: str | None
    matching: MatchingOut


class ContributionOut(msgspec.Struct):
    id: str
    fund_code: str
    source: str
    currency: Currency
    amount: YuanOut
    received_on: date
    reference: str
    allocation_id: str | None
    entry_id: str
    reversal_entry_id: str | None


class ReversalOut(msgspec.Struct):
    id: str
    reversed_id: str
    entry_id: str
    reversed_on: date
    reason: str
    currency: Currency
    amount: YuanOut


class MatchingItem(msgspec.Struct):
    allocation_id: str
    reference: str
    currency: Currency
    amount: YuanOut
    required: YuanOut
    matched: YuanOut
    shortfall: YuanOut
    due_on: date
    status: str


class MatchingTotals(msgspec.Struct):
    currency: Currency
    amount: YuanOut
    required: YuanOut
    matched: YuanOut
    shortfall: YuanOut
    status: str


class MatchingReport(msgspec.Struct):
    fund_code: str
    as_of: date
    items: list[MatchingItem]
    totals: MatchingTotals


class SubsidyBudgetOut(msgspec.Struct):
    id: str
    fund_code: str
    currency: Currency
    amount: YuanOut
    received_on: date
    reference: str
    subsidy_budget: YuanOut


def matching_item(m: service.AllocationMatching) -> MatchingItem:
    return MatchingItem(
        allocation_id=m.allocation_id,
        reference=m.reference,
        currency=CURRENCY,
        amount=format_fen(m.amount_fen),
        required=format_fen(m.required_fen),
        matched=format_fen(m.matched_fen),
        shortfall=format_fen(m.shortfall_fen),
        due_on=m.due_on,
        status=m.status,
    )


async def allocation_out(ctx: RequestContext, fund_code: str, allocation_id: str) -> AllocationOut:
    row = await queries.get_allocation(ctx.conn, fund_code, allocation_id)
    m = await service.allocation_matching(ctx.conn, fund_code, allocation_id, ctx.today)
    matching = MatchingOut(
        format_fen(m.required_fen), format_fen(m.matched_fen), format_fen(m.shortfall_fen), m.status
    )
    return AllocationOut(
        id=row.id,
        fund_code=row.fund_code,
        currency=CURRENCY,
        amount=format_fen(row.amount_fen),
        received_on=row.received_on,
        reference=row.reference,
        match_ratio_pct=format_pct(row.match_ratio_pct),
        match_due_on=row.match_due_on,
        entry_id=row.entry_id,
        reversal_entry_id=row.reversal_entry_id,
        matching=matching,
    )


def contribution_out(row: Any) -> ContributionOut:
    return ContributionOut(
        id=row.id,
        fund_code=row.fund_code,
        source=row.source,
        currency=CURRENCY,
        amount=format_fen(row.amount_fen),
        received_on=row.received_on,
        reference=row.reference,
        allocation_id=row.allocation_id,
        entry_id=row.entry_id,
        reversal_entry_id=row.reversal_entry_id,
    )


# ---- handlers ------------------------------------------------------------------------------------


@post("/funds/{code:str}/allocations", operation_class=with_body(RecordAllocation), status_code=201)
async def record_allocation(ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]) -> AllocationOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, RecordAllocation)
    amount = parse_yuan(body.amount)
    ratio = parse_pct(body.match_ratio_pct, field="match_ratio_pct")
    not_in_future(body.received_on, "received_on", ctx.today)
    allocation_id = await service.record_allocation(
        ctx.tx,
        fund_code=code,
        amount_fen=amount,
        received_on=body.received_on,
        reference=body.reference,
        match_ratio_pct=ratio,
        match_due_on=body.match_due_on,
    )
    return await allocation_out(ctx, code, allocation_id)


@get("/funds/{code:str}/allocations/{allocation_id:str}")
async def get_allocation(ctx: Ctx, code: FromPath[str], allocation_id: FromPath[str]) -> AllocationOut:
    await scoped_fund(ctx, code, READERS)
    return await allocation_out(ctx, code, allocation_id)


@post("/funds/{code:str}/contributions", operation_class=with_body(RecordContribution), status_code=201)
async def record_contribution(
    ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]
) -> ContributionOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, RecordContribution)
    amount = parse_yuan(body.amount)
    if body.source not in service.CONTRIBUTION_SOURCES:
        raise ValidationFailed(
            [{"field": "source", "message": f"must be one of {', '.join(service.CONTRIBUTION_SOURCES)}"}]
        )
    not_in_future(body.received_on, "received_on", ctx.today)
    contribution_id = await service.record_contribution(
        ctx.tx,
        fund_code=code,
        source=body.source,
        amount_fen=amount,
        received_on=body.received_on,
        reference=body.reference,
        allocation_id=body.allocation_id,
    )
    return contribution_out(await queries.get_contribution(ctx.conn, code, contribution_id))


async def _reverse(
    ctx: RequestContext, code: str, item_id: str, request: Request[Any, Any, Any], kind: str
) -> ReversalOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, Reverse)
    today = ctx.today
    if kind == "allocation":
        entry_id = await service.reverse_allocation(
            ctx.tx, fund_code=code, allocation_id=item_id, reason=body.reason, reversed_on=today
        )
        amount_fen = (await queries.get_allocation(ctx.conn, code, item_id)).amount_fen
    else:
        entry_id = await service.reverse_contribution(
            ctx.tx,
            fund_code=code,
            contribution_id=item_id,
            reason=body.reason,
            reversed_on=today,
        )
        amount_fen = (await queries.get_contribution(ctx.conn, code, item_id)).amount_fen
    return ReversalOut(
        id=entry_id,
        reversed_id=item_id,
        entry_id=entry_id,
        reversed_on=today,
        reason=body.reason,
        currency=CURRENCY,
        amount=format_fen(amount_fen),
    )


@post(
    "/funds/{code:str}/allocations/{item_id:str}/reverse", operation_class=with_body(Reverse), status_code=201
)
async def reverse_allocation(
    ctx: Ctx, code: FromPath[str], item_id: FromPath[str], request: Request[Any, Any, Any]
) -> ReversalOut:
    return await _reverse(ctx, code, item_id, request, "allocation")


@post(
    "/funds/{code:str}/contributions/{item_id:str}/reverse",
    operation_class=with_body(Reverse),
    status_code=201,
)
async def reverse_contribution(
    ctx: Ctx, code: FromPath[str], item_id: FromPath[str], request: Request[Any, Any, Any]
) -> ReversalOut:
    return await _reverse(ctx, code, item_id, request, "contribution")


@get("/funds/{code:str}/matching")
async def get_matching(ctx: Ctx, code: FromPath[str], as_of: FromQuery[date | None] = None) -> MatchingReport:
    await scoped_fund(ctx, code, READERS)
    day = as_of or ctx.today
    rows = await service.matching(ctx.conn, code, day)
    items = [matching_item(m) for m in rows]
    statuses = {m.status for m in rows}
    overall = "overdue" if "overdue" in statuses else "pending" if "pending" in statuses else "met"
    totals = MatchingTotals(
        currency=CURRENCY,
        amount=format_fen(sum(m.amount_fen for m in rows)),
        required=format_fen(sum(m.required_fen for m in rows)),
        matched=format_fen(sum(m.matched_fen for m in rows)),
        shortfall=format_fen(sum(m.shortfall_fen for m in rows)),
        status=overall,
    )
    return MatchingReport(fund_code=code, as_of=day, items=items, totals=totals)


@post("/funds/{code:str}/subsidy-budget", operation_class=with_body(SubsidyBudgetIn), status_code=201)
async def add_subsidy_budget(
    ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]
) -> SubsidyBudgetOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, SubsidyBudgetIn)
    amount = parse_yuan(body.amount)
    not_in_future(body.received_on, "received_on", ctx.today)
    entry_id = await service.add_subsidy_budget(
        ctx.tx,
        fund_code=code,
        amount_fen=amount,
        received_on=body.received_on,
        reference=body.reference,
    )
    budget = await ledger.balance(ctx.conn, code, accounts.SUBSIDY_BUDGET)
    return SubsidyBudgetOut(
        id=entry_id,
        fund_code=code,
        currency=CURRENCY,
        amount=format_fen(amount),
        received_on=body.received_on,
        reference=body.reference,
        subsidy_budget=format_fen(budget),
    )


router = Router(
    path="/",
    route_handlers=[
        record_allocation,
        get_allocation,
        record_contribution,
        reverse_allocation,
        reverse_contribution,
        get_matching,
        add_subsidy_budget,
    ],
)

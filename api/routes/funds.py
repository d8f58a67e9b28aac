"""Funds and money in: /funds, allocations, contributions, matching, subsidy budget, ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import MANAGERS, READERS, authorize
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from api.types import Code, Currency, LongText, Pct, Text, Yuan, YuanOut
from loanfund import ledger, policy
from loanfund.clock import business_date, not_in_future
from loanfund.errors import ValidationFailed
from loanfund.funds import queries, service
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, format_fen, format_pct, parse_pct, parse_yuan

Ctx = NamedDependency[RequestContext]


# ---- schemas -------------------------------------------------------------------------------------


class CreateFund(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    name: Text
    region_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="GB/T 2260 region code")]
    policy_edition: Code
    currency: Currency
    policy_overrides: dict[str, Any] | None = None


class AdoptPolicy(msgspec.Struct, forbid_unknown_fields=True):
    policy_edition: Code
    effective_from: date
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)


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


class PositionOut(msgspec.Struct):
    currency: Currency
    cash: YuanOut
    deposited: YuanOut
    contributed: YuanOut
    compensation_paid: YuanOut
    recovered: YuanOut
    written_off: YuanOut
    subsidy_budget: YuanOut


class FundOut(msgspec.Struct):
    code: str
    name: str
    region_code: str
    currency: Currency
    policy_edition: str
    position: PositionOut
    created_at: datetime


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


class TrialBalanceLineOut(msgspec.Struct):
    account: str
    debit: YuanOut
    credit: YuanOut
    balance: YuanOut


class TrialBalanceOut(msgspec.Struct):
    fund_code: str
    as_of: date | None
    currency: Currency
    accounts: list[TrialBalanceLineOut]
    total_debit: YuanOut
    total_credit: YuanOut


class PostingOut(msgspec.Struct):
    account: str
    debit: YuanOut
    credit: YuanOut


class EntryOut(msgspec.Struct):
    id: str
    entry_date: date
    kind: str
    description: str
    reference: str | None
    reverses_entry_id: str | None
    client_id: str | None
    currency: Currency
    postings: list[PostingOut]


class EntryPage(msgspec.Struct):
    items: list[EntryOut]
    next_cursor: str | None


class FundPage(msgspec.Struct):
    items: list[FundOut]
    next_cursor: str | None


class PolicyOut(msgspec.Struct):
    fund_code: str
    on: date
    policy_edition: str
    parameters: dict[str, Any]
    history: list[dict[str, Any]]


# ---- helpers -------------------------------------------------------------------------------------


def position_out(position: service.Position) -> PositionOut:
    return PositionOut(
        currency=CURRENCY,
        cash=format_fen(position.cash_fen),
        deposited=format_fen(position.deposited_fen),
        contributed=format_fen(position.contributed_fen),
        compensation_paid=format_fen(position.compensation_paid_fen),
        recovered=format_fen(position.recovered_fen),
        written_off=format_fen(position.written_off_fen),
        subsidy_budget=format_fen(position.subsidy_budget_fen),
    )


async def fund_out(ctx: RequestContext, row: Any) -> FundOut:
    current = await service.fund_policy(ctx.conn, row.code, business_date())
    return FundOut(
        code=row.code,
        name=row.name,
        region_code=row.region_code,
        currency=row.currency,
        policy_edition=current.edition,
        position=position_out(await service.position(ctx.conn, row.code)),
        created_at=row.created_at,
    )


async def scoped_fund(ctx: RequestContext, code: str, roles: tuple[str, ...]) -> Any:
    row = await queries.get_fund(ctx.conn, code)
    authorize(ctx, roles, region_code=row.region_code, what="fund")
    return row


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
    today = business_date()
    found = [
        m for m in await service.matching(ctx.conn, fund_code, today) if m.allocation_id == allocation_id
    ]
    if found:
        m = found[0]
        matching = MatchingOut(
            format_fen(m.required_fen), format_fen(m.matched_fen), format_fen(m.shortfall_fen), m.status
        )
    else:  # reversed, or received after today's business date
        required = service.required_match_fen(row.amount_fen, row.match_ratio_pct)
        matching = MatchingOut(
            format_fen(required),
            "0.00",
            format_fen(required),
            service.matching_status(required, 0, row.match_due_on, today),
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


@post("/funds", operation_class=with_body(CreateFund), status_code=201)
async def create_fund(ctx: Ctx, request: Request[Any, Any, Any]) -> FundOut:
    authorize(ctx, ("admin",))
    body = await decode_body(request, CreateFund)
    await service.create_fund(
        ctx.conn,
        ctx.actor,
        code=body.code,
        name=body.name,
        region_code=body.region_code,
        policy_edition=body.policy_edition,
        currency=body.currency,
        policy_overrides=body.policy_overrides,
    )
    return await fund_out(ctx, await queries.get_fund(ctx.conn, body.code))


@get("/funds")
async def list_funds(
    ctx: Ctx,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> FundPage:
    authorize(ctx, READERS)  # not a window: positions show cash and deposits (docs/roles.md)
    limit = check_limit(limit)
    prefix = None if ctx.client.role == "admin" else ctx.client.region_prefix
    rows = await queries.list_funds(
        ctx.conn, region_prefix=prefix, after=decode_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = page(rows, limit, lambda row: row.code)
    return FundPage(items=[await fund_out(ctx, row) for row in items], next_cursor=next_cursor)


@get("/funds/{code:str}")
async def get_fund(ctx: Ctx, code: FromPath[str]) -> FundOut:
    row = await scoped_fund(ctx, code, READERS)
    return await fund_out(ctx, row)


@post("/funds/{code:str}/policy", operation_class=with_body(AdoptPolicy), status_code=201)
async def adopt_policy(ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]) -> PolicyOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, AdoptPolicy)
    await service.adopt_policy(
        ctx.conn,
        ctx.actor,
        fund_code=code,
        policy_edition=body.policy_edition,
        overrides=body.overrides,
        effective_from=body.effective_from,
    )
    return await _policy_out(ctx, code, body.effective_from)


@get("/funds/{code:str}/policy")
async def get_policy(ctx: Ctx, code: FromPath[str], on: FromQuery[date | None] = None) -> PolicyOut:
    # A window explains refusals by the policy in force, so it may read it (docs/roles.md).
    await scoped_fund(ctx, code, (*READERS, "window"))
    return await _policy_out(ctx, code, on or business_date())


async def _policy_out(ctx: RequestContext, code: str, on: date) -> PolicyOut:
    current = await service.fund_policy(ctx.conn, code, on)
    history = [
        {
            "effective_from": None if row.effective_from == date.min else row.effective_from.isoformat(),
            "policy_edition": row.edition,
            "overrides": row.overrides,
        }
        for row in await queries.policies(ctx.conn, code)
    ]
    return PolicyOut(
        fund_code=code,
        on=on,
        policy_edition=current.edition,
        parameters=policy.policy_to_json(current),
        history=history,
    )


@post("/funds/{code:str}/allocations", operation_class=with_body(RecordAllocation), status_code=201)
async def record_allocation(ctx: Ctx, code: FromPath[str], request: Request[Any, Any, Any]) -> AllocationOut:
    await scoped_fund(ctx, code, MANAGERS)
    body = await decode_body(request, RecordAllocation)
    amount = parse_yuan(body.amount)
    ratio = parse_pct(body.match_ratio_pct, field="match_ratio_pct")
    not_in_future(body.received_on, "received_on")
    allocation_id = await service.record_allocation(
        ctx.conn,
        ctx.actor,
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
    not_in_future(body.received_on, "received_on")
    contribution_id = await service.record_contribution(
        ctx.conn,
        ctx.actor,
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
    today = business_date()
    if kind == "allocation":
        entry_id = await service.reverse_allocation(
            ctx.conn, ctx.actor, fund_code=code, allocation_id=item_id, reason=body.reason, reversed_on=today
        )
        amount_fen = (await queries.get_allocation(ctx.conn, code, item_id)).amount_fen
    else:
        entry_id = await service.reverse_contribution(
            ctx.conn,
            ctx.actor,
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
    day = as_of or business_date()
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
    not_in_future(body.received_on, "received_on")
    entry_id = await service.add_subsidy_budget(
        ctx.conn,
        ctx.actor,
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


@get("/funds/{code:str}/trial-balance")
async def get_trial_balance(
    ctx: Ctx, code: FromPath[str], as_of: FromQuery[date | None] = None
) -> TrialBalanceOut:
    await scoped_fund(ctx, code, READERS)
    tb = await ledger.trial_balance(ctx.conn, code, as_of=as_of)
    return TrialBalanceOut(
        fund_code=code,
        as_of=as_of,
        currency=CURRENCY,
        accounts=[
            TrialBalanceLineOut(
                line.account,
                format_fen(line.debit_fen),
                format_fen(line.credit_fen),
                format_fen(line.balance_fen),
            )
            for line in tb.lines
        ],
        total_debit=format_fen(tb.total_debit_fen),
        total_credit=format_fen(tb.total_credit_fen),
    )


@get("/funds/{code:str}/ledger")
async def get_ledger(
    ctx: Ctx,
    code: FromPath[str],
    account: FromQuery[str | None] = None,
    date_from: Annotated[date | None, QueryParameter(name="from")] = None,
    date_to: Annotated[date | None, QueryParameter(name="to")] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> EntryPage:
    await scoped_fund(ctx, code, READERS)
    limit = check_limit(limit)
    if account is not None and not accounts.is_valid(account):
        raise ValidationFailed([{"field": "account", "message": "is not an account of the chart"}])
    rows = await ledger.queries.list_entries(
        ctx.conn,
        code,
        account=account,
        date_from=date_from,
        date_to=date_to,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda entry: entry.id)
    return EntryPage(
        items=[
            EntryOut(
                id=e.id,
                entry_date=e.entry_date,
                kind=e.kind,
                description=e.description,
                reference=e.reference,
                reverses_entry_id=e.reverses_entry_id,
                client_id=e.client_id,
                currency=CURRENCY,
                postings=[
                    PostingOut(name, format_fen(max(fen, 0)), format_fen(max(-fen, 0)))
                    for name, fen in e.postings
                ],
            )
            for e in items
        ],
        next_cursor=next_cursor,
    )


router = Router(
    path="/",
    route_handlers=[
        create_fund,
        list_funds,
        get_fund,
        adopt_policy,
        get_policy,
        record_allocation,
        get_allocation,
        record_contribution,
        reverse_allocation,
        reverse_contribution,
        get_matching,
        add_subsidy_budget,
        get_trial_balance,
        get_ledger,
    ],
)

"""Funds and their policies: /funds, /funds/{code}, /funds/{code}/policy."""

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
from api.types import Code, Currency, Text, YuanOut
from loanfund import policy
from loanfund.funds import queries, service
from loanfund.money import CURRENCY, format_fen

Ctx = NamedDependency[RequestContext]


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
    current = await service.fund_policy(ctx.conn, row.code, ctx.today)
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


@post("/funds", operation_class=with_body(CreateFund), status_code=201)
async def create_fund(ctx: Ctx, request: Request[Any, Any, Any]) -> FundOut:
    authorize(ctx, ("admin",))
    body = await decode_body(request, CreateFund)
    await service.create_fund(
        ctx.tx,
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
        ctx.tx,
        fund_code=code,
        policy_edition=body.policy_edition,
        overrides=body.overrides,
        effective_from=body.effective_from,
    )
    return await _policy_out(ctx, code, body.effective_from)


@get("/funds/{code:str}/policy")
async def get_policy(ctx: Ctx, code: FromPath[str], on: FromQuery[date | None] = None) -> PolicyOut:
    # A window explains refusals by the policy in force, so it may read it (docs/roles.md).
    # A window explains refusals by the policy in force, so it may read it (docs/roles.md).
    await scoped_fund(ctx, code, (*READERS, "window"))
    return await _policy_out(ctx, code, on or ctx.today)


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


router = Router(
    path="/",
    route_handlers=[
        create_fund,
        list_funds,
        get_fund,
        adopt_policy,
        get_policy,
    ],
)

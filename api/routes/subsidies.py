"""Interest subsidy claims: a bank files, a manager reviews and pays; exports for the finance bureau.

`GET /subsidy-claims/{id}` answers JSON, or CSV/XLSX with `?format=csv|xlsx` or an `Accept` header.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import authorize, list_scope
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_choice, check_limit, decode_cursor, page
from api.types import Code, Currency, LongText, Yuan, YuanOut
from loanfund.errors import NotFound, invalid
from loanfund.money import CURRENCY, format_fen, format_pct, parse_yuan
from loanfund.subsidies import exports, queries, service
from loanfund.subsidies.queries import STATUSES, Claim, ClaimLine

Ctx = NamedDependency[RequestContext]

FILE = ("admin", "bank")
REVIEW = ("admin", "fund_manager")
READ = ("admin", "fund_manager", "auditor", "bank")

CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---- schemas -------------------------------------------------------------------------------------


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    fund_code: Code
    period: Annotated[str, msgspec.Meta(min_length=1, max_length=7, description="2023Q3, 2023H2 or 2023-07")]
    bank_code: Code | None = None  # admin only: the bank the claim is for; a bank files for itself


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    loan_id: Code
    approved_subsidy: Yuan  # "0" allowed: the line is rejected
    reason: LongText | None = None


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    decisions: list[DecisionIn] = []


class ExclusionOut(msgspec.Struct):
    from_: date = msgspec.field(name="from")
    to: date = msgspec.field(name="to")
    days: int = 0
    reason: str = ""


class SpanOut(msgspec.Struct):
    from_: date = msgspec.field(name="from")
    to: date = msgspec.field(name="to")
    days: int = 0
    principal: YuanOut = ""
    loan_year: int = 1
    rule: str = ""
    rate_pct: str = ""
    share: str = ""
    subsidy_rate_pct: str = ""
    excluded: str | None = None
    interest_exact: str = ""
    subsidy_exact: str = ""


class LineOut(msgspec.Struct):
    loan_id: str
    loan_number: str
    opening_principal: YuanOut
    closing_principal: YuanOut
    disbursed: YuanOut
    repaid: YuanOut
    days: int
    excluded_days: int
    exclusions: list[ExclusionOut]
    annual_rate_pct: str
    reference_rate_pct: str
    subsidy_rate_pct: str
    interest: YuanOut
    subsidy: YuanOut
    approved_subsidy: YuanOut | None
    review_reason: str | None
    policy_edition: str
    day_count_basis: int
    spans: list[SpanOut]


class ClaimSummary(msgspec.Struct):
    id: str
    status: str
    fund_code: str
    bank_code: str
    period: str
    period_start: date
    period_end: date
    currency: Currency
    line_count: int
    interest: YuanOut
    total: YuanOut
    approved_total: YuanOut | None
    filed_on: date
    filed_at: datetime
    reviewed_at: datetime | None
    paid_on: date | None
    paid_at: datetime | None
    entry_id: str | None


class ClaimOut(ClaimSummary):
    lines: list[LineOut]


class ClaimPage(msgspec.Struct):
    items: list[ClaimSummary]
    next_cursor: str | None


# ---- helpers -------------------------------------------------------------------------------------


def _summary_fields(claim: Claim) -> dict[str, Any]:
    return {
        "id": claim.id,
        "status": claim.status,
        "fund_code": claim.fund_code,
        "bank_code": claim.bank_code,
        "period": claim.period,
        "period_start": claim.period_start,
        "period_end": claim.period_end,
        "currency": CURRENCY,
        "line_count": claim.line_count,
        "interest": format_fen(claim.interest_fen),
        "total": format_fen(claim.total_fen),
        "approved_total": None if claim.approved_total_fen is None else format_fen(claim.approved_total_fen),
        "filed_on": claim.filed_on,
        "filed_at": claim.filed_at,
        "reviewed_at": claim.reviewed_at,
        "paid_on": claim.paid_on,
        "paid_at": claim.paid_at,
        "entry_id": claim.entry_id,
    }


def line_out(line: ClaimLine) -> LineOut:
    return LineOut(
        loan_id=line.loan_id,
        loan_number=line.loan_number,
        opening_principal=format_fen(line.opening_fen),
        closing_principal=format_fen(line.closing_fen),
        disbursed=format_fen(line.disbursed_fen),
        repaid=format_fen(line.repaid_fen),
        days=line.days,
        excluded_days=line.excluded_days,
        exclusions=msgspec.convert(line.exclusions, list[ExclusionOut]),
        annual_rate_pct=format_pct(line.annual_rate_pct),
        reference_rate_pct=format_pct(line.reference_rate_pct),
        subsidy_rate_pct=format_pct(line.subsidy_rate_pct),
        interest=format_fen(line.interest_fen),
        subsidy=format_fen(line.subsidy_fen),
        approved_subsidy=None if line.approved_fen is None else format_fen(line.approved_fen),
        review_reason=line.review_reason,
        policy_edition=line.policy_edition,
        day_count_basis=line.day_count_basis,
        spans=msgspec.convert(line.spans, list[SpanOut]),
    )


async def claim_out(ctx: RequestContext, claim_id: str) -> ClaimOut:
    claim = await queries.get_claim(ctx.conn, claim_id)
    lines = await queries.claim_lines(ctx.conn, claim_id)
    return ClaimOut(**_summary_fields(claim), lines=[line_out(line) for line in lines])


async def scoped_claim(ctx: RequestContext, claim_id: str, roles: tuple[str, ...]) -> Claim:
    claim = await queries.get_claim(ctx.conn, claim_id)
    authorize(ctx, roles, region_code=claim.region_code, bank_code=claim.bank_code, what="subsidy claim")
    return claim


def _format(format: str | None, accept: str | None) -> str:
    if format is not None:
        if format not in ("json", "csv", "xlsx"):
            raise invalid("format", "must be json, csv or xlsx")
        return format
    accept = (accept or "").lower()
    if XLSX in accept:
        return "xlsx"
    if "text/csv" in accept:
        return "csv"
    return "json"


# ---- handlers ------------------------------------------------------------------------------------


@post("/subsidy-claims", operation_class=with_body(ClaimIn), status_code=201)
async def file_claim(ctx: Ctx, request: Request[Any, Any, Any]) -> ClaimOut:
    authorize(ctx, FILE)
    body = await decode_body(request, ClaimIn)
    if ctx.client.role == "bank":
        if body.bank_code not in (None, ctx.client.bank_code):
            raise NotFound("bank not found")
        bank_code = ctx.client.bank_code
    elif body.bank_code is None:
        raise invalid("bank_code", "is required when an admin files a claim")
    else:
        bank_code = body.bank_code
    assert bank_code is not None
    tx = ctx.tx
    claim_id = await service.file_claim(tx, fund_code=body.fund_code, bank_code=bank_code, period=body.period)
    return await claim_out(ctx, claim_id)


@get("/subsidy-claims")
async def list_claims(
    ctx: Ctx,
    fund_code: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> ClaimPage:
    authorize(ctx, READ)
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
        status=status,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    return ClaimPage([ClaimSummary(**_summary_fields(row)) for row in items], next_cursor)


@get("/subsidy-claims/{claim_id:str}")
async def get_claim(
    ctx: Ctx,
    claim_id: FromPath[str],
    request: Request[Any, Any, Any],
    format: FromQuery[str | None] = None,
) -> Response[ClaimOut]:
    claim = await scoped_claim(ctx, claim_id, READ)
    chosen = _format(format, request.headers.get("accept"))
    if chosen == "json":
        return Response(await claim_out(ctx, claim_id))
    lines = await queries.claim_lines(ctx.conn, claim_id)
    name = f"subsidy-{claim.fund_code}-{claim.bank_code}-{claim.period}"
    if chosen == "csv":
        content, media_type, name = exports.to_csv(claim, lines), CSV, f"{name}.csv"
    else:
        content, media_type, name = exports.to_xlsx(claim, lines), XLSX, f"{name}.xlsx"
    return Response(
        content,  # type: ignore[arg-type]
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@post("/subsidy-claims/{claim_id:str}/review", operation_class=with_body(ReviewIn), status_code=200)
async def review_claim(ctx: Ctx, claim_id: FromPath[str], request: Request[Any, Any, Any]) -> ClaimOut:
    await scoped_claim(ctx, claim_id, REVIEW)
    body = await decode_body(request, ReviewIn)
    decisions = [
        service.Decision(
            loan_id=d.loan_id,
            approved_fen=parse_yuan(
                d.approved_subsidy, field=f"decisions[{i}].approved_subsidy", allow_zero=True
            ),
            reason=d.reason,
        )
        for i, d in enumerate(body.decisions)
    ]
    tx = ctx.tx
    await service.review_claim(tx, claim_id, decisions)
    return await claim_out(ctx, claim_id)


@post("/subsidy-claims/{claim_id:str}/pay", status_code=200)
async def pay_claim(ctx: Ctx, claim_id: FromPath[str]) -> ClaimOut:
    await scoped_claim(ctx, claim_id, REVIEW)
    tx = ctx.tx
    await service.pay_claim(tx, claim_id)
    return await claim_out(ctx, claim_id)


router = Router(path="/", route_handlers=[file_claim, list_claims, get_claim, review_claim, pay_claim])

"""Eligibility checks and applications: submit at the window, approve at the fund, reject, withdraw."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import authorize, list_scope
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_choice, check_limit, decode_cursor, page
from api.routes.borrowers import scoped_borrower
from api.types import Code, Count, Currency, LongText, Months, Yuan, YuanOut
from loanfund.applications import queries, service
from loanfund.applications.queries import STATUSES, Application
from loanfund.borrowers import queries as borrower_queries
from loanfund.borrowers.queries import Borrower
from loanfund.eligibility import queries as eligibility_queries
from loanfund.eligibility import service as eligibility
from loanfund.eligibility.rules import Eligibility, OtherLoanFacts
from loanfund.errors import NotFound
from loanfund.funds import queries as fund_queries
from loanfund.money import CURRENCY, format_fen, parse_yuan

Ctx = NamedDependency[RequestContext]

SUBMIT = ("admin", "window")
CHECK = ("admin", "window", "fund_manager")
READ = ("admin", "fund_manager", "window", "auditor", "bank")
APPROVE = ("admin", "fund_manager")
REJECT = ("admin", "fund_manager", "bank")
WITHDRAW = ("admin", "window")


# ---- schemas -------------------------------------------------------------------------------------


class GuaranteeIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["credit", "guarantor", "collateral", "joint"]
    guarantor_ids: list[Code] | None = None
    collateral_description: LongText | None = None
    joint_borrower_ids: list[Code] | None = None


class OtherLoanIn(msgspec.Struct, forbid_unknown_fields=True):
    holder: Literal["borrower", "spouse"]
    kind: Literal["student", "poverty_relief", "housing", "car", "consumer", "business", "other"]
    outstanding: Yuan


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True):
    fund_code: Code
    bank_code: Code
    borrower_id: Code
    amount: Yuan
    term_months: Months
    purpose: LongText
    micro_profit: bool
    guarantee: GuaranteeIn
    jobs_created: Count
    applied_on: date
    # Extension to the contract: the other members of a partnership (合伙经营), registered individuals.
    partner_borrower_ids: list[Code] = msgspec.field(default_factory=list)
    # Extension (issue 9): loans outside the programme held by the borrower or the spouse (2018 rule).
    other_loans: list[OtherLoanIn] = msgspec.field(default_factory=list)


class ReasonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText


class WithdrawIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: LongText | None = None


class CheckOut(msgspec.Struct):
    rule: str
    passed: bool
    detail: str


class EligibilityOut(msgspec.Struct):
    eligible: bool
    is_4050: bool
    policy_edition: str
    checks: list[CheckOut]


class GuaranteeOut(msgspec.Struct):
    kind: str
    guarantor_ids: list[str]
    collateral_description: str | None
    joint_borrower_ids: list[str]
    # The fund's guarantee once approved (the reservation at the bank), else null.
    id: str | None
    currency: Currency
    amount: YuanOut | None
    approved_on: date | None
    expires_on: date | None


class OtherLoanOut(msgspec.Struct):
    holder: str
    kind: str
    currency: Currency
    outstanding: YuanOut


class BorrowerBrief(msgspec.Struct):
    id: str
    kind: str
    name: str
    id_number_masked: str | None
    uscc: str | None


class TransitionOut(msgspec.Struct):
    status: str
    at: datetime
    client_id: str | None
    reason: str | None = None


class ApplicationOut(msgspec.Struct):
    id: str
    status: str
    fund_code: str
    bank_code: str
    borrower_id: str
    borrower: BorrowerBrief
    currency: Currency
    amount: YuanOut
    term_months: int
    purpose: str
    micro_profit: bool
    jobs_created: int
    applied_on: date
    policy_edition: str
    is_4050: bool
    guarantee: GuaranteeOut
    eligibility: EligibilityOut
    loan_id: str | None
    history: list[TransitionOut]
    partner_borrower_ids: list[str]
    other_loans: list[OtherLoanOut]


class ApplicationPage(msgspec.Struct):
    items: list[ApplicationOut]
    next_cursor: str | None


# ---- helpers -------------------------------------------------------------------------------------


def eligibility_out(result: Eligibility) -> EligibilityOut:
    return EligibilityOut(
        eligible=result.eligible,
        is_4050=result.is_4050,
        policy_edition=result.policy_edition,
        checks=[CheckOut(c.rule, c.passed, c.detail) for c in result.checks],
    )


def _history(app: Application) -> list[TransitionOut]:
    steps = [TransitionOut("submitted", app.submitted_at, app.submitted_by)]
    if app.approved_at is not None:
        steps.append(TransitionOut("guarantee_approved", app.approved_at, app.approved_by))
    if app.disbursed_at is not None:
        steps.append(TransitionOut("disbursed", app.disbursed_at, app.disbursed_by))
    if app.closed_at is not None:
        steps.append(TransitionOut(app.stored_status, app.closed_at, app.closed_by, app.close_reason))
    return steps


async def application_out(
    ctx: RequestContext,
    app: Application,
    borrower: Borrower | None = None,
    other_loans: tuple[OtherLoanFacts, ...] | None = None,
) -> ApplicationOut:
    if borrower is None or borrower.id != app.borrower_id:
        borrower = await borrower_queries.get_borrower(ctx.conn, app.borrower_id)
    if other_loans is None:
        other_loans = (await eligibility_queries.other_loans(ctx.conn, [app.id]))[app.id]
    individual = borrower.kind == "individual"
    stored = app.eligibility
    return ApplicationOut(
        id=app.id,
        status=app.status,
        fund_code=app.fund_code,
        bank_code=app.bank_code,
        borrower_id=app.borrower_id,
        borrower=BorrowerBrief(
            id=borrower.id,
            kind=borrower.kind,
            name=borrower.name,
            id_number_masked=borrower.id_number_masked if individual else None,
            uscc=None if individual else borrower.id_number,
        ),
        currency=CURRENCY,
        amount=format_fen(app.amount_fen),
        term_months=app.term_months,
        purpose=app.purpose,
        micro_profit=app.micro_profit,
        jobs_created=app.jobs_created,
        applied_on=app.applied_on,
        policy_edition=app.policy_edition,
        is_4050=app.is_4050,
        guarantee=GuaranteeOut(
            kind=app.guarantee_kind,
            guarantor_ids=list(app.guarantor_ids),
            collateral_description=app.collateral_description,
            joint_borrower_ids=list(app.joint_borrower_ids),
            id=app.guarantee_id,
            currency=CURRENCY,
            amount=format_fen(app.guarantee_amount_fen) if app.guarantee_amount_fen is not None else None,
            approved_on=app.approved_on,
            expires_on=app.guarantee_expires_on,
        ),
        eligibility=EligibilityOut(
            eligible=bool(stored["eligible"]),
            is_4050=bool(stored["is_4050"]),
            policy_edition=str(stored["policy_edition"]),
            checks=[CheckOut(c["rule"], c["passed"], c["detail"]) for c in stored["checks"]],
        ),
        loan_id=app.loan_id,
        history=_history(app),
        partner_borrower_ids=list(app.partner_borrower_ids),
        other_loans=[
            OtherLoanOut(loan.holder, loan.kind, CURRENCY, format_fen(loan.outstanding_fen))
            for loan in other_loans
        ],
    )


async def _prepare(
    ctx: RequestContext, body: ApplicationIn
) -> tuple[eligibility.ApplicationRequest, Borrower]:
    """The request in library terms; the fund and borrower must be in the caller's scope (else 404)."""
    amount = parse_yuan(body.amount)
    fund = await fund_queries.get_fund(ctx.conn, body.fund_code)
    if not ctx.client.sees_region(fund.region_code):
        raise NotFound("fund not found")
    borrower, _ = await scoped_borrower(ctx, body.borrower_id, (ctx.client.role,))
    await service.check_bank(ctx.conn, body.bank_code)
    guarantee = body.guarantee
    request = eligibility.ApplicationRequest(
        fund_code=body.fund_code,
        bank_code=body.bank_code,
        borrower_id=body.borrower_id,
        amount_fen=amount,
        term_months=body.term_months,
        applied_on=body.applied_on,
        guarantee=eligibility.GuaranteeRequest(
            kind=guarantee.kind,
            guarantor_ids=tuple(guarantee.guarantor_ids or ()),
            collateral_description=guarantee.collateral_description,
            joint_borrower_ids=tuple(guarantee.joint_borrower_ids or ()),
        ),
        partner_borrower_ids=tuple(body.partner_borrower_ids),
        other_loans=tuple(
            OtherLoanFacts(
                loan.holder, loan.kind, parse_yuan(loan.outstanding, field=f"other_loans[{i}].outstanding")
            )
            for i, loan in enumerate(body.other_loans)
        ),
        purpose=body.purpose,
        jobs_created=body.jobs_created,
    )
    return request, borrower


def _scope_prefix(ctx: RequestContext) -> str | None:
    return None if ctx.client.role == "admin" else ctx.client.region_prefix


async def scoped_application(ctx: RequestContext, application_id: str, roles: tuple[str, ...]) -> Application:
    app = await queries.get_application(ctx.conn, application_id, ctx.today)
    authorize(ctx, roles, region_code=app.region_code, bank_code=app.bank_code, what="application")
    return app


async def locked_application(
    ctx: RequestContext, application_id: str, roles: tuple[str, ...]
) -> queries.LockedApplication:
    """Read once, locked: the scope check and the command use the same row (refusals roll back)."""
    app = await queries.lock_application(ctx.tx, application_id)
    authorize(ctx, roles, region_code=app.region_code, bank_code=app.bank_code, what="application")
    return app


# ---- handlers ------------------------------------------------------------------------------------


@post("/eligibility-checks", operation_class=with_body(ApplicationIn), status_code=200)
async def check_eligibility(ctx: Ctx, request: Request[Any, Any, Any]) -> EligibilityOut:
    """The rules of the fund's policy in force on `applied_on`, each with its reason. Stores nothing."""
    authorize(ctx, CHECK)
    body = await decode_body(request, ApplicationIn)
    app_request, borrower = await _prepare(ctx, body)
    result = await eligibility.check(
        ctx.conn, app_request, borrower=borrower, region_prefix=_scope_prefix(ctx), today=ctx.today
    )
    return eligibility_out(result)


@post("/applications", operation_class=with_body(ApplicationIn), status_code=201)
async def submit_application(ctx: Ctx, request: Request[Any, Any, Any]) -> ApplicationOut:
    authorize(ctx, SUBMIT)
    body = await decode_body(request, ApplicationIn)
    app_request, borrower = await _prepare(ctx, body)
    application_id, _ = await service.submit(
        ctx.tx,
        app_request,
        borrower=borrower,
        purpose=body.purpose,
        micro_profit=body.micro_profit,
        jobs_created=body.jobs_created,
        region_prefix=_scope_prefix(ctx),
    )
    return await application_out(ctx, await queries.get_application(ctx.conn, application_id, ctx.today))


@get("/applications")
async def list_applications(
    ctx: Ctx,
    status: FromQuery[str | None] = None,
    fund_code: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> ApplicationPage:
    authorize(ctx, READ)
    limit = check_limit(limit)
    check_choice(status, "status", STATUSES)
    scope = list_scope(ctx, bank_code)
    if scope.empty:
        return ApplicationPage([], None)
    rows = await queries.list_applications(
        ctx.conn,
        ctx.today,
        region_prefix=scope.region_prefix,
        bank_code=scope.bank_code,
        fund_code=fund_code,
        status=status,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    people = await borrower_queries.get_borrowers(ctx.conn, [row.borrower_id for row in items])
    declared = await eligibility_queries.other_loans(ctx.conn, [row.id for row in items])
    return ApplicationPage(
        [await application_out(ctx, row, people[row.borrower_id], declared[row.id]) for row in items],
        next_cursor,
    )


@get("/applications/{application_id:str}")
async def get_application(ctx: Ctx, application_id: FromPath[str]) -> ApplicationOut:
    return await application_out(ctx, await scoped_application(ctx, application_id, READ))


@post("/applications/{application_id:str}/approve", status_code=200)
async def approve_application(ctx: Ctx, application_id: FromPath[str]) -> ApplicationOut:
    """The fund's guarantee: reserves the amount at the bank for `reservation_days` (21)."""
    locked = await locked_application(ctx, application_id, APPROVE)
    return await application_out(
        ctx, await service.approve(ctx.tx, locked), locked.borrower, locked.other_loans
    )


@post("/applications/{application_id:str}/reject", operation_class=with_body(ReasonIn), status_code=200)
async def reject_application(
    ctx: Ctx, application_id: FromPath[str], request: Request[Any, Any, Any]
) -> ApplicationOut:
    locked = await locked_application(ctx, application_id, REJECT)
    body = await decode_body(request, ReasonIn)
    return await application_out(
        ctx, await service.reject(ctx.tx, locked, reason=body.reason), locked.borrower, locked.other_loans
    )


@post("/applications/{application_id:str}/withdraw", operation_class=with_body(WithdrawIn), status_code=200)
async def withdraw_application(
    ctx: Ctx, application_id: FromPath[str], request: Request[Any, Any, Any]
) -> ApplicationOut:
    """The body is optional: `{"reason": "..."}`."""
    locked = await locked_application(ctx, application_id, WITHDRAW)
    reason = None
    if (await request.body()).strip():
        reason = (await decode_body(request, WithdrawIn)).reason
    return await application_out(
        ctx, await service.withdraw(ctx.tx, locked, reason=reason), locked.borrower, locked.other_loans
    )


router = Router(
    path="/",
    route_handlers=[
        check_eligibility,
        submit_application,
        list_applications,
        get_application,
        approve_application,
        reject_application,
        withdraw_application,
    ],
)

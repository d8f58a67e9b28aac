"""Loans (bank): disbursement under an approved guarantee, repayments, an extension, missed instalments.

Every bank POST needs an Idempotency-Key (enforced by `authorize`); a retry with the same key returns
the stored response and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import authorize, list_scope
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_choice, check_limit, decode_cursor, page
from api.types import Code, Currency, Pct, Yuan, YuanOut
from loanfund.applications import queries as application_queries
from loanfund.loans import queries, service
from loanfund.loans.queries import STATUSES, Loan, LockedLoan, Repayment
from loanfund.money import CURRENCY, format_fen, format_pct, parse_pct, parse_yuan

Ctx = NamedDependency[RequestContext]

WRITE = ("admin", "bank")
READ = ("admin", "fund_manager", "auditor", "bank")


# ---- schemas -------------------------------------------------------------------------------------


class LoanIn(msgspec.Struct, forbid_unknown_fields=True):
    application_id: Code
    loan_number: Code
    principal: Yuan
    annual_rate_pct: Pct
    disbursed_on: date
    maturity_on: date
    contracted_on: date | None = None


class RepaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    principal: Yuan  # "0" allowed when interest is above zero
    interest: Yuan  # "0" allowed when principal is above zero
    paid_on: date


class ExtensionIn(msgspec.Struct, forbid_unknown_fields=True):
    new_maturity_on: date
    guarantor_consent: bool


class OverdueIn(msgspec.Struct, forbid_unknown_fields=True):
    overdue_since: date
    overdue_principal: Yuan  # "0" allowed: an instalment of interest only
    # Extension: the interest the instalment missed; it stays overdue until that is paid too.
    overdue_interest: Yuan | None = None


class ExtensionOut(msgspec.Struct):
    id: str
    previous_maturity_on: date
    new_maturity_on: date
    guarantor_consent: bool
    extended_on: date


class LoanOut(msgspec.Struct):
    id: str
    status: str
    application_id: str
    fund_code: str
    bank_code: str
    borrower_id: str
    guarantee_id: str
    loan_number: str
    currency: Currency
    principal: YuanOut
    outstanding_principal: YuanOut
    interest_paid: YuanOut
    annual_rate_pct: str
    disbursed_on: date
    contracted_on: date
    maturity_on: date
    original_maturity_on: date
    term_months: int
    reference_rate_kind: str
    reference_rate_pct: str
    reference_rate_date: date
    reference_rate_stale: bool
    rate_ceiling_pct: str
    policy_edition: str
    days_past_due: int
    overdue_since: date | None
    overdue_principal: YuanOut
    extension_count: int
    extensions: list[ExtensionOut]
    repaid_on: date | None
    created_at: datetime


class RepaymentOut(msgspec.Struct):
    id: str
    currency: Currency
    principal: YuanOut
    interest: YuanOut
    paid_on: date
    outstanding_principal: YuanOut
    created_at: datetime


class LoanWithRepayment(LoanOut):
    repayment: RepaymentOut


class LoanPage(msgspec.Struct):
    items: list[LoanOut]
    next_cursor: str | None


# ---- helpers -------------------------------------------------------------------------------------


async def loan_fields(ctx: RequestContext, loan: Loan) -> dict[str, Any]:
    # Each extension adds one to extension_count in its transaction: none counted, none to read.
    extensions = await queries.extensions(ctx.conn, loan.id) if loan.extension_count else []
    return {
        "id": loan.id,
        "status": loan.status,
        "application_id": loan.application_id,
        "fund_code": loan.fund_code,
        "bank_code": loan.bank_code,
        "borrower_id": loan.borrower_id,
        "guarantee_id": loan.guarantee_id,
        "loan_number": loan.loan_number,
        "currency": CURRENCY,
        "principal": format_fen(loan.principal_fen),
        "outstanding_principal": format_fen(loan.outstanding_fen),
        "interest_paid": format_fen(loan.interest_paid_fen),
        "annual_rate_pct": format_pct(loan.annual_rate_pct),
        "disbursed_on": loan.disbursed_on,
        "contracted_on": loan.contracted_on,
        "maturity_on": loan.maturity_on,
        "original_maturity_on": loan.original_maturity_on,
        "term_months": loan.term_months,
        "reference_rate_kind": loan.reference_rate_kind,
        "reference_rate_pct": format_pct(loan.reference_rate_pct),
        "reference_rate_date": loan.reference_rate_date,
        "reference_rate_stale": loan.reference_rate_stale,
        "rate_ceiling_pct": format_pct(loan.rate_ceiling_pct),
        "policy_edition": loan.policy_edition,
        "days_past_due": loan.days_past_due,
        "overdue_since": loan.overdue_since,
        "overdue_principal": format_fen(loan.overdue_principal_fen),
        "extension_count": loan.extension_count,
        "extensions": [
            ExtensionOut(e.id, e.previous_maturity_on, e.new_maturity_on, e.guarantor_consent, e.extended_on)
            for e in extensions
        ],
        "repaid_on": loan.repaid_on,
        "created_at": loan.created_at,
    }


async def loan_out(ctx: RequestContext, loan: Loan) -> LoanOut:
    return LoanOut(**await loan_fields(ctx, loan))


def repayment_out(repayment: Repayment) -> RepaymentOut:
    return RepaymentOut(
        id=repayment.id,
        currency=CURRENCY,
        principal=format_fen(repayment.principal_fen),
        interest=format_fen(repayment.interest_fen),
        paid_on=repayment.paid_on,
        outstanding_principal=format_fen(repayment.outstanding_after_fen),
        created_at=repayment.created_at,
    )


async def scoped_loan(ctx: RequestContext, loan_id: str, roles: tuple[str, ...]) -> Loan:
    loan = await queries.get_loan(ctx.conn, loan_id, ctx.today)
    authorize(ctx, roles, region_code=loan.region_code, bank_code=loan.bank_code, what="loan")
    return loan


async def locked_loan(ctx: RequestContext, loan_id: str, roles: tuple[str, ...]) -> LockedLoan:
    """Read once, locked: the scope check and the command use the same row (refusals roll back)."""
    loan = await queries.lock_loan(ctx.tx, loan_id)
    authorize(ctx, roles, region_code=loan.region_code, bank_code=loan.bank_code, what="loan")
    return loan


# ---- handlers ------------------------------------------------------------------------------------


@post("/loans", operation_class=with_body(LoanIn), status_code=201)
async def disburse(ctx: Ctx, request: Request[Any, Any, Any]) -> LoanOut:
    authorize(ctx, WRITE)
    body = await decode_body(request, LoanIn)
    app = await application_queries.lock_application(ctx.tx, body.application_id)
    authorize(ctx, WRITE, region_code=app.region_code, bank_code=app.bank_code, what="application")
    principal = parse_yuan(body.principal, field="principal")
    rate = parse_pct(body.annual_rate_pct, field="annual_rate_pct")
    loan = await service.disburse(
        ctx.tx,
        app,
        loan_number=body.loan_number,
        principal_fen=principal,
        annual_rate_pct=rate,
        disbursed_on=body.disbursed_on,
        maturity_on=body.maturity_on,
        contracted_on=body.contracted_on,
    )
    return await loan_out(ctx, loan)


@get("/loans")
async def list_loans(
    ctx: Ctx,
    status: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    fund_code: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> LoanPage:
    authorize(ctx, READ)
    limit = check_limit(limit)
    check_choice(status, "status", STATUSES)
    scope = list_scope(ctx, bank_code)
    if scope.empty:
        return LoanPage([], None)
    rows = await queries.list_loans(
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
    return LoanPage([await loan_out(ctx, row) for row in items], next_cursor)


@get("/loans/{loan_id:str}")
async def get_loan(ctx: Ctx, loan_id: FromPath[str]) -> LoanOut:
    return await loan_out(ctx, await scoped_loan(ctx, loan_id, READ))


@post("/loans/{loan_id:str}/repayments", operation_class=with_body(RepaymentIn), status_code=201)
async def repay(ctx: Ctx, loan_id: FromPath[str], request: Request[Any, Any, Any]) -> LoanWithRepayment:
    locked = await locked_loan(ctx, loan_id, WRITE)
    body = await decode_body(request, RepaymentIn)
    principal = parse_yuan(body.principal, field="principal", allow_zero=True)
    interest = parse_yuan(body.interest, field="interest", allow_zero=True)
    loan, repayment = await service.repay(
        ctx.tx, locked, principal_fen=principal, interest_fen=interest, paid_on=body.paid_on
    )
    return LoanWithRepayment(**await loan_fields(ctx, loan), repayment=repayment_out(repayment))


@post("/loans/{loan_id:str}/extensions", operation_class=with_body(ExtensionIn), status_code=200)
async def extend(ctx: Ctx, loan_id: FromPath[str], request: Request[Any, Any, Any]) -> LoanOut:
    locked = await locked_loan(ctx, loan_id, WRITE)
    body = await decode_body(request, ExtensionIn)
    await service.extend(
        ctx.tx, locked, new_maturity_on=body.new_maturity_on, guarantor_consent=body.guarantor_consent
    )
    return await loan_out(ctx, await queries.get_loan(ctx.conn, loan_id, ctx.today))


@post("/loans/{loan_id:str}/overdue", operation_class=with_body(OverdueIn), status_code=200)
async def report_overdue(ctx: Ctx, loan_id: FromPath[str], request: Request[Any, Any, Any]) -> LoanOut:
    locked = await locked_loan(ctx, loan_id, WRITE)
    body = await decode_body(request, OverdueIn)
    overdue_principal = parse_yuan(body.overdue_principal, field="overdue_principal", allow_zero=True)
    overdue_interest = (
        0
        if body.overdue_interest is None
        else parse_yuan(body.overdue_interest, field="overdue_interest", allow_zero=True)
    )
    await service.report_overdue(
        ctx.tx,
        locked,
        overdue_since=body.overdue_since,
        overdue_principal_fen=overdue_principal,
        overdue_interest_fen=overdue_interest,
    )
    return await loan_out(ctx, await queries.get_loan(ctx.conn, loan_id, ctx.today))


router = Router(path="/", route_handlers=[disburse, list_loans, get_loan, repay, extend, report_overdue])

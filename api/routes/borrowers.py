"""Borrowers and guarantors: registration at the window, reads in scope.

ID numbers are shown masked (`id_number_masked`) everywhere; the full number only to a bank holding a
loan of that borrower. A second registration of the same person is refused as a duplicate that names
the existing record, and the caller's region is linked to that record (committed despite the refusal).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import authorize
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from api.types import Code, Count, Currency, ShortText, Text, Year, Yuan, YuanOut
from loanfund.borrowers import queries, service
from loanfund.borrowers.queries import Borrower, Certificate
from loanfund.errors import Duplicate, NotFound, invalid
from loanfund.guarantors import queries as guarantor_queries
from loanfund.guarantors import service as guarantor_service
from loanfund.guarantors.queries import Guarantor
from loanfund.identity import is_4050, normalise_id
from loanfund.money import CURRENCY, format_fen, parse_yuan

Ctx = NamedDependency[RequestContext]

REGISTER = ("admin", "window")
READ = ("admin", "fund_manager", "window", "auditor", "bank")
GUARANTOR_READ = ("admin", "fund_manager", "window", "auditor")


# ---- schemas -------------------------------------------------------------------------------------


class CertificateIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["reemployment"]
    number: Text
    issued_on: date
    inspected_year: Year


class IndividualIn(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="individual"):
    id_number: Code
    name: Text
    categories: list[Code]
    phone: ShortText | None = None
    certificates: list[CertificateIn] = msgspec.field(default_factory=list)
    credit_community: bool = False
    syb_trained: bool = False
    region_code: Code | None = None  # admin only; a window registers in its own region
    # Extensions (issue 9): facts the eligibility rules read.
    graduation_year: Year | None = None  # a graduate counts for the policy's graduate_window_years
    syb_plan_approved_on: date | None = None  # SYB business plan approved: the credit-guarantee waiver


class EnterpriseIn(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="enterprise"):
    uscc: Code
    name: Text
    staff_count: Count
    eligible_new_hires: Count
    categories: list[Code] | None = None
    region_code: Code | None = None


BorrowerIn = IndividualIn | EnterpriseIn


class CertificateOut(msgspec.Struct):
    kind: str
    number: str
    issued_on: date
    inspected_year: Year


class BorrowerOut(msgspec.Struct):
    id: str
    kind: str
    name: str
    id_number_masked: str | None
    id_number: str | None  # only to a bank holding a loan of this borrower
    uscc: str | None
    birth_date: date | None
    gender: str | None
    is_4050: bool
    categories: list[str]
    certificates: list[CertificateOut]
    credit_community: bool
    syb_trained: bool
    graduation_year: int | None
    syb_plan_approved_on: date | None
    staff_count: int | None
    eligible_new_hires: int | None
    phone: str | None
    region_code: str
    regions: list[str]
    created_at: datetime


class BorrowerPage(msgspec.Struct):
    items: list[BorrowerOut]
    next_cursor: str | None


class GuarantorIn(msgspec.Struct, forbid_unknown_fields=True):
    id_number: Code
    name: Text
    employer: Text
    employer_kind: Literal["civil_service", "public_institution", "state_enterprise", "other"]
    monthly_income: Yuan
    region_code: Code | None = None


class GuarantorOut(msgspec.Struct):
    id: str
    name: str
    id_number_masked: str
    employer: str
    employer_kind: str
    currency: Currency
    monthly_income: YuanOut
    active_guarantees: int
    region_code: str
    regions: list[str]
    created_at: datetime


class GuarantorPage(msgspec.Struct):
    items: list[GuarantorOut]
    next_cursor: str | None


# ---- helpers -------------------------------------------------------------------------------------


def registering_region(ctx: RequestContext, given: str | None) -> str:
    """A window registers in its own region (or inside it); an admin says which region."""
    client = ctx.client
    if client.role == "admin":
        if given is None:
            raise invalid("region_code", "an admin must give the region")
        return service.check_region(given)
    prefix = client.region_prefix or ""
    if given is None:
        return prefix
    if not given.startswith(prefix):
        raise invalid("region_code", "must lie inside the window's region")
    return service.check_region(given)


def visible_region(ctx: RequestContext, regions: list[str]) -> str:
    """One of the record's regions that the caller sees, or any (then `authorize` refuses with 404)."""
    return next(
        (region for region in regions if ctx.client.sees_region(region)), regions[0] if regions else ""
    )


async def scoped_borrower(
    ctx: RequestContext, borrower_id: str, roles: tuple[str, ...]
) -> tuple[Borrower, bool]:
    """The borrower if the caller may see it, and whether the caller is a bank holding a loan of it."""
    borrower = await queries.get_borrower(ctx.conn, borrower_id)
    client = ctx.client
    if client.role == "bank":
        holds = await queries.bank_holds_loan(ctx.conn, borrower_id, client.bank_code or "")
        authorize(ctx, roles, bank_code=client.bank_code if holds else "", what="borrower")
        return borrower, holds
    regions = await queries.regions(ctx.conn, borrower_id)
    authorize(ctx, roles, region_code=visible_region(ctx, regions), what="borrower")
    return borrower, False


async def borrower_out(ctx: RequestContext, borrower: Borrower, *, full_id: bool) -> BorrowerOut:
    individual = borrower.kind == "individual"
    today = ctx.today
    flag = (
        individual
        and borrower.birth_date is not None
        and borrower.gender is not None
        and borrower.birth_date <= today
        and is_4050(borrower.birth_date, borrower.gender, today)
    )
    return BorrowerOut(
        id=borrower.id,
        kind=borrower.kind,
        name=borrower.name,
        id_number_masked=borrower.id_number_masked if individual else None,
        id_number=borrower.id_number if individual and full_id else None,
        uscc=None if individual else borrower.id_number,
        birth_date=borrower.birth_date,
        gender=borrower.gender,
        is_4050=bool(flag),
        categories=list(borrower.categories),
        certificates=[
            CertificateOut(c.kind, c.number, c.issued_on, c.inspected_year) for c in borrower.certificates
        ],
        credit_community=borrower.credit_community,
        syb_trained=borrower.syb_trained,
        graduation_year=borrower.graduation_year,
        syb_plan_approved_on=borrower.syb_plan_approved_on,
        staff_count=borrower.staff_count,
        eligible_new_hires=borrower.eligible_new_hires,
        phone=borrower.phone,
        region_code=borrower.region_code,
        regions=await queries.regions(ctx.conn, borrower.id),
        created_at=borrower.created_at,
    )


async def guarantor_out(ctx: RequestContext, guarantor: Guarantor) -> GuarantorOut:
    counts = await guarantor_queries.active_guarantees(ctx.conn, [guarantor.id], ctx.today)
    return GuarantorOut(
        id=guarantor.id,
        name=guarantor.name,
        id_number_masked=guarantor.id_number_masked,
        employer=guarantor.employer,
        employer_kind=guarantor.employer_kind,
        currency=CURRENCY,
        monthly_income=format_fen(guarantor.monthly_income_fen),
        active_guarantees=counts[guarantor.id],
        region_code=guarantor.region_code,
        regions=await guarantor_queries.regions(ctx.conn, guarantor.id),
        created_at=guarantor.created_at,
    )


# ---- borrowers -----------------------------------------------------------------------------------


@post("/borrowers", operation_class=with_body(BorrowerIn), status_code=201)  # type: ignore[arg-type]
async def register_borrower(ctx: Ctx, request: Request[Any, Any, Any]) -> BorrowerOut:
    authorize(ctx, REGISTER)
    body: IndividualIn | EnterpriseIn = await decode_body(request, BorrowerIn)  # type: ignore[arg-type]
    region = registering_region(ctx, body.region_code)
    try:
        if isinstance(body, IndividualIn):
            borrower_id = await service.register_individual(
                ctx.tx,
                id_number=body.id_number,
                name=body.name,
                phone=body.phone,
                categories=body.categories,
                certificates=[
                    Certificate(c.kind, c.number, c.issued_on, c.inspected_year) for c in body.certificates
                ],
                credit_community=body.credit_community,
                syb_trained=body.syb_trained,
                region_code=region,
                graduation_year=body.graduation_year,
                syb_plan_approved_on=body.syb_plan_approved_on,
            )
        else:
            borrower_id = await service.register_enterprise(
                ctx.tx,
                uscc=body.uscc,
                name=body.name,
                staff_count=body.staff_count,
                eligible_new_hires=body.eligible_new_hires,
                categories=body.categories,
                region_code=region,
            )
    except Duplicate as exc:
        # api.md: the record becomes visible to the caller's region even though the request is refused.
        # A refusal rolls the request back, so this one effect is committed on its own first.
        await service.share_with_region(ctx.tx, borrower_id=str(exc.facts["id"]), region_code=region)
        await ctx.conn.commit()
        raise
    return await borrower_out(ctx, await queries.get_borrower(ctx.conn, borrower_id), full_id=False)


@get("/borrowers/{borrower_id:str}")
async def get_borrower(ctx: Ctx, borrower_id: FromPath[str]) -> BorrowerOut:
    borrower, holds = await scoped_borrower(ctx, borrower_id, READ)
    return await borrower_out(ctx, borrower, full_id=holds)


@get("/borrowers")
async def list_borrowers(
    ctx: Ctx,
    id_number: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> BorrowerPage:
    """Borrowers in scope; `id_number` finds a resident ID or USCC exactly (spaces ignored, x = X)."""
    authorize(ctx, READ)
    limit = check_limit(limit)
    client = ctx.client
    rows = await queries.list_borrowers(
        ctx.conn,
        region_prefix=client.region_prefix if client.role in ("fund_manager", "window", "auditor") else None,
        bank_code=client.bank_code if client.role == "bank" else None,
        id_number=normalise_id(id_number).upper() if id_number is not None else None,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    # A bank only ever lists borrowers of its own loans, so it sees their full numbers.
    full = client.role == "bank"
    return BorrowerPage([await borrower_out(ctx, row, full_id=full) for row in items], next_cursor)


# ---- guarantors ----------------------------------------------------------------------------------


async def scoped_guarantor(ctx: RequestContext, guarantor_id: str, roles: tuple[str, ...]) -> Guarantor:
    guarantor = await guarantor_queries.get_guarantor(ctx.conn, guarantor_id)
    if ctx.client.role == "bank":
        raise NotFound("guarantor not found")
    regions = await guarantor_queries.regions(ctx.conn, guarantor_id)
    authorize(ctx, roles, region_code=visible_region(ctx, regions), what="guarantor")
    return guarantor


@post("/guarantors", operation_class=with_body(GuarantorIn), status_code=201)
async def register_guarantor(ctx: Ctx, request: Request[Any, Any, Any]) -> GuarantorOut:
    authorize(ctx, REGISTER)
    body = await decode_body(request, GuarantorIn)
    region = registering_region(ctx, body.region_code)
    income = parse_yuan(body.monthly_income, field="monthly_income")
    try:
        guarantor_id = await guarantor_service.register(
            ctx.tx,
            id_number=body.id_number,
            name=body.name,
            employer=body.employer,
            employer_kind=body.employer_kind,
            monthly_income_fen=income,
            region_code=region,
        )
    except Duplicate as exc:
        await guarantor_service.share_with_region(
            ctx.tx, guarantor_id=str(exc.facts["id"]), region_code=region
        )
        await ctx.conn.commit()
        raise
    return await guarantor_out(ctx, await guarantor_queries.get_guarantor(ctx.conn, guarantor_id))


@get("/guarantors/{guarantor_id:str}")
async def get_guarantor(ctx: Ctx, guarantor_id: FromPath[str]) -> GuarantorOut:
    return await guarantor_out(ctx, await scoped_guarantor(ctx, guarantor_id, GUARANTOR_READ))


@get("/guarantors")
async def list_guarantors(
    ctx: Ctx,
    id_number: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> GuarantorPage:
    authorize(ctx, GUARANTOR_READ)
    limit = check_limit(limit)
    client = ctx.client
    rows = await guarantor_queries.list_guarantors(
        ctx.conn,
        region_prefix=None if client.role == "admin" else client.region_prefix,
        id_number=normalise_id(id_number) if id_number is not None else None,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    return GuarantorPage([await guarantor_out(ctx, row) for row in items], next_cursor)


router = Router(
    path="/",
    route_handlers=[
        register_borrower,
        get_borrower,
        list_borrowers,
        register_guarantor,
        get_guarantor,
        list_guarantors,
    ],
)

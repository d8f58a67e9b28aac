"""Eligibility of an application against the fund's policy in force on `applied_on`. Stores nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.borrowers import queries as borrower_queries
from loanfund.borrowers.queries import Borrower
from loanfund.db.tables import application_other_loans, application_partners
from loanfund.eligibility import queries
from loanfund.eligibility.rules import (
    GUARANTEE_KINDS,
    OTHER_LOAN_HOLDERS,
    OTHER_LOAN_RECORDED_KINDS,
    BorrowerFacts,
    CertificateFacts,
    Eligibility,
    GuaranteeFacts,
    GuarantorFacts,
    OtherLoanFacts,
    Request,
    evaluate,
)
from loanfund.errors import FutureDate, invalid
from loanfund.funds.service import fund_policy
from loanfund.guarantors import queries as guarantor_queries

MAX_TERM_MONTHS = 600  # beyond any edition; longer is an input error, not an eligibility question
MAX_OTHER_LOANS = 20
MAX_PURPOSE_LENGTH = 500


@dataclass(frozen=True)
class GuaranteeRequest:
    kind: str  # credit | guarantor | collateral | joint
    guarantor_ids: tuple[str, ...] = ()
    collateral_description: str | None = None
    joint_borrower_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplicationRequest:
    fund_code: str
    bank_code: str
    borrower_id: str
    amount_fen: int
    term_months: int
    applied_on: date
    guarantee: GuaranteeRequest
    # The other members of a partnership, each a registered individual borrower.
    partner_borrower_ids: tuple[str, ...] = ()
    # Loans outside the programme held by the borrower or the spouse, as declared at the window.
    other_loans: tuple[OtherLoanFacts, ...] = ()
    # What the application says beyond the rules; checked here so that an eligibility check and a
    # submission refuse the same input (None: a library caller that checks them itself).
    purpose: str | None = None
    jobs_created: int | None = None


def _unique(ids: Sequence[str], field: str) -> None:
    if len(set(ids)) != len(ids):
        raise invalid(field, "names the same id twice")


def validate_guarantee(guarantee: GuaranteeRequest, borrower_id: str) -> None:
    """The shape of a guarantee: which fields go with which kind (422 validation_error otherwise)."""
    if guarantee.kind not in GUARANTEE_KINDS:
        raise invalid("guarantee.kind", f"must be one of {', '.join(GUARANTEE_KINDS)}")
    need = {
        "guarantor_ids": guarantee.kind == "guarantor",
        "collateral_description": guarantee.kind == "collateral",
        "joint_borrower_ids": guarantee.kind == "joint",
    }
    given = {
        "guarantor_ids": bool(guarantee.guarantor_ids),
        "collateral_description": guarantee.collateral_description is not None,
        "joint_borrower_ids": bool(guarantee.joint_borrower_ids),
    }
    for name, needed in need.items():
        if needed and not given[name]:
            raise invalid(f"guarantee.{name}", f"is required for a {guarantee.kind} guarantee")
        if given[name] and not needed:
            raise invalid(f"guarantee.{name}", f"does not belong to a {guarantee.kind} guarantee")
    _unique(guarantee.guarantor_ids, "guarantee.guarantor_ids")
    _unique(guarantee.joint_borrower_ids, "guarantee.joint_borrower_ids")
    if borrower_id in guarantee.joint_borrower_ids:
        raise invalid("guarantee.joint_borrower_ids", "must name the other members, not the borrower")
    if guarantee.collateral_description is not None and not guarantee.collateral_description.strip():
        raise invalid("guarantee.collateral_description", "must not be empty")


def validate_other_loans(loans: Sequence[OtherLoanFacts]) -> None:
    if len(loans) > MAX_OTHER_LOANS:
        raise invalid("other_loans", f"must list at most {MAX_OTHER_LOANS} loans")
    for index, loan in enumerate(loans):
        field = f"other_loans[{index}]"
        if loan.holder not in OTHER_LOAN_HOLDERS:
            raise invalid(f"{field}.holder", f"must be one of {', '.join(OTHER_LOAN_HOLDERS)}")
        if loan.kind not in OTHER_LOAN_RECORDED_KINDS:
            raise invalid(f"{field}.kind", f"must be one of {', '.join(OTHER_LOAN_RECORDED_KINDS)}")
        if loan.outstanding_fen <= 0:
            raise invalid(f"{field}.outstanding", "must be more than zero (leave out a repaid loan)")


def validate_request(request: ApplicationRequest, today: date) -> None:
    """Input faults (422 validation_error, future_date), alike for an eligibility check and a submission."""
    if request.purpose is not None:
        purpose = request.purpose.strip()
        if not purpose:
            raise invalid("purpose", "must not be empty")
        if len(purpose) > MAX_PURPOSE_LENGTH:
            raise invalid("purpose", f"must have at most {MAX_PURPOSE_LENGTH} characters")
    if request.jobs_created is not None and request.jobs_created < 0:
        raise invalid("jobs_created", "must not be negative")
    if request.amount_fen <= 0:
        raise invalid("amount", "must be more than zero")
    if not 1 <= request.term_months <= MAX_TERM_MONTHS:
        raise invalid("term_months", f"must be between 1 and {MAX_TERM_MONTHS}")
    if request.applied_on > today:
        raise FutureDate(
            f"applied_on {request.applied_on.isoformat()} is after today ({today.isoformat()})",
            field="applied_on",
        )
    validate_guarantee(request.guarantee, request.borrower_id)
    _unique(request.partner_borrower_ids, "partner_borrower_ids")
    if request.borrower_id in request.partner_borrower_ids:
        raise invalid("partner_borrower_ids", "must name the other members, not the borrower")
    validate_other_loans(request.other_loans)


def borrower_facts(borrower: Borrower) -> BorrowerFacts:
    return BorrowerFacts(
        kind=borrower.kind,
        birth_date=borrower.birth_date,
        gender=borrower.gender,
        categories=borrower.categories,
        certificates=tuple(
            CertificateFacts(cert.kind, cert.issued_on, cert.inspected_year) for cert in borrower.certificates
        ),
        credit_community=borrower.credit_community,
        syb_trained=borrower.syb_trained,
        staff_count=borrower.staff_count,
        eligible_new_hires=borrower.eligible_new_hires,
        graduation_year=borrower.graduation_year,
        syb_plan_approved_on=borrower.syb_plan_approved_on,
    )


async def guarantee_facts(
    conn: AsyncConnection, guarantee: GuaranteeRequest, borrower: Borrower, region_prefix: str | None
) -> GuaranteeFacts:
    """Who the guarantors and joint members are, as far as the caller's region sees them."""
    found = await guarantor_queries.find_visible(conn, guarantee.guarantor_ids, region_prefix)
    guarantors = tuple(
        GuarantorFacts(
            id=guarantor_id,
            found=guarantor_id in found,
            employer_kind=found[guarantor_id].employer_kind if guarantor_id in found else None,
            is_borrower=guarantor_id in found and found[guarantor_id].id_number == borrower.id_number,
        )
        for guarantor_id in guarantee.guarantor_ids
    )
    members = []
    for member_id in guarantee.joint_borrower_ids:
        members.append((member_id, await _borrower_visible(conn, member_id, region_prefix)))
    return GuaranteeFacts(
        kind=guarantee.kind,
        guarantors=guarantors,
        collateral_description=guarantee.collateral_description,
        joint_borrowers=tuple(members),
    )


async def _borrower_visible(conn: AsyncConnection, borrower_id: str, region_prefix: str | None) -> bool:
    regions = await borrower_queries.regions(conn, borrower_id)
    if not regions:
        return False
    return region_prefix is None or any(region.startswith(region_prefix) for region in regions)


async def check(
    conn: AsyncConnection,
    request: ApplicationRequest,
    *,
    borrower: Borrower,
    region_prefix: str | None,
    today: date,
) -> Eligibility:
    """Evaluate the fund's policy in force on `applied_on` for this application. Stores nothing.

    `region_prefix` is the caller's scope for finding guarantors and joint members (None: everywhere).
    """
    validate_request(request, today)
    policy = await fund_policy(conn, request.fund_code, request.applied_on)
    facts = Request(
        amount_fen=request.amount_fen,
        term_months=request.term_months,
        applied_on=request.applied_on,
        guarantee=await guarantee_facts(conn, request.guarantee, borrower, region_prefix),
        borrower=borrower_facts(borrower),
        history=await queries.history(conn, borrower.id, today),
        other_loans=request.other_loans,
    )
    partners = await partner_facts(conn, request, region_prefix)
    histories = tuple(
        [await queries.history(conn, partner_id, today) for partner_id in request.partner_borrower_ids]
    )
    return evaluate(policy, replace(facts, partners=partners, partner_histories=histories))


async def record_facts(conn: AsyncConnection, application_id: str, request: ApplicationRequest) -> None:
    """Store what a submitted application declared beyond its own row: the partnership's members (so
    the application and its loan count in each member's record) and the other loans."""
    if request.partner_borrower_ids:
        await conn.execute(
            application_partners.insert(),
            [{"application_id": application_id, "borrower_id": b} for b in request.partner_borrower_ids],
        )
    if request.other_loans:
        await conn.execute(
            application_other_loans.insert(),
            [
                {
                    "application_id": application_id,
                    "position": position,
                    "holder": loan.holder,
                    "kind": loan.kind,
                    "outstanding_fen": loan.outstanding_fen,
                }
                for position, loan in enumerate(request.other_loans)
            ],
        )


async def partner_facts(
    conn: AsyncConnection, request: ApplicationRequest, region_prefix: str | None
) -> tuple[BorrowerFacts, ...]:
    """The partners as eligibility sees them; each must be a borrower the caller's region can see."""
    partners = []
    for partner_id in request.partner_borrower_ids:
        if not await _borrower_visible(conn, partner_id, region_prefix):
            raise invalid("partner_borrower_ids", f"no borrower {partner_id} in your region")
        partners.append(borrower_facts(await borrower_queries.get_borrower(conn, partner_id)))
    return tuple(partners)

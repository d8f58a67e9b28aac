"""Registering borrowers. One record per person (resident ID) or firm (USCC) nationally.

A second registration is refused as a duplicate naming the existing record; the caller's region is
then linked to the record (`share_with_region`) so that its window can serve the person too.
The full ID number is stored but never written to the audit log: audit records carry it masked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.borrowers import queries
from loanfund.borrowers.queries import Certificate
from loanfund.clock import utcnow
from loanfund.db.tables import borrower_regions, borrowers
from loanfund.errors import Duplicate, FutureDate, invalid
from loanfund.identity import mask_id, parse_resident_id, parse_uscc
from loanfund.ids import new_id
from loanfund.policy import CATEGORIES
from loanfund.uow import Tx

FIRM_CATEGORIES = ("small_firm",)
CERTIFICATE_KINDS = ("reemployment",)
REGION_RE = re.compile(r"[0-9]{1,6}")


def check_region(region_code: str, field: str = "region_code") -> str:
    if not REGION_RE.fullmatch(region_code):
        raise invalid(field, "must be a region code or prefix of 1–6 digits")
    return region_code


def required_text(value: str, field: str, max_length: int = 200) -> str:
    value = value.strip()
    if not value:
        raise invalid(field, "must not be empty")
    if len(value) > max_length:
        raise invalid(field, f"must have at most {max_length} characters")
    return value


def checked_categories(
    categories: Sequence[str], allowed: Sequence[str], field: str = "categories"
) -> list[str]:
    """Known categories in canonical order, each once; unknown ones are refused."""
    if not categories:
        raise invalid(field, "must name at least one category")
    for index, category in enumerate(categories):
        if category not in allowed:
            raise invalid(f"{field}[{index}]", f"unknown category {category!r}; known: {', '.join(allowed)}")
    return [category for category in allowed if category in categories]


def checked_certificates(certificates: Sequence[Certificate], today: date) -> list[Certificate]:
    for index, cert in enumerate(certificates):
        field = f"certificates[{index}]"
        if cert.kind not in CERTIFICATE_KINDS:
            raise invalid(f"{field}.kind", f"must be one of {', '.join(CERTIFICATE_KINDS)}")
        required_text(cert.number, f"{field}.number", 64)
        if cert.issued_on > today:
            raise FutureDate(
                f"{field}.issued_on {cert.issued_on.isoformat()} is after today ({today.isoformat()})",
                field=f"{field}.issued_on",
            )
        if not cert.issued_on.year <= cert.inspected_year <= today.year:
            raise invalid(
                f"{field}.inspected_year",
                f"must be between the year of issue ({cert.issued_on.year}) and this year ({today.year})",
            )
    return list(certificates)


def check_eligibility_facts(
    birth_date: date, graduation_year: int | None, syb_plan_approved_on: date | None, today: date
) -> None:
    """Facts the eligibility rules read (migration 0010): not before the person could have them, not
    in the future."""
    if graduation_year is not None and not birth_date.year < graduation_year <= today.year:
        raise invalid(
            "graduation_year", f"must be after the birth year ({birth_date.year}) and at most {today.year}"
        )
    if syb_plan_approved_on is not None:
        if syb_plan_approved_on > today:
            raise FutureDate(
                f"syb_plan_approved_on {syb_plan_approved_on} is after today ({today})",
                field="syb_plan_approved_on",
            )
        if syb_plan_approved_on <= birth_date:
            raise invalid("syb_plan_approved_on", "must be after the birth date")


async def link_region(
    conn: AsyncConnection, table: sa.Table, column: str, owner_id: str, region: str
) -> bool:
    """Link a region to a record; False when it was linked already."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    result = await conn.execute(
        insert.values(
            {column: owner_id, "region_code": region, "created_at": utcnow()}
        ).on_conflict_do_nothing()
    )
    return bool(result.rowcount)


async def share_with_region(tx: Tx, *, borrower_id: str, region_code: str) -> None:
    """Make a borrower visible to a region (a window that registered them again, a fund they apply to)."""
    conn = tx.conn
    check_region(region_code)
    if await link_region(conn, borrower_regions, "borrower_id", borrower_id, region_code):
        tx.audit(
            "borrower.shared_with_region",
            "borrower",
            borrower_id,
            {"region_code": region_code},
            region_code=region_code,
        )


async def _refuse_duplicate(conn: AsyncConnection, kind: str, number: str) -> None:
    existing = await queries.find_by_number(conn, kind, number)
    if existing is not None:
        what = "a person with this ID number" if kind == "individual" else "a firm with this USCC"
        raise Duplicate(f"{what} is already registered", id=existing.id)


async def _insert(conn: AsyncConnection, kind: str, number: str, values: dict[str, object]) -> str:
    borrower_id = new_id("bor")
    now = utcnow()
    try:
        # A savepoint, so that losing a race to a concurrent registration leaves the transaction usable.
        async with conn.begin_nested():
            await conn.execute(
                borrowers.insert().values(
                    id=borrower_id, kind=kind, id_number=number, created_at=now, **values
                )
            )
    except IntegrityError:
        await _refuse_duplicate(conn, kind, number)
        raise
    await link_region(conn, borrower_regions, "borrower_id", borrower_id, str(values["region_code"]))
    return borrower_id


async def register_individual(
    tx: Tx,
    *,
    id_number: str,
    name: str,
    phone: str | None,
    categories: Sequence[str],
    certificates: Sequence[Certificate],
    credit_community: bool,
    syb_trained: bool,
    region_code: str,
    graduation_year: int | None = None,
    syb_plan_approved_on: date | None = None,
) -> str:
    """Register a person; refuses an invalid ID (`InvalidIdNumber`) or a second registration (`Duplicate`
    with the existing `id`, nothing written: the caller decides whether to share the record)."""
    conn, today = tx.conn, tx.today
    resident = parse_resident_id(id_number, today)
    name = required_text(name, "name")
    if phone is not None:
        phone = required_text(phone, "phone", 40)
    cats = checked_categories(categories, CATEGORIES)
    certs = checked_certificates(certificates, today)
    check_eligibility_facts(resident.birth_date, graduation_year, syb_plan_approved_on, today)
    check_region(region_code)
    await _refuse_duplicate(conn, "individual", resident.number)
    borrower_id = await _insert(
        conn,
        "individual",
        resident.number,
        {
            "name": name,
            "phone": phone,
            "birth_date": resident.birth_date,
            "gender": resident.gender,
            "categories": cats,
            "certificates": [cert.to_json() for cert in certs],
            "credit_community": credit_community,
            "syb_trained": syb_trained,
            "graduation_year": graduation_year,
            "syb_plan_approved_on": syb_plan_approved_on,
            "region_code": region_code,
            "created_by": tx.actor.client_id,
        },
    )
    tx.audit(
        "borrower.registered",
        "borrower",
        borrower_id,
        {
            "kind": "individual",
            "id_number_masked": mask_id(resident.number),
            "name": name,
            "categories": cats,
            "certificates": [cert.to_json() for cert in certs],
            "credit_community": credit_community,
            "syb_trained": syb_trained,
            "graduation_year": graduation_year,
            "syb_plan_approved_on": syb_plan_approved_on and syb_plan_approved_on.isoformat(),
            "region_code": region_code,
        },
        region_code=region_code,
    )
    return borrower_id


async def register_enterprise(
    tx: Tx,
    *,
    uscc: str,
    name: str,
    staff_count: int,
    eligible_new_hires: int,
    categories: Sequence[str] | None,
    region_code: str,
) -> str:
    conn = tx.conn
    code = parse_uscc(uscc)
    name = required_text(name, "name")
    if staff_count < 1:
        raise invalid("staff_count", "must be at least 1")
    if not 0 <= eligible_new_hires <= staff_count:
        raise invalid("eligible_new_hires", "must be between 0 and staff_count")
    cats = checked_categories(categories if categories is not None else FIRM_CATEGORIES, FIRM_CATEGORIES)
    check_region(region_code)
    await _refuse_duplicate(conn, "enterprise", code)
    borrower_id = await _insert(
        conn,
        "enterprise",
        code,
        {
            "name": name,
            "categories": cats,
            "certificates": [],
            "staff_count": staff_count,
            "eligible_new_hires": eligible_new_hires,
            "region_code": region_code,
            "created_by": tx.actor.client_id,
        },
    )
    tx.audit(
        "borrower.registered",
        "borrower",
        borrower_id,
        {
            "kind": "enterprise",
            "uscc": code,
            "name": name,
            "categories": cats,
            "staff_count": staff_count,
            "eligible_new_hires": eligible_new_hires,
            "region_code": region_code,
        },
        region_code=region_code,
    )
    return borrower_id

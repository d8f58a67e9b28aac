"""Registering guarantors. One record per person nationally, so that the limit on how many loans one
guarantor backs (`guarantor_max_active`) counts every fund; a second registration is a duplicate."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.borrowers.service import check_region, link_region, required_text
from loanfund.clock import utcnow
from loanfund.db.tables import guarantor_regions, guarantors
from loanfund.errors import Duplicate, invalid
from loanfund.guarantors import queries
from loanfund.identity import mask_id, parse_resident_id
from loanfund.ids import new_id
from loanfund.uow import Tx


class EmployerKind(StrEnum):
    CIVIL_SERVICE = "civil_service"
    PUBLIC_INSTITUTION = "public_institution"
    STATE_ENTERPRISE = "state_enterprise"
    OTHER = "other"


EMPLOYER_KINDS = tuple(EmployerKind)


async def share_with_region(tx: Tx, *, guarantor_id: str, region_code: str) -> None:
    conn = tx.conn
    check_region(region_code)
    if await link_region(conn, guarantor_regions, "guarantor_id", guarantor_id, region_code):
        tx.audit(
            "guarantor.shared_with_region",
            "guarantor",
            guarantor_id,
            {"region_code": region_code},
            region_code=region_code,
        )


async def _refuse_duplicate(conn: AsyncConnection, number: str) -> None:
    existing = await queries.find_by_number(conn, number)
    if existing is not None:
        raise Duplicate("a guarantor with this ID number is already registered", id=existing.id)


async def register(
    tx: Tx,
    *,
    id_number: str,
    name: str,
    employer: str,
    employer_kind: str,
    monthly_income_fen: int,
    region_code: str,
) -> str:
    conn, today = tx.conn, tx.today
    resident = parse_resident_id(id_number, today)
    name = required_text(name, "name")
    employer = required_text(employer, "employer")
    if employer_kind not in EMPLOYER_KINDS:
        raise invalid("employer_kind", f"must be one of {', '.join(EMPLOYER_KINDS)}")
    if monthly_income_fen <= 0:
        raise invalid("monthly_income", "must be more than zero")
    check_region(region_code)
    await _refuse_duplicate(conn, resident.number)
    guarantor_id = new_id("gtr")
    try:
        async with conn.begin_nested():
            await conn.execute(
                guarantors.insert().values(
                    id=guarantor_id,
                    id_number=resident.number,
                    name=name,
                    birth_date=resident.birth_date,
                    gender=resident.gender,
                    employer=employer,
                    employer_kind=employer_kind,
                    monthly_income_fen=monthly_income_fen,
                    region_code=region_code,
                    created_at=utcnow(),
                    created_by=tx.actor.client_id,
                )
            )
    except IntegrityError:
        await _refuse_duplicate(conn, resident.number)
        raise
    await link_region(conn, guarantor_regions, "guarantor_id", guarantor_id, region_code)
    tx.audit(
        "guarantor.registered",
        "guarantor",
        guarantor_id,
        {
            "id_number_masked": mask_id(resident.number),
            "name": name,
            "employer": employer,
            "employer_kind": employer_kind,
            "monthly_income_fen": monthly_income_fen,
            "region_code": region_code,
        },
        region_code=region_code,
    )
    return guarantor_id

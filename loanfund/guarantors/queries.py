"""Every read of guarantors and of the guarantees they back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import application_guarantors, applications, guarantor_regions, guarantors, loans
from loanfund.errors import NotFound
from loanfund.identity import mask_id


@dataclass(frozen=True)
class Guarantor:
    id: str
    id_number: str  # full: never shown, only masked
    name: str
    birth_date: date
    gender: str
    employer: str
    employer_kind: str
    monthly_income_fen: int
    region_code: str
    created_at: datetime

    @property
    def id_number_masked(self) -> str:
        return mask_id(self.id_number)


def _guarantor(row: Any) -> Guarantor:
    return Guarantor(
        id=row.id,
        id_number=row.id_number,
        name=row.name,
        birth_date=row.birth_date,
        gender=row.gender,
        employer=row.employer,
        employer_kind=row.employer_kind,
        monthly_income_fen=row.monthly_income_fen,
        region_code=row.region_code,
        created_at=row.created_at,
    )


async def get_guarantor(conn: AsyncConnection, guarantor_id: str) -> Guarantor:
    row = (await conn.execute(sa.select(guarantors).where(guarantors.c.id == guarantor_id))).first()
    if row is None:
        raise NotFound(f"guarantor {guarantor_id} not found")
    return _guarantor(row)


async def find_by_number(conn: AsyncConnection, number: str) -> Guarantor | None:
    row = (await conn.execute(sa.select(guarantors).where(guarantors.c.id_number == number))).first()
    return None if row is None else _guarantor(row)


async def regions(conn: AsyncConnection, guarantor_id: str) -> list[str]:
    query = (
        sa.select(guarantor_regions.c.region_code)
        .where(guarantor_regions.c.guarantor_id == guarantor_id)
        .order_by(guarantor_regions.c.created_at, guarantor_regions.c.region_code)
    )
    return list((await conn.scalars(query)).all())


async def find_visible(
    conn: AsyncConnection, guarantor_ids: Sequence[str], region_prefix: str | None
) -> dict[str, Guarantor]:
    """The guarantors among `guarantor_ids` that exist and that a region prefix sees (None: all)."""
    query = sa.select(guarantors).where(guarantors.c.id.in_(list(guarantor_ids)))
    if region_prefix is not None:
        query = query.where(
            guarantors.c.id.in_(
                sa.select(guarantor_regions.c.guarantor_id).where(
                    guarantor_regions.c.region_code.startswith(region_prefix, autoescape=True)
                )
            )
        )
    return {row.id: _guarantor(row) for row in await conn.execute(query)}


async def lock(conn: AsyncConnection, guarantor_ids: Sequence[str]) -> None:
    """Lock guarantor rows (in id order, so concurrent approvals cannot deadlock) while counting their
    active guarantees: two approvals backed by the same guarantor are decided one after the other."""
    if not guarantor_ids:
        return
    query = (
        sa.select(guarantors.c.id)
        .where(guarantors.c.id.in_(sorted(guarantor_ids)))
        .order_by(guarantors.c.id)
        .with_for_update()
    )
    await conn.execute(query)


async def active_guarantees(
    conn: AsyncConnection, guarantor_ids: Sequence[str], today: date
) -> dict[str, int]:
    """Per guarantor, across all funds: applications with an unlapsed reservation plus loans that are
    active or overdue (a loan's stored status `active` covers both)."""
    if not guarantor_ids:
        return {}
    active = sa.or_(
        sa.and_(applications.c.status == "guarantee_approved", applications.c.guarantee_expires_on >= today),
        sa.and_(applications.c.status == "disbursed", loans.c.status == "active"),
    )
    query = (
        sa.select(application_guarantors.c.guarantor_id, sa.func.count().label("n"))
        .select_from(
            application_guarantors.join(
                applications, applications.c.id == application_guarantors.c.application_id
            ).outerjoin(loans, loans.c.application_id == applications.c.id)
        )
        .where(application_guarantors.c.guarantor_id.in_(list(guarantor_ids)), active)
        .group_by(application_guarantors.c.guarantor_id)
    )
    counts = {row.guarantor_id: int(row.n) for row in await conn.execute(query)}
    return {guarantor_id: counts.get(guarantor_id, 0) for guarantor_id in guarantor_ids}


async def list_guarantors(
    conn: AsyncConnection,
    *,
    region_prefix: str | None,
    id_number: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Guarantor]:
    query = sa.select(guarantors).order_by(guarantors.c.id).limit(limit)
    if region_prefix is not None:
        query = query.where(
            guarantors.c.id.in_(
                sa.select(guarantor_regions.c.guarantor_id).where(
                    guarantor_regions.c.region_code.startswith(region_prefix, autoescape=True)
                )
            )
        )
    if id_number is not None:
        query = query.where(guarantors.c.id_number == id_number)
    if after is not None:
        query = query.where(guarantors.c.id > after)
    return [_guarantor(row) for row in await conn.execute(query)]

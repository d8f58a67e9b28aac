"""Every read of borrowers and of who may see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import borrower_regions, borrowers, loans
from loanfund.errors import NotFound
from loanfund.identity import Gender, mask_id


@dataclass(frozen=True)
class Certificate:
    """A re-employment certificate (再就业优惠证) with the year of its last annual inspection."""

    kind: str  # "reemployment"
    number: str
    issued_on: date
    inspected_year: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "number": self.number,
            "issued_on": self.issued_on.isoformat(),
            "inspected_year": self.inspected_year,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Certificate:
        return cls(
            kind=str(data["kind"]),
            number=str(data["number"]),
            issued_on=date.fromisoformat(str(data["issued_on"])),
            inspected_year=int(data["inspected_year"]),
        )


@dataclass(frozen=True)
class Borrower:
    id: str
    kind: str  # individual | enterprise
    id_number: str  # full resident ID or USCC: show it only where the contract allows
    name: str
    phone: str | None
    birth_date: date | None
    gender: Gender | None
    categories: tuple[str, ...]
    certificates: tuple[Certificate, ...]
    credit_community: bool
    syb_trained: bool
    staff_count: int | None
    eligible_new_hires: int | None
    region_code: str
    created_at: datetime
    graduation_year: int | None = None
    syb_plan_approved_on: date | None = None

    @property
    def id_number_masked(self) -> str:
        return mask_id(self.id_number)


def borrower_from_row(row: Any, *, prefix: str) -> Borrower:
    """A borrower from a row that holds its columns under `prefix` (read joined with another table)."""
    values = {name[len(prefix) :]: value for name, value in row._mapping.items() if name.startswith(prefix)}
    return _borrower(SimpleNamespace(**values))


def _borrower(row: Any) -> Borrower:
    gender: Gender | None = None
    if row.gender == "female":
        gender = "female"
    elif row.gender == "male":
        gender = "male"
    return Borrower(
        id=row.id,
        kind=row.kind,
        id_number=row.id_number,
        name=row.name,
        phone=row.phone,
        birth_date=row.birth_date,
        gender=gender,
        categories=tuple(row.categories),
        certificates=tuple(Certificate.from_json(item) for item in row.certificates),
        credit_community=bool(row.credit_community),
        syb_trained=bool(row.syb_trained),
        staff_count=row.staff_count,
        eligible_new_hires=row.eligible_new_hires,
        region_code=row.region_code,
        created_at=row.created_at,
        graduation_year=row.graduation_year,
        syb_plan_approved_on=row.syb_plan_approved_on,
    )


# Built once (hot paths run it): the compiled form stays cached, the id is a parameter.
_BY_ID = sa.select(borrowers).where(borrowers.c.id == sa.bindparam("b_id"))


async def get_borrower(conn: AsyncConnection, borrower_id: str) -> Borrower:
    row = (await conn.execute(_BY_ID, {"b_id": borrower_id})).first()
    if row is None:
        raise NotFound(f"borrower {borrower_id} not found")
    return _borrower(row)


async def get_borrowers(conn: AsyncConnection, borrower_ids: Sequence[str]) -> dict[str, Borrower]:
    """Many borrowers in one statement (lists show each item's borrower)."""
    if not borrower_ids:
        return {}
    rows = await conn.execute(sa.select(borrowers).where(borrowers.c.id.in_(sorted(set(borrower_ids)))))
    return {row.id: _borrower(row) for row in rows}


async def find_by_number(conn: AsyncConnection, kind: str, number: str) -> Borrower | None:
    row = (
        await conn.execute(
            sa.select(borrowers).where(borrowers.c.kind == kind, borrowers.c.id_number == number)
        )
    ).first()
    return None if row is None else _borrower(row)


async def regions(conn: AsyncConnection, borrower_id: str) -> list[str]:
    query = (
        sa.select(borrower_regions.c.region_code)
        .where(borrower_regions.c.borrower_id == borrower_id)
        .order_by(borrower_regions.c.created_at, borrower_regions.c.region_code)
    )
    return list((await conn.scalars(query)).all())


async def bank_holds_loan(conn: AsyncConnection, borrower_id: str, bank_code: str) -> bool:
    found = await conn.scalar(
        sa.select(loans.c.id)
        .where(loans.c.borrower_id == borrower_id, loans.c.bank_code == bank_code)
        .limit(1)
    )
    return found is not None


def _visible_to_region(prefix: str) -> sa.ColumnElement[bool]:
    return borrowers.c.id.in_(
        sa.select(borrower_regions.c.borrower_id).where(
            borrower_regions.c.region_code.startswith(prefix, autoescape=True)
        )
    )


async def list_borrowers(
    conn: AsyncConnection,
    *,
    region_prefix: str | None = None,
    bank_code: str | None = None,
    id_number: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Borrower]:
    """Borrowers in a scope: a region prefix (any region that sees them), a bank (borrowers of its
    loans), or everything when both are None; `id_number` matches a resident ID or USCC exactly."""
    query = sa.select(borrowers).order_by(borrowers.c.id).limit(limit)
    if region_prefix is not None:
        query = query.where(_visible_to_region(region_prefix))
    if bank_code is not None:
        query = query.where(
            borrowers.c.id.in_(sa.select(loans.c.borrower_id).where(loans.c.bank_code == bank_code))
        )
    if id_number is not None:
        query = query.where(borrowers.c.id_number == id_number)
    if after is not None:
        query = query.where(borrowers.c.id > after)
    return [_borrower(row) for row in await conn.execute(query)]

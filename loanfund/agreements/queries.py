"""Every SQL read of agreements, fund × bank pairs and guarantee reservations, including the pair lock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.rows import read_model
from loanfund.db.tables import agreements, fund_banks, funds, guarantees
from loanfund.errors import NotFound
from loanfund.money import Fen


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    CONVERTED = "converted"
    RELEASED = "released"
    LAPSED = "lapsed"


RESERVED = ReservationStatus.RESERVED


@dataclass(frozen=True)
class Agreement:
    id: str
    fund_code: str
    bank_code: str
    leverage_multiple: Decimal
    fund_loss_share_pct: Decimal
    claim_after_days: int
    claim_covers_interest: bool
    compensation_suspend_pct: Decimal | None
    effective_from: date
    effective_to: date | None
    suspended: bool
    suspended_reason: str | None
    suspended_at: datetime | None
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class Guarantee:
    """A guarantee reservation as stored (`reservations.Reservation` is its effective view)."""

    id: str
    fund_code: str
    bank_code: str
    agreement_id: str
    application_id: str | None
    amount_fen: Fen
    approved_on: date
    expires_on: date
    status: str
    converted_fen: Fen
    settled_on: date | None
    reserve_entry_id: str
    settle_entry_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ExpiredGuarantee(Guarantee):
    region_code: str  # of its fund


@dataclass(frozen=True)
class RegionalAgreement(Agreement):
    region_code: str  # of its fund


async def get_agreement(conn: AsyncConnection, agreement_id: str) -> Agreement:
    row = (await conn.execute(sa.select(agreements).where(agreements.c.id == agreement_id))).first()
    if row is None:
        raise NotFound(f"agreement {agreement_id} not found")
    return read_model(Agreement, row)


async def pair_agreements(conn: AsyncConnection, fund_code: str, bank_code: str) -> list[Agreement]:
    query = (
        sa.select(agreements)
        .where(agreements.c.fund_code == fund_code, agreements.c.bank_code == bank_code)
        .order_by(agreements.c.effective_from)
    )
    return [read_model(Agreement, row) for row in await conn.execute(query)]


# Built once (every reservation and repayment runs them): compiled forms stay cached.
_LATEST_STARTED = (
    sa.select(agreements)
    .where(
        agreements.c.fund_code == sa.bindparam("b_fund"),
        agreements.c.bank_code == sa.bindparam("b_bank"),
        agreements.c.effective_from <= sa.bindparam("b_on"),
    )
    .order_by(agreements.c.effective_from.desc())
    .limit(1)
)
_LOCK_PAIR = (
    sa.select(fund_banks.c.fund_code)
    .where(fund_banks.c.fund_code == sa.bindparam("b_fund"), fund_banks.c.bank_code == sa.bindparam("b_bank"))
    .with_for_update()
)


async def latest_started(conn: AsyncConnection, fund_code: str, bank_code: str, on: date) -> Agreement | None:
    """The pair's agreement that started last on or before `on`.

    Agreements of a pair never overlap, so this is the one in force on `on` unless it has ended.
    """
    row = (
        await conn.execute(_LATEST_STARTED, {"b_fund": fund_code, "b_bank": bank_code, "b_on": on})
    ).first()
    return None if row is None else read_model(Agreement, row)


async def list_agreements(
    conn: AsyncConnection,
    *,
    fund_code: str | None,
    bank_code: str | None,
    region_prefix: str | None,
    after: str | None,
    limit: int,
) -> list[RegionalAgreement]:
    query = (
        sa.select(agreements, funds.c.region_code)
        .join(funds, funds.c.code == agreements.c.fund_code)
        .order_by(agreements.c.id)
        .limit(limit)
    )
    if fund_code is not None:
        query = query.where(agreements.c.fund_code == fund_code)
    if bank_code is not None:
        query = query.where(agreements.c.bank_code == bank_code)
    if region_prefix:
        query = query.where(funds.c.region_code.startswith(region_prefix, autoescape=True))
    if after is not None:
        query = query.where(agreements.c.id > after)
    return [read_model(RegionalAgreement, row) for row in await conn.execute(query)]


async def fund_bank_codes(conn: AsyncConnection, fund_code: str) -> list[str]:
    query = sa.select(fund_banks.c.bank_code).where(fund_banks.c.fund_code == fund_code)
    return list((await conn.scalars(query.order_by(fund_banks.c.bank_code))).all())


async def lock_pair(conn: AsyncConnection, fund_code: str, bank_code: str) -> bool:
    """Lock the pair's row until the transaction ends; False if the pair has never had an agreement.

    On SQLite `FOR UPDATE` is left out: every write transaction already holds the database lock.
    """
    return (await conn.scalar(_LOCK_PAIR, {"b_fund": fund_code, "b_bank": bank_code})) is not None


async def lock_pairs(conn: AsyncConnection, pairs: Iterable[tuple[str, str]]) -> None:
    """Lock several pairs in one statement, in key order, so two lockers never wait on each other."""
    wanted = sorted(set(pairs))
    if not wanted:
        return
    query = (
        sa.select(fund_banks.c.fund_code, fund_banks.c.bank_code)
        .where(sa.tuple_(fund_banks.c.fund_code, fund_banks.c.bank_code).in_(wanted))
        .order_by(fund_banks.c.fund_code, fund_banks.c.bank_code)
        .with_for_update()
    )
    await conn.execute(query)


def expired_reserved_column(
    fund_code: str | sa.BindParameter[Any],
    bank_code: str | sa.BindParameter[Any],
    today: date | sa.BindParameter[Any],
) -> sa.ScalarSelect[Any]:
    """Reservations past their last day still marked reserved: lapsed already, whether or not the job ran."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(guarantees.c.amount_fen), 0))
        .where(
            guarantees.c.fund_code == fund_code,
            guarantees.c.bank_code == bank_code,
            guarantees.c.status == RESERVED,
            guarantees.c.expires_on < today,
        )
        .scalar_subquery()
    )


async def get_guarantee(conn: AsyncConnection, guarantee_id: str, *, for_update: bool = False) -> Guarantee:
    query = sa.select(guarantees).where(guarantees.c.id == guarantee_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"guarantee reservation {guarantee_id} not found")
    return read_model(Guarantee, row)


def guarantee_of_application_column(application_id: str | sa.BindParameter[Any]) -> sa.ScalarSelect[Any]:
    """The id of the application's reservation, if it has one, as a scalar subquery."""
    return sa.select(guarantees.c.id).where(guarantees.c.application_id == application_id).scalar_subquery()


async def expired_reserved(conn: AsyncConnection, today: date) -> list[ExpiredGuarantee]:
    """Every reservation the lapse job has still to process, with its fund's region."""
    query = (
        sa.select(guarantees, funds.c.region_code)
        .join(funds, funds.c.code == guarantees.c.fund_code)
        .where(guarantees.c.status == RESERVED, guarantees.c.expires_on < today)
        .order_by(guarantees.c.id)
    )
    return [read_model(ExpiredGuarantee, row) for row in await conn.execute(query)]

"""Every read of funds, allocations and contributions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.rows import read_model
from loanfund.db.tables import (
    allocations,
    contributions,
    fund_policies,
    funds,
    journal_entries,
    ledger_accounts,
    postings,
)
from loanfund.errors import NotFound
from loanfund.ledger import accounts
from loanfund.money import Fen


@dataclass(frozen=True)
class Fund:
    code: str
    name: str
    region_code: str
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class FundPolicy:
    """An edition and its overrides, in force from `effective_from` until the next one."""

    id: str
    fund_code: str
    effective_from: date
    edition: str
    overrides: dict[str, Any]
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class Allocation:
    id: str
    fund_code: str
    amount_fen: Fen
    received_on: date
    reference: str
    match_ratio_pct: Decimal
    match_due_on: date
    entry_id: str
    reversal_entry_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Contribution:
    id: str
    fund_code: str
    source: str
    amount_fen: Fen
    received_on: date
    reference: str
    allocation_id: str | None
    entry_id: str
    reversal_entry_id: str | None
    created_at: datetime


async def get_fund(conn: AsyncConnection, code: str) -> Fund:
    row = (await conn.execute(sa.select(funds).where(funds.c.code == code))).first()
    if row is None:
        raise NotFound(f"fund {code} not found")
    return read_model(Fund, row)


async def list_funds(
    conn: AsyncConnection, *, region_prefix: str | None, after: str | None, limit: int
) -> list[Fund]:
    query = sa.select(funds).order_by(funds.c.code).limit(limit)
    if region_prefix:
        query = query.where(funds.c.region_code.startswith(region_prefix, autoescape=True))
    if after is not None:
        query = query.where(funds.c.code > after)
    return [read_model(Fund, row) for row in await conn.execute(query)]


async def fund_exists(conn: AsyncConnection, code: str) -> bool:
    return (await conn.scalar(sa.select(funds.c.code).where(funds.c.code == code))) is not None


async def policies(conn: AsyncConnection, fund_code: str) -> list[FundPolicy]:
    query = (
        sa.select(fund_policies)
        .where(fund_policies.c.fund_code == fund_code)
        .order_by(fund_policies.c.effective_from)
    )
    return [read_model(FundPolicy, row) for row in await conn.execute(query)]


async def get_allocation(conn: AsyncConnection, fund_code: str, allocation_id: str) -> Allocation:
    row = (
        await conn.execute(
            sa.select(allocations).where(
                allocations.c.id == allocation_id, allocations.c.fund_code == fund_code
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"allocation {allocation_id} not found in fund {fund_code}")
    return read_model(Allocation, row)


async def get_contribution(conn: AsyncConnection, fund_code: str, contribution_id: str) -> Contribution:
    row = (
        await conn.execute(
            sa.select(contributions).where(
                contributions.c.id == contribution_id, contributions.c.fund_code == fund_code
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"contribution {contribution_id} not found in fund {fund_code}")
    return read_model(Contribution, row)


def funds_in(fund_code: str | None, region_prefix: str) -> sa.ColumnElement[bool]:
    """One fund, or every fund of a region (the prefix of its code; "" for all)."""
    condition = funds.c.region_code.startswith(region_prefix, autoescape=True)
    return condition if fund_code is None else sa.and_(condition, funds.c.code == fund_code)


async def allocations_as_of(
    conn: AsyncConnection, as_of: date, *, fund_code: str | None = None, region_prefix: str = ""
) -> list[Allocation]:
    """Allocations received by `as_of` and not reversed by then, with their amount from the ledger:
    of one fund, or of every fund in a region at once (by fund)."""
    reversal = journal_entries.alias("reversal")
    query = (
        sa.select(allocations)
        .select_from(
            allocations.join(funds, funds.c.code == allocations.c.fund_code).outerjoin(
                reversal, reversal.c.id == allocations.c.reversal_entry_id
            )
        )
        .where(
            funds_in(fund_code, region_prefix),
            allocations.c.received_on <= as_of,
            sa.or_(reversal.c.id.is_(None), reversal.c.entry_date > as_of),
        )
        .order_by(allocations.c.fund_code, allocations.c.received_on, allocations.c.id)
    )
    return [read_model(Allocation, row) for row in await conn.execute(query)]


async def matched_by_allocation(
    conn: AsyncConnection, as_of: date, *, fund_code: str | None = None, region_prefix: str = ""
) -> dict[str, int]:
    """Local matching money per allocation, summed from the ledger postings of its contributions, for
    the same funds as `allocations_as_of`.

    Reversal entries post negative credits, so a reversed contribution nets out from its date on.
    """
    entry = journal_entries
    query = (
        sa.select(contributions.c.allocation_id, sa.func.sum(-postings.c.amount_fen).label("fen"))
        .select_from(
            contributions.join(funds, funds.c.code == contributions.c.fund_code)
            .join(
                entry,
                sa.or_(
                    entry.c.id == contributions.c.entry_id, entry.c.id == contributions.c.reversal_entry_id
                ),
            )
            .join(postings, postings.c.entry_id == entry.c.id)
            .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
        )
        .where(
            funds_in(fund_code, region_prefix),
            contributions.c.source == "local_match",
            ledger_accounts.c.name == accounts.capital("local_match"),
            entry.c.entry_date <= as_of,
        )
        .group_by(contributions.c.allocation_id)
    )
    return {row.allocation_id: int(row.fen) for row in await conn.execute(query)}

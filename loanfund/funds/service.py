"""Funds and the money that comes into them: allocations, local matching, other sources, subsidy budget.

Every amount is integer fen; every movement is a journal entry; position and matching are read from
the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import ledger, policy
from loanfund.clock import utcnow
from loanfund.db.tables import allocations, contributions, fund_policies, funds
from loanfund.errors import Duplicate, InsufficientFundCash, InvalidState, invalid
from loanfund.funds import queries
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, Amount, fen_to_decimal, require_positive, round_to_fen
from loanfund.uow import Tx

FUND_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
REGION_CODE_RE = re.compile(r"[0-9]{6}")


class ContributionSource(StrEnum):
    LOCAL_MATCH = "local_match"
    CENTRAL = "central"
    DEPOSIT_INTEREST = "deposit_interest"
    DONATION = "donation"
    OTHER = "other"


CONTRIBUTION_SOURCES = tuple(ContributionSource)


def _checked_overrides(edition: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides normalised for storage; refuses an unknown edition or parameter, or a wrong type."""
    normalised = policy.validate_overrides(overrides)
    policy.resolve_policy(edition, normalised)
    return dict(normalised)


async def create_fund(
    tx: Tx,
    *,
    code: str,
    name: str,
    region_code: str,
    policy_edition: str,
    currency: str = CURRENCY,
    policy_overrides: Mapping[str, Any] | None = None,
) -> str:
    conn = tx.conn
    if not FUND_CODE_RE.fullmatch(code):
        raise invalid("code", "1–32 letters, digits, '-' or '_'")
    if not REGION_CODE_RE.fullmatch(region_code):
        raise invalid("region_code", "must be 6 digits (GB/T 2260)")
    if currency != CURRENCY:
        raise invalid("currency", f"must be {CURRENCY}")
    if not name.strip():
        raise invalid("name", "must not be empty")
    overrides = _checked_overrides(policy_edition, policy_overrides or {})
    if await queries.fund_exists(conn, code):
        raise Duplicate(f"fund {code} already exists", code=code)
    now = utcnow()
    await conn.execute(
        funds.insert().values(
            code=code, name=name, region_code=region_code, currency=currency, created_at=now
        )
    )
    await conn.execute(
        fund_policies.insert().values(
            id=new_id("pol"),
            fund_code=code,
            effective_from=date.min,
            edition=policy_edition,
            overrides=overrides,
            created_at=now,
            created_by=tx.actor.client_id,
        )
    )
    tx.audit(
        "fund.created",
        "fund",
        code,
        {
            "name": name,
            "region_code": region_code,
            "policy_edition": policy_edition,
            "policy_overrides": overrides,
        },
        region_code=region_code,
    )
    return code


async def adopt_policy(
    tx: Tx,
    *,
    fund_code: str,
    policy_edition: str,
    overrides: Mapping[str, Any],
    effective_from: date,
) -> str:
    conn = tx.conn
    fund = await queries.get_fund(conn, fund_code)
    normalised = _checked_overrides(policy_edition, overrides)
    existing = await queries.policies(conn, fund_code)
    if any(row.effective_from == effective_from for row in existing):
        raise Duplicate(f"fund {fund_code} already has a policy from {effective_from}")
    policy_id = new_id("pol")
    await conn.execute(
        fund_policies.insert().values(
            id=policy_id,
            fund_code=fund_code,
            effective_from=effective_from,
            edition=policy_edition,
            overrides=normalised,
            created_at=utcnow(),
            created_by=tx.actor.client_id,
        )
    )
    tx.audit(
        "fund.policy_adopted",
        "fund",
        fund_code,
        {
            "policy_id": policy_id,
            "policy_edition": policy_edition,
            "overrides": normalised,
            "effective_from": effective_from.isoformat(),
        },
        region_code=fund.region_code,
    )
    return policy_id


async def fund_policy(conn: AsyncConnection, fund_code: str, on: date) -> policy.Policy:
    """The fund's policy in force on a date (its application or contract date)."""
    rows = await queries.policies(conn, fund_code)
    return policy.policy_in_force([(row.effective_from, row.edition, row.overrides) for row in rows], on)


async def record_allocation(
    tx: Tx,
    *,
    fund_code: str,
    amount_fen: int,
    received_on: date,
    reference: str,
    match_ratio_pct: Decimal,
    match_due_on: date,
) -> str:
    conn = tx.conn
    require_positive(amount_fen)
    fund = await queries.get_fund(conn, fund_code)
    if match_ratio_pct < 0:
        raise invalid("match_ratio_pct", "must not be negative")
    entry_id = await ledger.post(
        tx,
        fund_code=fund_code,
        entry_date=received_on,
        kind="allocation",
        description=f"provincial allocation {reference}",
        reference=reference,
        lines=ledger.transfer(accounts.CASH, accounts.capital("provincial"), amount_fen),
    )
    allocation_id = new_id("alloc")
    await conn.execute(
        allocations.insert().values(
            id=allocation_id,
            fund_code=fund_code,
            amount_fen=amount_fen,
            received_on=received_on,
            reference=reference,
            match_ratio_pct=match_ratio_pct,
            match_due_on=match_due_on,
            entry_id=entry_id,
            created_at=utcnow(),
        )
    )
    tx.audit(
        "allocation.recorded",
        "allocation",
        allocation_id,
        {
            "fund_code": fund_code,
            "amount_fen": amount_fen,
            "received_on": received_on.isoformat(),
            "reference": reference,
            "match_ratio_pct": str(match_ratio_pct),
            "match_due_on": match_due_on.isoformat(),
            "entry_id": entry_id,
        },
        region_code=fund.region_code,
    )
    return allocation_id


async def record_contribution(
    tx: Tx,
    *,
    fund_code: str,
    source: str,
    amount_fen: int,
    received_on: date,
    reference: str,
    allocation_id: str | None = None,
) -> str:
    conn = tx.conn
    require_positive(amount_fen)
    fund = await queries.get_fund(conn, fund_code)
    if source not in CONTRIBUTION_SOURCES:
        raise invalid("source", f"must be one of {', '.join(CONTRIBUTION_SOURCES)}")
    if source == "local_match":
        if allocation_id is None:
            raise invalid("allocation_id", "a local_match contribution must name the allocation it matches")
        allocation = await queries.get_allocation(conn, fund_code, allocation_id)
        if allocation.reversal_entry_id is not None:
            raise InvalidState(f"allocation {allocation_id} has been reversed")
    elif allocation_id is not None:
        raise invalid("allocation_id", "only local_match contributions are tied to an allocation")
    entry_id = await ledger.post(
        tx,
        fund_code=fund_code,
        entry_date=received_on,
        kind="contribution",
        description=f"{source} contribution {reference}",
        reference=reference,
        lines=ledger.transfer(accounts.CASH, accounts.capital(source), amount_fen),
    )
    contribution_id = new_id("contrib")
    await conn.execute(
        contributions.insert().values(
            id=contribution_id,
            fund_code=fund_code,
            source=source,
            amount_fen=amount_fen,
            received_on=received_on,
            reference=reference,
            allocation_id=allocation_id,
            entry_id=entry_id,
            created_at=utcnow(),
        )
    )
    tx.audit(
        "contribution.recorded",
        "contribution",
        contribution_id,
        {
            "fund_code": fund_code,
            "source": source,
            "amount_fen": amount_fen,
            "received_on": received_on.isoformat(),
            "reference": reference,
            "allocation_id": allocation_id,
            "entry_id": entry_id,
        },
        region_code=fund.region_code,
    )
    return contribution_id


async def _reverse_money_in(
    tx: Tx,
    *,
    table: sa.Table,
    row: Any,
    region_code: str,
    reason: str,
    reversed_on: date,
) -> str:
    conn = tx.conn
    await tx.settle()
    if row.reversal_entry_id is not None:
        raise InvalidState(f"{row.id} is already reversed", reversal_entry_id=row.reversal_entry_id)
    if not reason.strip():
        raise invalid("reason", "must not be empty")
    cash = await ledger.balance(conn, row.fund_code, accounts.CASH, for_update=True)
    if cash < row.amount_fen:
        raise InsufficientFundCash(
            "the money has left the fund's cash (placed at a bank or paid out); withdraw it first",
            cash=Amount(cash),
            amount=Amount(row.amount_fen),
        )
    entry_id = await ledger.reverse(tx, row.entry_id, entry_date=reversed_on, reason=reason)
    # Compare-and-set: two concurrent reversals cannot both pass.
    result = await conn.execute(
        table.update()
        .where(table.c.id == row.id, table.c.reversal_entry_id.is_(None))
        .values(reversal_entry_id=entry_id)
    )
    if result.rowcount != 1:
        raise InvalidState(f"{row.id} is already reversed")
    tx.audit(
        f"{table.name.rstrip('s')}.reversed",
        table.name.rstrip("s"),
        row.id,
        {"reason": reason, "reversal_entry_id": entry_id, "reversed_on": reversed_on.isoformat()},
        region_code=region_code,
    )
    return entry_id


async def reverse_allocation(
    tx: Tx, *, fund_code: str, allocation_id: str, reason: str, reversed_on: date
) -> str:
    conn = tx.conn
    fund = await queries.get_fund(conn, fund_code)
    row = await queries.get_allocation(conn, fund_code, allocation_id)
    return await _reverse_money_in(
        tx,
        table=allocations,
        row=row,
        region_code=fund.region_code,
        reason=reason,
        reversed_on=reversed_on,
    )


async def reverse_contribution(
    tx: Tx,
    *,
    fund_code: str,
    contribution_id: str,
    reason: str,
    reversed_on: date,
) -> str:
    conn = tx.conn
    fund = await queries.get_fund(conn, fund_code)
    row = await queries.get_contribution(conn, fund_code, contribution_id)
    return await _reverse_money_in(
        tx,
        table=contributions,
        row=row,
        region_code=fund.region_code,
        reason=reason,
        reversed_on=reversed_on,
    )


async def add_subsidy_budget(
    tx: Tx, *, fund_code: str, amount_fen: int, received_on: date, reference: str
) -> str:
    conn = tx.conn
    require_positive(amount_fen)
    fund = await queries.get_fund(conn, fund_code)
    entry_id = await ledger.post(
        tx,
        fund_code=fund_code,
        entry_date=received_on,
        kind="subsidy_budget",
        description=f"subsidy budget {reference}",
        reference=reference,
        lines=ledger.transfer(accounts.SUBSIDY_BUDGET, accounts.capital("subsidy"), amount_fen),
    )
    tx.audit(
        "subsidy_budget.received",
        "fund",
        fund_code,
        {
            "amount_fen": amount_fen,
            "received_on": received_on.isoformat(),
            "reference": reference,
            "entry_id": entry_id,
        },
        region_code=fund.region_code,
    )
    return entry_id


@dataclass(frozen=True)
class Position:
    cash_fen: int
    deposited_fen: int
    contributed_fen: int
    compensation_paid_fen: int
    recovered_fen: int
    written_off_fen: int
    subsidy_budget_fen: int


def position_from_balances(signed: Mapping[str, int]) -> Position:
    def natural(name: str) -> int:
        return accounts.natural_balance(name, signed.get(name, 0))

    return Position(
        cash_fen=natural(accounts.CASH),
        deposited_fen=sum(fen for name, fen in signed.items() if name.startswith("deposit:")),
        contributed_fen=sum(
            -fen
            for name, fen in signed.items()
            if name.startswith("capital:") and name != accounts.capital("subsidy")
        ),
        # Paid = still recoverable + made good by recoveries + written off (loanfund/claims/service.py).
        compensation_paid_fen=natural(accounts.COMPENSATION)
        + natural(accounts.WRITE_OFF)
        + sum(fen for name, fen in signed.items() if name.startswith("recoverable:")),
        recovered_fen=natural(accounts.RECOVERY),
        written_off_fen=natural(accounts.WRITE_OFF),
        subsidy_budget_fen=natural(accounts.SUBSIDY_BUDGET),
    )


async def position(conn: AsyncConnection, fund_code: str, *, as_of: date | None = None) -> Position:
    return position_from_balances(await ledger.signed_balances(conn, fund_code, as_of=as_of))


@dataclass(frozen=True)
class AllocationMatching:
    allocation_id: str
    reference: str
    amount_fen: int
    required_fen: int
    matched_fen: int
    shortfall_fen: int
    due_on: date
    status: str  # met | pending | overdue


def matching_status(required_fen: int, matched_fen: int, due_on: date, as_of: date) -> str:
    if matched_fen >= required_fen:
        return "met"
    return "pending" if as_of <= due_on else "overdue"


def required_match_fen(amount_fen: int, ratio_pct: Decimal) -> int:
    return round_to_fen(fen_to_decimal(amount_fen) * ratio_pct / 100)


def _matching_of(row: queries.Allocation, matched_fen: int, as_of: date) -> AllocationMatching:
    required = required_match_fen(row.amount_fen, row.match_ratio_pct)
    return AllocationMatching(
        allocation_id=row.id,
        reference=row.reference,
        amount_fen=row.amount_fen,
        required_fen=required,
        matched_fen=matched_fen,
        shortfall_fen=max(required - matched_fen, 0),
        due_on=row.match_due_on,
        status=matching_status(required, matched_fen, row.match_due_on, as_of),
    )


async def matching_in_scope(
    conn: AsyncConnection, as_of: date, *, region_prefix: str = "", fund_code: str | None = None
) -> list[tuple[str, AllocationMatching]]:
    """(fund code, matching) of every allocation of the funds in a region (or of one fund), by fund:
    two statements, whatever the number of funds."""
    matched = await queries.matched_by_allocation(
        conn, as_of, fund_code=fund_code, region_prefix=region_prefix
    )
    rows = await queries.allocations_as_of(conn, as_of, fund_code=fund_code, region_prefix=region_prefix)
    return [(row.fund_code, _matching_of(row, matched.get(row.id, 0), as_of)) for row in rows]


async def matching(conn: AsyncConnection, fund_code: str, as_of: date) -> list[AllocationMatching]:
    await queries.get_fund(conn, fund_code)
    return [item for _, item in await matching_in_scope(conn, as_of, fund_code=fund_code)]


async def allocation_matching(
    conn: AsyncConnection, fund_code: str, allocation_id: str, as_of: date
) -> AllocationMatching:
    """One allocation's matching as of a date; a reversed one, or one received after `as_of`, shows
    its requirement with nothing matched."""
    for found in await matching(conn, fund_code, as_of):
        if found.allocation_id == allocation_id:
            return found
    return _matching_of(await queries.get_allocation(conn, fund_code, allocation_id), 0, as_of)

"""Leverage of every fund × bank pair in scope, and its history at month ends, from the ledger.

The history is summed from postings by the database (`queries.monthly_pair_balances`): deposit,
outstanding and reserved at each month end. Once the scheduler keeps daily capacity snapshots, the
history can read them instead (same figures, fewer rows to sum); the live figures stay ledger reads.
A past month end counts a reservation as reserved until its lapse entry, which is dated the day after
it expired, so past points agree with what capacity was once the lapse job had run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.agreements.capacity import Capacity, agreement_status, capacity_from_figures, leverage_ratio
from loanfund.ledger import accounts
from loanfund.reports import queries

# A pair whose ratio reaches this share of its multiple is flagged "near" its limit.
NEAR_SHARE = Decimal("0.9")


@dataclass(frozen=True)
class PairLeverage:
    fund_code: str
    fund_name: str
    bank_code: str
    bank_name: str
    agreement_status: str  # active | suspended | ended
    capacity: Capacity

    @property
    def flag(self) -> str:
        """over (negative headroom) | near (ratio ≥ 90 % of the multiple) | ok."""
        if self.capacity.headroom_fen < 0:
            return "over"
        ratio = self.capacity.leverage_ratio
        if ratio is not None and ratio >= self.capacity.leverage_multiple * NEAR_SHARE:
            return "near"
        return "ok"


@dataclass(frozen=True)
class HistoryPoint:
    on: date  # a month end, or today for the last point
    deposit_fen: int
    outstanding_fen: int
    reserved_fen: int

    @property
    def ratio(self) -> Decimal | None:
        return leverage_ratio(self.outstanding_fen + self.reserved_fen, self.deposit_fen)


@dataclass(frozen=True)
class PairHistory:
    fund_code: str
    bank_code: str
    leverage_multiple: Decimal
    points: tuple[HistoryPoint, ...]


async def pair_leverage(
    conn: AsyncConnection, region_prefix: str, today: date, fund_code: str | None = None
) -> list[PairLeverage]:
    """Live figures of every pair, under the agreement that governs it today (three statements)."""
    governing: dict[tuple[str, str], Any] = {}
    for row in await queries.agreements_started(conn, region_prefix, fund_code, today):
        governing[(row.fund_code, row.bank_code)] = row  # ordered by start: the last one wins
    signed: dict[tuple[str, str], int] = {}
    for row in await queries.balances(conn, region_prefix, fund_code):
        signed[(row.fund_code, row.name)] = int(row.balance_fen)
    expired = await queries.expired_reserved(conn, region_prefix, fund_code, today)
    result = []
    for (fund, bank), agreement in governing.items():
        capacity = capacity_from_figures(
            agreement,
            signed.get((fund, accounts.deposit(bank)), 0),
            signed.get((fund, accounts.outstanding(bank)), 0),
            signed.get((fund, accounts.reserved(bank)), 0) - expired.get((fund, bank), 0),
        )
        result.append(
            PairLeverage(
                fund_code=fund,
                fund_name=agreement.fund_name,
                bank_code=bank,
                bank_name=agreement.bank_name,
                agreement_status=agreement_status(agreement, today),
                capacity=capacity,
            )
        )
    return result


def month_ends(today: date, months: int) -> list[date]:
    """The last `months` month ends before today, oldest first."""
    ends = []
    day = today.replace(day=1) - timedelta(days=1)
    for _ in range(months):
        ends.append(day)
        day = day.replace(day=1) - timedelta(days=1)
    return ends[::-1]


async def leverage_history(
    conn: AsyncConnection,
    region_prefix: str,
    today: date,
    pairs: list[PairLeverage],
    *,
    months: int = 12,
    fund_code: str | None = None,
) -> list[PairHistory]:
    """Each pair's figures at the last `months` month ends and today (one statement)."""
    running: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for row in await queries.monthly_pair_balances(conn, region_prefix, fund_code, today):
        running[(row.fund_code, row.name)].append((row.month, int(row.balance_fen)))
    days = [*month_ends(today, months), today]

    def at(fund: str, account: str, day: date) -> int:
        key = f"{day.year:04d}-{day.month:02d}"
        balance = 0
        for month, value in running.get((fund, account), ()):  # months ascending
            if month > key:
                break
            balance = value
        return balance

    histories = []
    for pair in pairs:
        fund, bank = pair.fund_code, pair.bank_code
        points = tuple(
            HistoryPoint(
                on=day,
                deposit_fen=at(fund, accounts.deposit(bank), day),
                outstanding_fen=at(fund, accounts.outstanding(bank), day),
                reserved_fen=at(fund, accounts.reserved(bank), day),
            )
            for day in days
        )
        histories.append(PairHistory(fund, bank, pair.capacity.leverage_multiple, points))
    return histories

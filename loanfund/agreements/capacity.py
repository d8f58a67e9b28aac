"""Capacity of a fund × bank pair (domain.md section 5), read from the ledger.

deposit = balance of `deposit:{bank}`; outstanding = `memo:outstanding:{bank}`; reserved =
`memo:reserved:{bank}` less the reservations already past their last day that the lapse job has not
processed yet (they count as lapsed from the day after `expires_on`, whether or not the job ran).
capacity = deposit × multiple; headroom = capacity − outstanding − reserved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import ledger
from loanfund.agreements import queries
from loanfund.errors import NoAgreement
from loanfund.ledger import accounts
from loanfund.money import fen_to_decimal, round_to_fen

RATIO_PLACES = 4


@dataclass(frozen=True)
class Capacity:
    fund_code: str
    bank_code: str
    agreement_id: str  # whose multiple applies
    leverage_multiple: Decimal
    deposit_fen: int
    capacity_fen: int
    outstanding_fen: int
    reserved_fen: int

    @property
    def used_fen(self) -> int:
        return self.outstanding_fen + self.reserved_fen

    @property
    def headroom_fen(self) -> int:
        return self.capacity_fen - self.used_fen

    @property
    def leverage_ratio(self) -> Decimal | None:
        return leverage_ratio(self.used_fen, self.deposit_fen)

    @property
    def max_withdrawal_fen(self) -> int:
        return max_withdrawal_fen(self.deposit_fen, self.leverage_multiple, self.used_fen)


def capacity_fen(deposit_fen: int, multiple: Decimal) -> int:
    """deposit × multiple: exact for a whole multiple, else rounded half-up to the fen."""
    if multiple == multiple.to_integral_value():
        return deposit_fen * int(multiple)
    return round_to_fen(fen_to_decimal(deposit_fen) * multiple)


def leverage_ratio(used_fen: int, deposit_fen: int) -> Decimal | None:
    """(outstanding + reserved) / deposit to 4 places, half-up; None without a deposit.

    Integer arithmetic, so that no intermediate rounding can tip a half.
    """
    if deposit_fen <= 0:
        return None
    quotient, remainder = divmod(used_fen * 10**RATIO_PLACES, deposit_fen)
    if 2 * remainder >= deposit_fen:
        quotient += 1
    return Decimal(quotient).scaleb(-RATIO_PLACES)


def min_deposit_fen(multiple: Decimal, used_fen: int) -> int:
    """The smallest deposit whose capacity covers `used_fen`.

    capacity_fen(d) rounds d × multiple half-up, so it is ≥ used exactly when d × multiple ≥ used − ½.
    """
    if used_fen <= 0:
        return 0
    return max(0, math.ceil((Fraction(used_fen) - Fraction(1, 2)) / Fraction(multiple)))


def max_withdrawal_fen(deposit_fen: int, multiple: Decimal, used_fen: int) -> int:
    return max(0, deposit_fen - min_deposit_fen(multiple, used_fen))


def agreement_status(agreement: Any, today: date) -> str:
    if agreement.effective_to is not None and today > agreement.effective_to:
        return "ended"
    return "suspended" if agreement.suspended else "active"


def capacity_from_figures(
    agreement: Any, deposit_fen: int, outstanding_fen: int, reserved_fen: int
) -> Capacity:
    """The pair's capacity under `agreement`'s multiple, from figures read by the caller."""
    return _build(agreement, deposit_fen, outstanding_fen, reserved_fen)


def _build(agreement: Any, deposit_fen: int, outstanding_fen: int, reserved_fen: int) -> Capacity:
    multiple: Decimal = agreement.leverage_multiple
    return Capacity(
        fund_code=agreement.fund_code,
        bank_code=agreement.bank_code,
        agreement_id=agreement.id,
        leverage_multiple=multiple,
        deposit_fen=deposit_fen,
        capacity_fen=capacity_fen(deposit_fen, multiple),
        outstanding_fen=outstanding_fen,
        reserved_fen=reserved_fen,
    )


def _pair_accounts(bank_code: str) -> tuple[str, str, str]:
    return accounts.deposit(bank_code), accounts.outstanding(bank_code), accounts.reserved(bank_code)


# The pair's live figures as columns of one SELECT, with `figure_params` for the values and
# `figures_from_row` to read them back. One statement reads the balances and the expired reservations
# from one snapshot, so a lapse can never fall between the two; callers may add columns of their own
# to save a round trip. Built once, so that the compiled statement stays cached.
_FUND: sa.BindParameter[str] = sa.bindparam("figure_fund")
FIGURE_COLUMNS = (
    ledger.balance_column(_FUND, sa.bindparam("figure_deposit_account")).label("figure_deposit"),
    ledger.balance_column(_FUND, sa.bindparam("figure_outstanding_account")).label("figure_outstanding"),
    ledger.balance_column(_FUND, sa.bindparam("figure_reserved_account")).label("figure_reserved"),
    queries.expired_reserved_column(_FUND, sa.bindparam("figure_bank"), sa.bindparam("figure_today")).label(
        "figure_expired"
    ),
)
_LIVE_FIGURES = sa.select(*FIGURE_COLUMNS)


def figure_params(fund_code: str, bank_code: str, today: date) -> dict[str, object]:
    """The values of `FIGURE_COLUMNS` for a pair on a day."""
    deposit, outstanding, reserved = _pair_accounts(bank_code)
    return {
        "figure_fund": fund_code,
        "figure_deposit_account": deposit,
        "figure_outstanding_account": outstanding,
        "figure_reserved_account": reserved,
        "figure_bank": bank_code,
        "figure_today": today,
    }


def figures_from_row(row: Any) -> tuple[int, int, int]:
    """(deposit, outstanding, reserved) from a row selected with `FIGURE_COLUMNS`."""
    reserved = int(row.figure_reserved or 0) - int(row.figure_expired or 0)
    return int(row.figure_deposit or 0), int(row.figure_outstanding or 0), reserved


async def live_figures(conn: AsyncConnection, fund_code: str, bank_code: str, today: date) -> tuple[int, ...]:
    row = (await conn.execute(_LIVE_FIGURES, figure_params(fund_code, bank_code, today))).one()
    return figures_from_row(row)


async def agreement_capacity(conn: AsyncConnection, agreement: Any, *, today: date) -> Capacity:
    """The pair's figures under this agreement's multiple (what GET /agreements/{id} shows)."""
    deposit, outstanding, reserved = await live_figures(conn, agreement.fund_code, agreement.bank_code, today)
    return _build(agreement, deposit, outstanding, reserved)


async def governing_agreement(conn: AsyncConnection, fund_code: str, bank_code: str, today: date) -> Any:
    """The agreement whose multiple limits the pair today: the one in force, else the last one that ended."""
    agreement = await queries.latest_started(conn, fund_code, bank_code, today)
    if agreement is None:
        raise NoAgreement(
            f"fund {fund_code} has no agreement with bank {bank_code}",
            fund_code=fund_code,
            bank_code=bank_code,
        )
    return agreement


async def pair_capacity(
    conn: AsyncConnection, fund_code: str, bank_code: str, *, today: date, for_update: bool = False
) -> Capacity:
    """Live capacity of the pair. `for_update` takes the pair lock first, for a decision that follows."""
    if for_update:
        await queries.lock_pair(conn, fund_code, bank_code)
    agreement = await governing_agreement(conn, fund_code, bank_code, today)
    return await agreement_capacity(conn, agreement, today=today)


async def capacity_from_ledger(
    conn: AsyncConnection, fund_code: str, bank_code: str, *, as_of: date
) -> Capacity:
    """Capacity rebuilt by summing the pair's postings dated up to `as_of`.

    A lapse is posted dated the day after `expires_on`, so once the lapse job has run this equals
    `pair_capacity(today=as_of)`; before, it still counts the expired reservations as reserved.
    """
    agreement = await governing_agreement(conn, fund_code, bank_code, as_of)
    names = _pair_accounts(bank_code)
    balances = await ledger.signed_balances(conn, fund_code, as_of=as_of, names=names)
    deposit, outstanding, reserved = (balances.get(name, 0) for name in names)
    return _build(agreement, deposit, outstanding, reserved)


@dataclass(frozen=True)
class FundLeverage:
    """Each bank of a fund under the agreement that governs it today, and the fund's totals."""

    lines: tuple[tuple[Any, Capacity], ...]  # (agreement row, its pair's capacity)
    deposit_fen: int
    capacity_fen: int
    outstanding_fen: int
    reserved_fen: int

    @property
    def used_fen(self) -> int:
        return self.outstanding_fen + self.reserved_fen

    @property
    def headroom_fen(self) -> int:
        return self.capacity_fen - self.used_fen

    @property
    def leverage_ratio(self) -> Decimal | None:
        return leverage_ratio(self.used_fen, self.deposit_fen)


async def fund_leverage(conn: AsyncConnection, fund_code: str, today: date) -> FundLeverage:
    """One line per bank, under the agreement that governs it today, so no pair is counted twice."""
    lines = []
    for bank_code in await queries.fund_bank_codes(conn, fund_code):
        row = await queries.latest_started(conn, fund_code, bank_code, today)
        if row is None:  # only when the business date is set back before the bank's first agreement
            continue
        lines.append((row, await agreement_capacity(conn, row, today=today)))
    capacities = [capacity for _, capacity in lines]
    return FundLeverage(
        lines=tuple(lines),
        deposit_fen=sum(c.deposit_fen for c in capacities),
        capacity_fen=sum(c.capacity_fen for c in capacities),
        outstanding_fen=sum(c.outstanding_fen for c in capacities),
        reserved_fen=sum(c.reserved_fen for c in capacities),
    )

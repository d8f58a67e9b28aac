"""The arithmetic of a claim, pure: contractual interest accrued, the claim's amount, a recovery's split."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from fractions import Fraction

from loanfund.money import round_to_fen, share_of


def accrued_interest_fen(
    *,
    principal_fen: int,
    principal_repaid: Iterable[tuple[date, int]],
    annual_rate_pct: Decimal,
    start: date,
    end: date,
    day_basis: int,
) -> int:
    """Interest at the contract rate on the principal outstanding each day of [start, end).

    The disbursement day counts and the repayment day does not (算头不算尾): principal repaid on day
    p stops earning interest on p. Exact until one half-up rounding at the end (domain.md 4).
    """
    if end <= start:
        return 0
    changes = sorted((on, fen) for on, fen in principal_repaid if on < end)
    outstanding = principal_fen
    day = start
    total = Fraction(0)
    for on, fen in changes:
        if on > day:
            total += outstanding * (on - day).days
            day = on
        outstanding -= fen
    total += outstanding * (end - day).days
    # fen-days × rate% / 100 / basis → fen; round_to_fen takes yuan.
    yuan = total * Fraction(annual_rate_pct) / 100 / day_basis / 100
    return round_to_fen(yuan)


def claim_amount_fen(base_fen: int, fund_loss_share_pct: Decimal) -> int:
    """The fund's share of the base, rounded half-up once."""
    return share_of(base_fen, fund_loss_share_pct)[0]


def recovery_split(amount_fen: int, fund_loss_share_pct: Decimal) -> tuple[int, int]:
    """(fund part, bank part): the fund's part rounded half-up, the bank keeps the remainder."""
    return share_of(amount_fen, fund_loss_share_pct)

"""Calendar arithmetic for loan terms and interest days.

A term is counted in whole calendar months (api.md, Conventions): the same day of the month is a whole
month, any day past it starts a further month, and a day that a shorter month lacks clamps to its last
day. Formally `term_months(d, m)` is the smallest `n` with `add_months(d, n) >= m`, which is the
property the tests check.
"""

from __future__ import annotations

import calendar
from datetime import date

from loanfund.errors import invalid

__all__ = ["add_months", "days_between", "term_months"]


def add_months(d: date, n: int) -> date:
    """`d` moved by `n` calendar months (negative allowed); a missing day clamps to the month's end.

    2023-01-31 + 1 → 2023-02-28; 2024-02-29 + 12 → 2025-02-28.
    """
    index = d.year * 12 + (d.month - 1) + n
    year, month0 = divmod(index, 12)
    month = month0 + 1
    if not 1 <= year <= 9999:
        # date() would say "year out of range" without naming the operation that went there.
        raise OverflowError(f"{d.isoformat()} + {n} months is outside the calendar")
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def term_months(disbursed_on: date, maturity_on: date) -> int:
    """Whole calendar months from disbursement to maturity, a started month counting in full.

    2023-01-10 → 2025-01-10 is 24, → 2025-01-11 is 25; 2023-01-31 → 2023-02-28 is 1, → 2023-03-01 is 2.
    """
    if maturity_on <= disbursed_on:
        raise invalid("maturity_on", "must be after disbursed_on")
    months = (maturity_on.year - disbursed_on.year) * 12 + (maturity_on.month - disbursed_on.month)
    # `months` lands in maturity's own month, so it is either enough or one short, never one too many.
    if add_months(disbursed_on, months) < maturity_on:
        months += 1
    return months


def days_between(start: date, end: date) -> int:
    """Interest days from `start` to `end`: the first day counts, the last does not (算头不算尾).

    Disbursed 2009-03-10 and repaid 2009-03-20 is 10 days. An `end` before `start` is a caller's bug,
    not a zero-interest period, so it raises ValueError.
    """
    if end < start:
        raise ValueError(f"interest period ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return (end - start).days

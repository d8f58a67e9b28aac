"""Claim periods: `2023-07` (a month), `2023Q3` (a quarter), `2023H2` (a half year), half-open.

A period is [start, end): 2009 Q1 is [2009-01-01, 2009-04-01). A claim may be filed from `end` on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from loanfund.errors import ValidationFailed
from loanfund.terms import add_months

__all__ = ["Period", "parse_period"]

_PATTERNS = (
    ("month", re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])"), 1),
    ("quarter", re.compile(r"([0-9]{4})Q([1-4])"), 3),
    ("half", re.compile(r"([0-9]{4})H([12])"), 6),
)


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # exclusive: the first day after the period
    kind: str  # month | quarter | half
    text: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def parse_period(text: object, *, field: str = "period") -> Period:
    """Read a period in the contract's spelling; anything else is a validation error naming `field`."""
    if isinstance(text, str) and text.isascii():
        for kind, pattern, months in _PATTERNS:
            match = pattern.fullmatch(text)
            if match is None:
                continue
            year, index = int(match.group(1)), int(match.group(2))
            if year >= 1900:
                start = date(year, (index - 1) * months + 1, 1)
                return Period(start, add_months(start, months), kind, text)
    raise ValidationFailed(
        [{"field": field, "message": 'must be a period like "2023Q3", "2023H2" or "2023-07"'}]
    )

"""What a job is: a plain function `run(tx, business_date) -> counts`, a cadence, and its place in order.

A job works on one business date inside the caller's `Tx` and never commits; it must be idempotent per
date (a second run for the same date changes nothing) and set-based (no loop over loans in Python).
"""

from __future__ import annotations

import calendar
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

from loanfund.uow import Tx

Summary = dict[str, int]
JobFunction = Callable[[Tx, date], Awaitable[Summary]]


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class Cadence:
    """Which business dates a job runs for, and how long after the date begins.

    `lag_days` 0: as soon as the business date begins (the day's opening work: lapses, overdue, alerts).
    `lag_days` 1: once the date has ended (its closing figures are final then).
    """

    name: str
    lag_days: int
    month_end_only: bool = False

    def is_date(self, day: date) -> bool:
        return not self.month_end_only or day == _month_end(day)

    def latest_due(self, today: date) -> date:
        """The last date of this cadence that may run on business date `today`."""
        day = today - timedelta(days=self.lag_days)
        if self.month_end_only and day != _month_end(day):
            day = day.replace(day=1) - timedelta(days=1)
        return day

    def next_after(self, day: date) -> date:
        following = day + timedelta(days=1)
        return _month_end(following) if self.month_end_only else following

    def previous(self, day: date) -> date:
        """The cadence date before `day` (a cadence date)."""
        if self.month_end_only:
            return day.replace(day=1) - timedelta(days=1)
        return day - timedelta(days=1)

    def dates(self, first: date, last: date) -> list[date]:
        """The cadence's dates from `first` to `last`, both included, oldest first."""
        day = first if self.is_date(first) else self.next_after(first)
        out = []
        while day <= last:
            out.append(day)
            day = self.next_after(day)
        return out


DAILY = Cadence("daily", 0)
DAILY_AT_CLOSE = Cadence("daily at close", 1)
# Every fund's subsidy period (quarter, half-year, month) ends on a month end: the job picks the funds.
MONTH_END = Cadence("month end", 1, month_end_only=True)


@dataclass(frozen=True)
class Job:
    name: str
    run: JobFunction
    cadence: Cadence
    description: str
    # Jobs whose run for the same date must have completed first (e.g. alerts read the snapshot).
    after: tuple[str, ...] = ()

"""Business date and timestamps.

Business dates are dates in Asia/Shanghai; `LOANFUND_BUSINESS_DATE` pins today for rehearsals and
tests. It is read on every call so a test can change it without rebuilding the app. Code that replays
history (the demo, imports) pins it for its own task only with `pinned_business_date`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from loanfund.errors import FutureDate, ValidationFailed

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


_replayed_day: ContextVar[date | None] = ContextVar("loanfund_replayed_day", default=None)


@contextlib.contextmanager
def pinned_business_date(day: date) -> Iterator[None]:
    """Make `business_date()` answer `day` in this task (and tasks it starts) until the block ends."""
    token = _replayed_day.set(day)
    try:
        yield
    finally:
        _replayed_day.reset(token)


def business_date() -> date:
    replayed = _replayed_day.get()
    if replayed is not None:
        return replayed
    pinned = os.environ.get("LOANFUND_BUSINESS_DATE")
    if pinned:
        return date.fromisoformat(pinned)
    return datetime.now(SHANGHAI).date()


def not_in_future(value: date, field: str) -> date:

    today = business_date()
    if value > today:
        raise FutureDate(f"{field} {value.isoformat()} is after today ({today.isoformat()})", field=field)
    return value


def parse_date(text: object, field: str) -> date:
    if not isinstance(text, str):
        raise ValidationFailed([{"field": field, "message": "must be a date string YYYY-MM-DD"}])
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed([{"field": field, "message": "must be a real date YYYY-MM-DD"}]) from None

"""Business date and timestamps.

Business dates are dates in Asia/Shanghai; `LOANFUND_BUSINESS_DATE` pins today for rehearsals and
tests. It is read on every call so a test can change it without rebuilding the app. A unit of work
(`loanfund.uow.Tx`) reads it once when it begins and carries it as `tx.today`; code that replays
history (the demo, a job catching up) gives each unit of work its own day instead.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from loanfund.errors import FutureDate, invalid

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def business_date() -> date:
    pinned = os.environ.get("LOANFUND_BUSINESS_DATE")
    if pinned:
        return date.fromisoformat(pinned)
    return datetime.now(SHANGHAI).date()


def not_in_future(value: date, field: str, today: date | None = None) -> date:
    """`value` itself, refused with `FutureDate` when after `today` (the business date by default)."""
    today = today if today is not None else business_date()
    if value > today:
        raise FutureDate(f"{field} {value.isoformat()} is after today ({today.isoformat()})", field=field)
    return value


def parse_date(text: object, field: str) -> date:
    if not isinstance(text, str):
        raise invalid(field, "must be a date string YYYY-MM-DD")
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise invalid(field, "must be a real date YYYY-MM-DD") from None

"""Business date and timestamps.

Business dates are dates in Asia/Shanghai; `LOANFUND_BUSINESS_DATE` pins today for rehearsals and
tests. It is read on every call so a test can change it without rebuilding the app.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from loanfund.errors import FutureDate, ValidationFailed

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def business_date() -> date:
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

"""GET /events: the caller's events in order (a bank: its bank's; region roles: their region's)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from api.auth import ALL_ROLES, authorize
from api.context import RequestContext
from loanfund import events
from loanfund.errors import invalid

Ctx = NamedDependency[RequestContext]
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_EVENT_ID = 2**63 - 1  # a BIGINT column: a larger `after` could never match and overflows the query


class EventOut(msgspec.Struct):
    id: str
    type: str
    occurred_at: datetime
    fund_code: str | None
    bank_code: str | None
    data: dict[str, Any]


class EventPage(msgspec.Struct):
    items: list[EventOut]
    next_cursor: str | None


@get("/events")
async def list_events(
    ctx: Ctx, after: FromQuery[str | None] = None, limit: FromQuery[int | None] = None
) -> EventPage:
    """`after` is an event id (or a `next_cursor`); poll with the last id seen. `next_cursor` is the
    last id of the page, null when there is nothing more yet. The feed's order is the order in which
    events became final (loanfund/events.py), so ids are not always ascending, and an event that
    commits late still comes after the cursor: each is read exactly once."""
    authorize(ctx, ALL_ROLES)
    if limit is None:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    if after is not None and not (re.fullmatch(r"[0-9]{1,19}", after) and int(after) <= MAX_EVENT_ID):
        raise invalid("after", "must be an event id")
    client = ctx.client
    rows = await events.list_events(
        ctx.conn,
        bank_code=client.bank_code if client.role == "bank" else None,
        region_prefix=client.region_prefix if client.role in ("fund_manager", "window", "auditor") else None,
        after_id=int(after) if after is not None else None,
        limit=limit + 1,
    )
    items = rows[:limit]
    more = len(rows) > limit
    return EventPage(
        [
            EventOut(str(row.id), row.type, row.occurred_at, row.fund_code, row.bank_code, row.data)
            for row in items
        ],
        str(items[-1].id) if more and items else None,
    )


router = Router(path="/", route_handlers=[list_events])

"""Cursor pagination: `?limit=` (default 50, max 500) and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from api.limits import CONTROL
from loanfund.errors import invalid

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def check_choice(value: str | None, field: str, choices: Sequence[str]) -> None:
    """A list filter such as `?status=` must name one of its values (422 naming the field)."""
    if value is not None and value not in choices:
        raise invalid(field, f"must be one of {', '.join(choices)}")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        # validate=True: characters outside the alphabet are refused, not silently skipped.
        key = base64.b64decode(cursor.encode() + b"=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        decoded = key.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded or encode_cursor(decoded) != cursor or CONTROL.search(decoded):
        raise invalid("cursor", "is not a cursor this server gave out")
    return decoded


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def page(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """`rows` was fetched with limit + 1; the extra row only says there is more."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(str(key(items[-1]))) if more and items else None

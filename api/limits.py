"""Input limits that hold for every request, whatever the route: body size, JSON depth, control
characters. Each is one rule here; the middleware and `api.body` only call them.

- The body is read while it streams in and refused (413) as soon as it passes the limit, so a client
  cannot make the server hold more than `LOANFUND_MAX_BODY_BYTES` of it.
- JSON nested deeper than `MAX_JSON_DEPTH` is refused (400) before anything recursive touches it.
- Control characters (Unicode category Cc: C0, DEL, C1) are refused (422) in the path, the query
  string and every string of a JSON body, keys included: no field of loanfund is meant to hold one,
  and PostgreSQL refuses NUL outright, so letting them through only moves the failure later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from itertools import accumulate
from typing import Any
from urllib.parse import parse_qsl

from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.types import Receive, Scope
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.errors import MalformedRequest, PayloadTooLarge, ValidationFailed

MAX_JSON_DEPTH = 32
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class Disconnected(Exception):
    """The client went away before its body was complete."""


async def read_body(
    receive: Receive, limit: int, on_wait: Callable[[], Awaitable[None]] | None = None
) -> bytes:
    """The whole body, refused with `PayloadTooLarge` as soon as it passes `limit` bytes. `on_wait`
    runs once if the body did not come whole with the first message (a large or slow upload), so
    that the caller can give up what it should not hold while waiting."""
    chunks: list[bytes] = []
    size = 0
    waited = False
    while True:
        if chunks and not waited and on_wait is not None:
            waited = True
            await on_wait()
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", limit_bytes=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def json_depth(raw: bytes) -> int:
    """How deeply `raw` nests arrays and objects, without recursion (strings do not count)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(_STEP[b] for b in brackets))


def check_json_depth(raw: bytes) -> None:
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise MalformedRequest(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")


# Where a control character can sit in valid JSON: an escape (\u0000-\u001f, \u007f-\u009f, \b \f \n
# \r \t), a raw DEL, or a raw C1 character in UTF-8. A match (even `\\n`) only asks for the full check.
_MAYBE_CONTROL = re.compile(
    rb"\\u00[0-1][0-9a-fA-F]|\\u007[fF]|\\u00[89][0-9a-fA-F]|\\[bfnrt]|\x7f|\xc2[\x80-\x9f]"
)


def may_hold_control_characters(raw: bytes) -> bool:
    return _MAYBE_CONTROL.search(raw) is not None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, string) for every key and string value of a decoded JSON document."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            yield from _strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _refuse(found: list[tuple[str, str]]) -> None:
    if found:
        raise ValidationFailed(
            [{"field": field, "message": "must not contain control characters"} for field, _ in found]
        )


def check_document(document: Any) -> None:
    """422 naming every field of a decoded JSON body that holds a control character."""
    _refuse([(field or "body", text) for field, text in _strings(document, "") if CONTROL.search(text)])


# In a form's text a reason may hold line breaks and tabs; no other control character.
_FORM_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def check_text_fields(fields: Iterable[tuple[str, Any]]) -> None:
    """422 naming every form field whose text holds a control character other than a line break or
    a tab (a NUL would reach PostgreSQL as an error)."""
    _refuse(
        [
            (_FORM_CONTROL.sub("?", name) or "form", value)
            for name, value in fields
            if _FORM_CONTROL.search(name) or (isinstance(value, str) and _FORM_CONTROL.search(value))
        ]
    )


def check_request_line(scope: Scope) -> None:
    """422 if the (decoded) path or any query parameter holds a control character."""
    found: list[tuple[str, str]] = []
    path: str = scope.get("path", "")
    if CONTROL.search(path):
        found.append(("path", path))
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if CONTROL.search(name) or CONTROL.search(value):
            found.append((CONTROL.sub("?", name) or "query", value))
    _refuse(found)


async def read_request(
    scope: Scope, receive: Receive, max_body_bytes: int, on_wait: Callable[[], Awaitable[None]] | None = None
) -> bytes:
    """The checks every authenticated request passes before its body is used: the request line
    (422), the declared and then the streamed body size (413). Returns the body."""
    check_request_line(scope)
    declared = declared_length(scope)
    if declared is not None and declared > max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes", limit_bytes=max_body_bytes)
    return await read_body(receive, max_body_bytes, on_wait)


RATE_UNITS = ("second", "minute", "hour", "day")


def _client_identity(request: Any) -> str:
    """The token's hash (so each client has its own budget, and no token is kept in memory in
    clear), or the peer address for requests without one."""
    authorization = request.headers.get("authorization")
    if authorization:
        return hashlib.sha256(authorization.encode("latin-1", "replace")).hexdigest()
    client = request.client
    return f"addr:{client.host if client else 'unknown'}"


def rate_limit_middleware(rate_limit: str | None) -> list[DefineMiddleware]:
    """Litestar's rate limiter keyed per client, from a setting like `600/minute`; none when unset.
    Counts are kept per process (divide by the number of processes when setting it)."""
    if not rate_limit:
        return []
    count, _, unit = rate_limit.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or unit.strip() not in RATE_UNITS:
        raise ValueError(f"LOANFUND_RATE_LIMIT must look like 600/minute, not {rate_limit!r}")
    config = RateLimitConfig(
        rate_limit=(unit.strip(), int(count)),  # type: ignore[arg-type]
        identifier_for_request=_client_identity,
    )
    return [config.middleware]


def release_while_waiting(conn: AsyncConnection) -> Callable[[], Awaitable[None]]:
    """While a large body streams in, hold no transaction: on SQLite the token lookup's transaction
    holds the write lock (BEGIN IMMEDIATE), which every other request of the process would wait for.
    (On PostgreSQL the lookup ran in autocommit; the pooled connection stays checked out.)"""

    async def release() -> None:
        if conn.dialect.name != "postgresql" and conn.in_transaction():
            await conn.rollback()

    return release

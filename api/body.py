"""Strict request bodies: we decode JSON ourselves so that types never coerce ("1" is not 1) and
unknown fields, malformed JSON and bad values get the contract's codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from loanfund.errors import MalformedRequest, UnknownField, ValidationFailed

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _field(path: str) -> str:
    return path.lstrip(".") or "body"


def _translate(message: str) -> tuple[str, str]:
    """msgspec's message to (field, readable message)."""
    path = ""
    if match := _AT.search(message):
        path = match.group("path")
        message = message[: match.start()]
    if match := re.match(r"Object missing required field `(?P<name>[^`]+)`", message):
        return _field(f"{path}.{match.group('name')}"), "is required"
    if "matching regex" in message:
        return _field(path), "has the wrong format"
    if message.startswith("Invalid enum value"):
        return _field(path), message.replace(
            "Invalid enum value", "must be one of the documented values, not"
        )
    return _field(path), message


async def decode_body(request: Request[Any, Any, Any], body_type: type[T]) -> T:
    raw = await request.body()
    if not raw.strip():
        raise MalformedRequest("the request needs a JSON body")
    try:
        return msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if match := re.match(r"Object contains unknown field `(?P<name>[^`]+)`", message):
            at = _AT.search(message)
            field = _field(f"{at.group('path') if at else ''}.{match.group('name')}")
            raise UnknownField(f"unknown field `{match.group('name')}`", field=field) from None
        field, readable = _translate(message)
        raise ValidationFailed([{"field": field, "message": readable}]) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def with_body(body_type: type[Any]) -> type[Operation]:
    """An OpenAPI operation class that documents `body_type` as the JSON request body."""
    schema = msgspec.json.schema(body_type)
    inlined = _inline(schema, schema.get("$defs", {}))

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=inlined)},  # type: ignore[arg-type]
                required=True,
            )

    return BodyOperation

"""Strict request bodies: we decode JSON ourselves so that types never coerce ("1" is not 1) and
unknown fields, malformed JSON and bad values get the contract's codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import msgspec.inspect
from litestar import Request
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from api import limits
from loanfund.errors import MalformedRequest, UnknownField, invalid

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


def _first_unknown_field(value: Any, info: Any, path: str) -> tuple[str, str] | None:
    """(path, name) of the first field of `value` that the schema `info` forbids, if any."""
    mi = msgspec.inspect
    if isinstance(info, mi.Metadata):
        return _first_unknown_field(value, info.type, path)
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {field.encode_name: field for field in info.fields}
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                if info.forbid_unknown_fields and key != info.tag_field:
                    return path, key
                continue
            if (found := _first_unknown_field(item, field.type, f"{path}.{key}")) is not None:
                return found
        return None
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        if isinstance(value, dict) and structs:
            tagged = [t for t in structs if t.tag_field is not None and value.get(t.tag_field) == t.tag]
            candidates = tagged or (structs if len(structs) == 1 else [])
            if candidates:
                return _first_unknown_field(value, candidates[0], path)
        for option in info.types:
            if isinstance(option, mi.StructType):
                continue
            if (found := _first_unknown_field(value, option, path)) is not None:
                return found
        return None
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType) and isinstance(
        value, list
    ):
        for index, item in enumerate(value):
            if (found := _first_unknown_field(item, info.item_type, f"{path}[{index}]")) is not None:
                return found
        return None
    if isinstance(info, mi.DictType) and isinstance(value, dict):
        for key, item in value.items():
            if (found := _first_unknown_field(item, info.value_type, f"{path}.{key}")) is not None:
                return found
    return None


async def decode_body(request: Request[Any, Any, Any], body_type: type[T]) -> T:
    raw = await request.body()
    if not raw.strip():
        raise MalformedRequest("the request needs a JSON body")
    limits.check_json_depth(raw)
    try:
        decoded = msgspec.json.decode(raw, type=body_type, strict=True)
        if limits.may_hold_control_characters(raw):
            limits.check_document(msgspec.json.decode(raw))
        return decoded
    except msgspec.ValidationError as exc:
        # msgspec stops at the first problem in document order; the contract ranks malformed JSON
        # and unknown fields (400) above invalid values (422), wherever they sit in the body.
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError as decode_exc:
            raise MalformedRequest(f"the body is not valid JSON: {decode_exc}") from None
        if (unknown := _first_unknown_field(document, msgspec.inspect.type_info(body_type), "")) is not None:
            path, name = unknown
            raise UnknownField(f"unknown field `{name}`", field=_field(f"{path}.{name}")) from None
        message = str(exc)
        if match := re.match(r"Object contains unknown field `(?P<name>[^`]+)`", message):
            at = _AT.search(message)
            field = _field(f"{at.group('path') if at else ''}.{match.group('name')}")
            raise UnknownField(f"unknown field `{match.group('name')}`", field=field) from None
        field, readable = _translate(message)
        raise invalid(field, readable) from None
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

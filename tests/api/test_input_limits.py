"""Input limits (issue 8): control characters, JSON depth, integer and string bounds, body size.

Every refusal is a 4xx problem+json on both databases; the schema checks walk every request body of
the served OpenAPI document, so an endpoint added later is held to the same bounds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import (
    Api,
    World,
    assert_problem,
    make_allocation,
    make_fund,
    register_person,
    resident_id,
)

CONTROL_GETS = [
    "/loans?cursor=AAAA",  # decodes to NUL bytes
    "/loans/abc%00def",
    "/funds/H%00RB",
    "/borrowers?id_number=%00",
    "/audit?entity=%00",
    "/funds?cursor=%01",
    "/banks?x%7F=1",
    "/applications/%C2%85",  # NEL, a C1 control
    "/funds/HRB/ledger?account=cash%0A",
]


async def test_control_characters_in_path_and_query_are_refused(world: World, admin: Api) -> None:
    await make_fund(admin)
    for path in CONTROL_GETS:
        response = await admin.get(path)
        assert response.status_code == 422, (path, response.text)
        assert_problem(response, 422, "validation_error")


async def test_control_characters_in_bodies_are_refused(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    good = {"source": "central", "amount": "100", "received_on": "2026-02-01", "reference": "C-1"}
    for reference in ("a\u0000b", "tab\there", "line\n", "\u007f", "\u0085", "\u009f"):
        response = await manager.post("/funds/HRB/contributions", {**good, "reference": reference})
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "reference", body
    body = assert_problem(
        await admin.post("/banks", {"code": "B1", "name": "\u0000"}), 422, "validation_error"
    )
    assert body["errors"] == [{"field": "name", "message": "must not contain control characters"}]
    # A key of an object counts too (it would reach the unknown-field message otherwise).
    response = await admin.post(
        "/funds/HRB/policy",
        {"policy_edition": "cn-2008", "effective_from": "2026-01-01", "overrides": {"a\u0001": 1}},
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    # Text that only looks like an escape is fine, and so is any printable Unicode.
    ok = await manager.post("/funds/HRB/contributions", {**good, "reference": "C:\\new 中文 ①"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["reference"] == "C:\\new 中文 ①"
    position = (await manager.get("/funds/HRB")).json()["position"]
    assert position["cash"] == "100.00", "nothing refused above may have reached the ledger"


def nested(depth: int) -> bytes:
    return b'{"reason": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("key", [None, "deep-key"])
async def test_deep_json_is_malformed(world: World, admin: Api, manager: Api, key: str | None) -> None:
    await make_fund(admin)
    allocation = await make_allocation(manager)
    path = f"/funds/HRB/allocations/{allocation['id']}/reverse"
    for depth in (33, 1000, 100_000):
        response = await manager.post(path, content=nested(depth), key=key and f"{key}-{depth}")
        assert_problem(response, 400, "malformed_request")
        response = await manager.post(path, content=b"[" * depth, key=key and f"{key}-{depth}-open")
        assert_problem(response, 400, "malformed_request")
    # Brackets inside strings are not nesting; 32 levels are allowed (and then judged as usual).
    shallow = json.dumps({"reason": "[[[[" * 100}).encode()
    assert (await manager.post(path, content=shallow, key=key and f"{key}-ok")).status_code == 201
    response = await manager.post("/funds/HRB/contributions", content=nested(32))
    assert_problem(response, 400, "unknown_field")


async def test_integers_beyond_their_columns_are_refused(world: World, admin: Api) -> None:
    window = await world.caller("window", region="2301")
    from tests.support import make_uscc

    firm = {
        "kind": "enterprise",
        "uscc": make_uscc(),
        "name": "Firm",
        "staff_count": 5,
        "eligible_new_hires": 1,
    }
    for field, value in (
        ("staff_count", 10_000_000_000),
        ("staff_count", -1),
        ("eligible_new_hires", 2**63),
        ("staff_count", 10**40),
    ):
        body = assert_problem(
            await window.post("/borrowers", {**firm, field: value}), 422, "validation_error"
        )
        assert body["errors"][0]["field"] == field, body
    for after in ("99999999999999999999999", "9223372036854775808", "²", "-1", "1e3"):
        body = assert_problem(await window.get("/events", {"after": after}), 422, "validation_error")
        assert body["errors"][0]["field"] == "after"
    # The largest id fits the column; it is no event, and a cursor must be one (its place in the feed
    # is looked up), so it is refused the same way, without reaching the database's limits.
    body = assert_problem(
        await window.get("/events", {"after": "9223372036854775807"}), 422, "validation_error"
    )
    assert body["errors"] == [{"field": "after", "message": "is not the id of an event"}]
    for limit in ("0", "501", "99999999999999999999999", "-5"):
        assert_problem(await admin.get("/loans", {"limit": limit}), 422, "validation_error")
    person = {
        "kind": "individual",
        "id_number": resident_id("19800101", female=False),
        "name": "P",
        "categories": ["registered_unemployed"],
        "certificates": [
            {"kind": "reemployment", "number": "R1", "issued_on": "2020-01-01", "inspected_year": 10**12}
        ],
    }
    assert_problem(await window.post("/borrowers", person), 422, "validation_error")
    assert (await window.post("/borrowers", {**firm, "staff_count": 1_000_000})).status_code == 201


async def test_overlong_strings_are_refused(world: World, admin: Api) -> None:
    window = await world.caller("window", region="2301")
    borrower = await register_person(window)
    response = await window.post(
        "/borrowers",
        {
            "kind": "individual",
            "id_number": "1" * 10_000,
            "name": "P",
            "categories": ["registered_unemployed"],
        },
    )
    assert_problem(response, 422, "validation_error")
    response = await admin.get(f"/borrowers/{'x' * 5000}")
    assert_problem(response, 404, "not_found")
    assert (await window.get(f"/borrowers/{borrower['id']}")).status_code == 200


def _walk(schema: Any, path: str, components: dict[str, Any], seen: frozenset[str]) -> list[str]:
    """Every string without a length bound or format and every integer without both bounds."""
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return [] if name in seen else _walk(components[name], path, components, seen | {name})
    problems: list[str] = []
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    pattern = str(schema.get("pattern", ""))
    bounded_pattern = pattern.startswith("^") and pattern.endswith("$") and not set("*+") & set(pattern)
    if "string" in kinds and not (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or "format" in schema
        or bounded_pattern
    ):
        problems.append(f"{path}: string without maxLength")
    if "integer" in kinds and not ("minimum" in schema and "maximum" in schema):
        problems.append(f"{path}: integer without minimum and maximum")
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            problems += _walk(option, path, components, seen)
    for name, prop in schema.get("properties", {}).items():
        problems += _walk(prop, f"{path}.{name}", components, seen)
    if "items" in schema:
        problems += _walk(schema["items"], f"{path}[]", components, seen)
    return problems


async def test_every_request_body_bounds_its_strings_and_integers(world: World) -> None:
    document = (await world.http.get("/schema/openapi.json")).json()
    components = document.get("components", {}).get("schemas", {})
    problems = []
    bodies = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if content is None:
                continue
            bodies += 1
            problems += _walk(content["schema"], f"{method.upper()} {path}", components, frozenset())
    assert bodies >= 20
    assert problems == [], "\n".join(problems)

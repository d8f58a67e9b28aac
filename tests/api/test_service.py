"""Service-level behaviour: health, the OpenAPI document, problem+json for every refusal the framework
makes (unknown route, wrong method, bad query parameters), and the clients endpoints."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from loanfund.config import Settings
from tests.support import Api, World, assert_problem, make_fund

# Every endpoint of issue 2 ("Foundation"), as the OpenAPI document must list it.
FOUNDATION_ENDPOINTS = {
    ("post", "/api/v1/funds"),
    ("get", "/api/v1/funds"),
    ("get", "/api/v1/funds/{code}"),
    ("post", "/api/v1/funds/{code}/policy"),
    ("get", "/api/v1/funds/{code}/policy"),
    ("post", "/api/v1/funds/{code}/allocations"),
    ("get", "/api/v1/funds/{code}/allocations/{allocation_id}"),
    ("post", "/api/v1/funds/{code}/contributions"),
    ("post", "/api/v1/funds/{code}/allocations/{item_id}/reverse"),
    ("post", "/api/v1/funds/{code}/contributions/{item_id}/reverse"),
    ("get", "/api/v1/funds/{code}/matching"),
    ("post", "/api/v1/funds/{code}/subsidy-budget"),
    ("get", "/api/v1/funds/{code}/trial-balance"),
    ("get", "/api/v1/funds/{code}/ledger"),
    ("post", "/api/v1/banks"),
    ("get", "/api/v1/banks"),
    ("post", "/api/v1/clients"),
    ("get", "/api/v1/clients"),
    ("post", "/api/v1/clients/{client_id}/revoke"),
    ("get", "/api/v1/reference-rates"),
    ("post", "/api/v1/reference-rates"),
    ("get", "/api/v1/audit"),
    ("get", "/health"),
}

# POST endpoints with a JSON body, and the fields the contract requires in it.
REQUEST_BODIES = {
    "/api/v1/funds": {"code", "name", "region_code", "policy_edition", "currency"},
    "/api/v1/funds/{code}/policy": {"policy_edition", "effective_from"},
    "/api/v1/funds/{code}/allocations": {
        "amount",
        "received_on",
        "reference",
        "match_ratio_pct",
        "match_due_on",
    },
    "/api/v1/funds/{code}/contributions": {"source", "amount", "received_on", "reference"},
    "/api/v1/funds/{code}/allocations/{item_id}/reverse": {"reason"},
    "/api/v1/funds/{code}/contributions/{item_id}/reverse": {"reason"},
    "/api/v1/funds/{code}/subsidy-budget": {"amount", "received_on", "reference"},
    "/api/v1/banks": {"code", "name"},
    "/api/v1/clients": {"role", "name"},
    "/api/v1/reference-rates": {"kind", "effective_on", "rate_pct"},
}


async def test_health_needs_no_token(world: World) -> None:
    response = await world.http.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_reports_a_database_it_cannot_reach(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "x.db"
    settings = Settings(f"sqlite+aiosqlite:///{missing}", 1, 60, 8)
    async with AsyncTestClient(create_app(settings)) as http:
        response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "error"}


async def test_openapi_lists_every_endpoint_and_its_request_body(world: World) -> None:
    response = await world.http.get("/schema/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented >= FOUNDATION_ENDPOINTS, FOUNDATION_ENDPOINTS - documented

    # Every route the application serves is documented (whoever added it).
    app = world.http.app
    served = {
        (method.lower(), route.path_format)
        for route in app.routes
        for method in getattr(route, "methods", ())
        # The dashboard's HTML pages (/dashboard) are for people, not part of the API contract.
        if method not in ("HEAD", "OPTIONS") and not route.path.startswith(("/schema", "/dashboard"))
    }
    assert served <= documented, served - documented

    for path, required in REQUEST_BODIES.items():
        operation = doc["paths"][path]["post"]
        body = operation.get("requestBody")
        assert body is not None, f"POST {path} documents no request body"
        schema = body["content"]["application/json"]["schema"]
        assert required <= set(schema["properties"]), (path, schema)
        assert required <= set(schema.get("required", [])), (path, schema)
        assert schema.get("additionalProperties") is False, path

    amount = doc["paths"]["/api/v1/funds/{code}/allocations"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["properties"]["amount"]
    assert amount["type"] == "string"
    assert amount["pattern"] == r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$"


async def test_unknown_route_and_wrong_method_are_problem_json(world: World, manager: Api) -> None:
    auth = {"Authorization": f"Bearer {manager.token}"}
    for path in ("/api/v1/nothing-here", "/nothing-here", "/api/v1/funds/HRB/nothing"):
        assert_problem(await world.http.get(path, headers=auth), 404, "not_found")
    response = await world.http.delete("/api/v1/funds/HRB", headers=auth)
    assert_problem(response, 405, "method_not_allowed")
    response = await world.http.put("/api/v1/funds", headers=auth, json={})
    assert_problem(response, 405, "method_not_allowed")
    response = await world.http.get("/health/extra")
    assert_problem(response, 404, "not_found")


BAD_QUERIES = [
    ("/funds", {"limit": "0"}, "limit"),
    ("/funds", {"limit": "501"}, "limit"),
    ("/funds", {"limit": "abc"}, "limit"),
    ("/funds", {"limit": "-1"}, "limit"),
    ("/funds", {"limit": "1.5"}, "limit"),
    ("/funds", {"cursor": "%%%"}, "cursor"),
    ("/funds/HRB/matching", {"as_of": "2026-13-01"}, "as_of"),
    ("/funds/HRB/matching", {"as_of": "2026-02-30"}, "as_of"),
    ("/funds/HRB/matching", {"as_of": "yesterday"}, "as_of"),
    ("/funds/HRB/trial-balance", {"as_of": "2026-13-01"}, "as_of"),
    ("/funds/HRB/policy", {"on": "2026-00-10"}, "on"),
    ("/funds/HRB/ledger", {"limit": "0"}, "limit"),
    ("/funds/HRB/ledger", {"from": "2026-13-01"}, "from"),
    ("/funds/HRB/ledger", {"to": "x"}, "to"),
    ("/funds/HRB/ledger", {"account": "petty_cash"}, "account"),
    ("/banks", {"limit": "0"}, "limit"),
    ("/clients", {"limit": "0"}, "limit"),
    ("/clients", {"limit": "x"}, "limit"),
    ("/clients", {"cursor": "***"}, "cursor"),
    ("/banks", {"limit": "abc"}, "limit"),
    ("/audit", {"limit": "0"}, "limit"),
    ("/audit", {"limit": "abc"}, "limit"),
    ("/audit", {"from": "2026-13-01"}, "from"),
    ("/audit", {"cursor": "bm90LWEtbnVtYmVy"}, "cursor"),
    ("/reference-rates", {"kind": "EURIBOR"}, "kind"),
]


async def test_bad_query_parameters_are_422_never_500(admin: Api) -> None:
    await make_fund(admin)
    wrong = []
    for path, params, field in BAD_QUERIES:
        response = await admin.get(path, params)
        body = response.json()
        if (
            response.status_code != 422
            or not response.headers["content-type"].startswith("application/problem+json")
            or body.get("code") != "validation_error"
            or [error["field"] for error in body["errors"]] != [field]
        ):
            wrong.append((path, params, response.status_code, body))
    assert wrong == [], "\n".join(map(str, wrong))
    # The detail names the field and never repeats the query string (it may carry an ID number).
    body = (await admin.get("/borrowers", {"id_number": "230102198405010125", "limit": "abc"})).json()
    assert body["detail"] == "Invalid parameter: limit"
    assert "230102" not in str(body)
    # The limits themselves are accepted.
    for limit in ("1", "500"):
        assert (await admin.get("/funds", {"limit": limit})).status_code == 200


async def test_bad_query_parameter_without_token_is_401(world: World) -> None:
    response = await world.http.get("/api/v1/funds", params={"limit": "abc"})
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_pagination_walks_every_item_once(admin: Api, manager: Api) -> None:
    for index in range(5):
        await make_fund(admin, code=f"F{index}", region_code="230100")
    await make_fund(admin, code="OUT", region_code="310100")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await manager.get("/funds", params)).json()
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["F0", "F1", "F2", "F3", "F4"]

    for index in range(4):
        await admin.post("/clients", {"role": "auditor", "name": f"a{index}", "region_prefix": "23"})
    expected = [item["id"] for item in (await admin.get("/clients", {"limit": "500"})).json()["items"]]
    assert len(expected) == 6
    walked: list[str] = []
    cursor = None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        page = (await admin.get("/clients", params)).json()
        walked += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected


async def test_clients_endpoints_add_list_revoke(world: World, admin: Api) -> None:
    response = await admin.post(
        "/clients", {"role": "fund_manager", "name": "Harbin manager", "region_prefix": "2301"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    token, client_id = created["token"], created["client_id"]
    assert created["client"]["id"] == client_id
    assert created["client"]["role"] == "fund_manager"
    assert created["client"]["revoked_at"] is None

    new_caller = Api(world.http, token, "fund_manager")
    assert (await new_caller.get("/funds")).status_code == 200

    listing = await admin.get("/clients")
    assert listing.status_code == 200
    text = listing.text
    assert token not in text
    assert "token" not in text  # neither the token nor its hash is ever listed
    items = {item["id"]: item for item in listing.json()["items"]}
    assert items[client_id]["region_prefix"] == "2301"
    assert items[client_id]["revoked_at"] is None

    response = await admin.post(f"/clients/{client_id}/revoke")
    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    assert_problem(await new_caller.get("/funds"), 401, "unauthenticated")
    assert_problem(await new_caller.post("/funds/HRB/allocations", {}), 401, "unauthenticated")
    listed = {item["id"]: item for item in (await admin.get("/clients")).json()["items"]}
    assert listed[client_id]["revoked_at"] is not None

    # Revoking again is harmless; an unknown client is 404.
    assert (await admin.post(f"/clients/{client_id}/revoke")).status_code == 200
    assert_problem(await admin.post("/clients/cli_nope/revoke"), 404, "not_found")

    audit = (await admin.get("/audit", {"entity": f"client:{client_id}"})).json()["items"]
    assert [record["action"] for record in audit] == ["client.added", "client.revoked"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "emperor", "name": "X"}, "role"),
        ({"role": "fund_manager", "name": "X"}, "region_prefix"),
        ({"role": "fund_manager", "name": "X", "region_prefix": "23ab"}, "region_prefix"),
        ({"role": "admin", "name": "X", "region_prefix": "23"}, "region_prefix"),
        ({"role": "bank", "name": "X"}, "bank_code"),
        ({"role": "bank", "name": "X", "bank_code": "NOBANK"}, "bank_code"),
        ({"role": "window", "name": "X", "region_prefix": "23", "bank_code": "B1"}, "bank_code"),
        ({"role": "admin", "name": "   "}, "name"),
    ],
)
async def test_invalid_clients_are_refused(admin: Api, body: dict[str, Any], field: str) -> None:
    response = await admin.post("/clients", body)
    problem = assert_problem(response, 422, "validation_error")
    assert [error["field"] for error in problem["errors"]] == [field]
    listing = (await admin.get("/clients")).json()["items"]
    assert len(listing) == 1  # only the admin itself


async def test_revoked_admin_token_is_401_everywhere(world: World, admin: Api) -> None:
    second = await world.caller("admin")
    clients = (await second.get("/clients")).json()["items"]
    first_id = min(clients, key=lambda item: item["created_at"])["id"]  # the `admin` fixture's client
    assert (await second.post(f"/clients/{first_id}/revoke")).status_code == 200
    for path in ("/funds", "/banks", "/clients", "/audit", "/reference-rates"):
        assert_problem(await admin.get(path), 401, "unauthenticated")
    assert_problem(await admin.post("/banks", {"code": "B9", "name": "B9"}), 401, "unauthenticated")
    assert (await second.get("/clients")).status_code == 200


async def test_malformed_authorization_headers_are_401(world: World, admin: Api) -> None:
    for value in (
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {admin.token}",
        f"Token {admin.token}",
        f"Bearer {admin.token}x",
        f"Bearer {admin.token[:-1]}",
        "Bearer lf_" + "A" * 43,
    ):
        headers = {} if value is None else {"Authorization": value}
        response = await world.http.get("/api/v1/funds", headers=headers)
        assert_problem(response, 401, "unauthenticated")
    ok = await world.http.get("/api/v1/funds", headers={"Authorization": f"bearer {admin.token}"})
    assert ok.status_code == 200


async def test_responses_carry_a_request_id(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    response = await manager.post(
        "/funds/HRB/allocations",
        {
            "amount": "10",
            "received_on": "2026-01-10",
            "reference": "P",
            "match_ratio_pct": "100",
            "match_due_on": "2026-12-31",
        },
        headers={"X-Request-ID": "trace-42"},
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "trace-42"
    records = (await admin.get("/audit", {"entity": f"allocation:{response.json()['id']}"})).json()["items"]
    assert [record["request_id"] for record in records] == ["trace-42"]


async def test_every_state_change_is_audited_with_client_and_request(world: World, admin: Api) -> None:
    await make_fund(admin)
    manager = await world.caller("fund_manager", region="2301")
    ids = {item["role"]: item["id"] for item in (await admin.get("/clients")).json()["items"]}
    admin_id, manager_id = ids["admin"], ids["fund_manager"]

    async def change(caller: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request_id = f"req-{len(path)}-{uuid.uuid4().hex[:8]}"
        response = await caller.post(path, body, headers={"X-Request-ID": request_id})
        assert response.status_code in (200, 201), (path, response.text)
        records = [
            record
            for record in (await admin.get("/audit", {"limit": "500"})).json()["items"]
            if record["request_id"] == request_id
        ]
        assert len(records) == 1, (path, records)
        record = records[0]
        assert record["changes"], record
        assert record["occurred_at"].endswith("Z")
        return {"record": record, "body": response.json()}

    allocation = {
        "amount": "100",
        "received_on": "2026-01-10",
        "reference": "P",
        "match_ratio_pct": "100",
        "match_due_on": "2026-12-31",
    }
    done = await change(manager, "/funds/HRB/allocations", allocation)
    allocation_id = done["body"]["id"]
    assert done["record"]["entity"] == f"allocation:{allocation_id}"
    assert done["record"]["client_id"] == manager_id
    done = await change(
        manager,
        "/funds/HRB/contributions",
        {"source": "donation", "amount": "5", "received_on": "2026-01-11", "reference": "D"},
    )
    contribution_id = done["body"]["id"]
    steps: list[tuple[Api, str, dict[str, Any]]] = [
        (manager, f"/funds/HRB/contributions/{contribution_id}/reverse", {"reason": "typo"}),
        (manager, f"/funds/HRB/allocations/{allocation_id}/reverse", {"reason": "typo"}),
        (
            manager,
            "/funds/HRB/subsidy-budget",
            {"amount": "9", "received_on": "2026-01-12", "reference": "S"},
        ),
        (manager, "/funds/HRB/policy", {"policy_edition": "cn-2020", "effective_from": "2026-01-01"}),
        (admin, "/banks", {"code": "B7", "name": "Bank seven"}),
        (admin, "/clients", {"role": "auditor", "name": "aud", "region_prefix": "23"}),
        (admin, "/reference-rates", {"kind": "LPR5Y", "effective_on": "2026-11-20", "rate_pct": "3.40"}),
    ]
    for caller, path, body in steps:
        done = await change(caller, path, body)
        assert done["record"]["client_id"] == (manager_id if caller is manager else admin_id), path

"""Who may do what (api.md "Roles and scopes"): every role × every endpoint of "Funds and money in",
/banks, /clients, /reference-rates and /audit, inside and outside the caller's scope.

Expected: 401 without a valid token, 404 outside the scope (never reveal), 403 for a role that may not,
and refusals in the contract's order 401 → 404 → 403 → 400 → 422.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import Api, World, assert_problem, make_allocation, make_fund

ROLES = ("admin", "fund_manager", "window", "bank", "auditor")
ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})
MANAGERS = frozenset({"admin", "fund_manager"})
READERS = frozenset({"admin", "fund_manager", "auditor"})
FUND_READERS = frozenset({"admin", "fund_manager", "auditor", "window"})
AUDIT = frozenset({"admin", "auditor"})

IN, OUT = "IN", "OUT"  # funds in region 230100 (inside every 2301 caller's scope) and 310100
_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


@dataclass(frozen=True)
class Fixture:
    """Ids the endpoints need, per fund."""

    allocation: dict[str, str]  # fund → allocation to read and to tie local_match to
    allocation_to_reverse: dict[str, str]
    contribution_to_reverse: dict[str, str]
    revocable_client: str


Body = Callable[[Fixture, str], Any]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {fund} and the fixture's ids are filled in
    roles: frozenset[str]
    success: int
    scoped: bool  # a fund's resource: a bank and region roles outside the region get 404
    body: Body | None = None

    def url(self, fixture: Fixture, fund: str) -> str:
        return self.path.format(
            fund=fund,
            allocation=fixture.allocation[fund],
            allocation_to_reverse=fixture.allocation_to_reverse[fund],
            contribution_to_reverse=fixture.contribution_to_reverse[fund],
            client=fixture.revocable_client,
        )

    def expected(self, role: str, in_scope: bool) -> int:
        if self.scoped and role != "admin" and (role == "bank" or not in_scope):
            return 404
        return self.success if role in self.roles else 403


def allocation_body(fixture: Fixture, fund: str) -> dict[str, str]:
    return {
        "amount": "1000.00",
        "received_on": "2026-02-01",
        "reference": unique("A-"),
        "match_ratio_pct": "50",
        "match_due_on": "2026-12-31",
    }


def contribution_body(fixture: Fixture, fund: str) -> dict[str, str]:
    return {
        "source": "local_match",
        "amount": "100",
        "received_on": "2026-03-01",
        "reference": unique("L-"),
        "allocation_id": fixture.allocation[fund],
    }


_policy_days = itertools.count(1)

ENDPOINTS = [
    Endpoint(
        "POST",
        "/funds",
        ADMIN,
        201,
        False,
        lambda f, fund: {
            "code": unique("NEW"),
            "name": "New fund",
            "region_code": "230100",
            "policy_edition": "cn-2008",
            "currency": "CNY",
        },
    ),
    # Not a window: a fund's position shows its cash and deposits (docs/roles.md).
    Endpoint("GET", "/funds", READERS, 200, False),
    Endpoint("GET", "/funds/{fund}", READERS, 200, True),
    Endpoint(
        "POST",
        "/funds/{fund}/policy",
        MANAGERS,
        201,
        True,
        lambda f, fund: {
            "policy_edition": "cn-2020",
            "overrides": {},
            "effective_from": f"2025-01-{next(_policy_days) % 28 + 1:02d}",
        },
    ),
    Endpoint("GET", "/funds/{fund}/policy", FUND_READERS, 200, True),
    Endpoint("POST", "/funds/{fund}/allocations", MANAGERS, 201, True, allocation_body),
    Endpoint("GET", "/funds/{fund}/allocations/{allocation}", READERS, 200, True),
    Endpoint("POST", "/funds/{fund}/contributions", MANAGERS, 201, True, contribution_body),
    Endpoint(
        "POST",
        "/funds/{fund}/allocations/{allocation_to_reverse}/reverse",
        MANAGERS,
        201,
        True,
        lambda f, fund: {"reason": "entered twice"},
    ),
    Endpoint(
        "POST",
        "/funds/{fund}/contributions/{contribution_to_reverse}/reverse",
        MANAGERS,
        201,
        True,
        lambda f, fund: {"reason": "entered twice"},
    ),
    Endpoint("GET", "/funds/{fund}/matching", READERS, 200, True),
    Endpoint(
        "POST",
        "/funds/{fund}/subsidy-budget",
        MANAGERS,
        201,
        True,
        lambda f, fund: {"amount": "500", "received_on": "2026-04-01", "reference": unique("S-")},
    ),
    Endpoint("GET", "/funds/{fund}/trial-balance", READERS, 200, True),
    Endpoint("GET", "/funds/{fund}/ledger", READERS, 200, True),
    Endpoint("POST", "/banks", ADMIN, 201, False, lambda f, fund: {"code": unique("BK"), "name": "A bank"}),
    Endpoint("GET", "/banks", ALL, 200, False),
    Endpoint(
        "POST",
        "/clients",
        ADMIN,
        201,
        False,
        lambda f, fund: {"role": "window", "name": unique("w"), "region_prefix": "23"},
    ),
    Endpoint("GET", "/clients", ADMIN, 200, False),
    Endpoint("POST", "/clients/{client}/revoke", ADMIN, 200, False),
    Endpoint("GET", "/reference-rates", ALL, 200, False),
    Endpoint(
        "POST",
        "/reference-rates",
        ADMIN,
        201,
        False,
        lambda f, fund: {"kind": "LPR1Y", "effective_on": "2026-11-23", "rate_pct": "3.00"},
    ),
    Endpoint("GET", "/audit", AUDIT, 200, False),
]


async def build_world(world: World) -> tuple[Api, Api, Fixture]:
    admin = await world.caller("admin")
    manager_in = await world.caller("fund_manager", region="2301")
    manager_out = await world.caller("fund_manager", region="3101")
    await make_fund(admin, code=IN, region_code="230100")
    await make_fund(admin, code=OUT, region_code="310100")
    assert (await admin.post("/banks", {"code": "B1", "name": "Bank one"})).status_code == 201
    allocation, to_reverse, contribution = {}, {}, {}
    for fund, manager in ((IN, manager_in), (OUT, manager_out)):
        allocation[fund] = (await make_allocation(manager, fund=fund, reference="P-keep"))["id"]
        to_reverse[fund] = (await make_allocation(manager, fund=fund, amount="2000", reference="P-rev"))["id"]
        response = await manager.post(
            f"/funds/{fund}/contributions",
            {"source": "central", "amount": "300", "received_on": "2026-02-02", "reference": "C-rev"},
        )
        assert response.status_code == 201, response.text
        contribution[fund] = response.json()["id"]
    victim = await admin.post("/clients", {"role": "window", "name": "to revoke", "region_prefix": "2301"})
    fixture = Fixture(allocation, to_reverse, contribution, victim.json()["client_id"])
    return admin, manager_in, fixture


async def call(api: Api, endpoint: Endpoint, fixture: Fixture, fund: str) -> Any:
    url = endpoint.url(fixture, fund)
    if endpoint.method == "GET":
        return await api.get(url)
    body = endpoint.body(fixture, fund) if endpoint.body else None
    return await api.post(url, body)


async def snapshot(admin: Api) -> dict[str, Any]:
    """Everything a refused request must leave alone."""
    state: dict[str, Any] = {}
    for fund in (IN, OUT):
        state[fund] = (await admin.get(f"/funds/{fund}/trial-balance")).json()
        state[f"{fund}-ledger"] = len(
            (await admin.get(f"/funds/{fund}/ledger", {"limit": "500"})).json()["items"]
        )
    state["funds"] = [f["code"] for f in (await admin.get("/funds", {"limit": "500"})).json()["items"]]
    state["banks"] = [b["code"] for b in (await admin.get("/banks")).json()["items"]]
    state["clients"] = (await admin.get("/clients")).json()["items"]
    state["audit"] = len((await admin.get("/audit", {"limit": "500"})).json()["items"])
    return state


@pytest.mark.parametrize("role", ROLES)
async def test_role_matrix(world: World, role: str) -> None:
    admin, _, fixture = await build_world(world)
    caller = await world.caller(
        role,
        bank="B1" if role == "bank" else None,
        region="2301" if role in ("fund_manager", "window", "auditor") else None,
    )
    before = await snapshot(admin)
    failures = []
    successes = 0
    for endpoint, in_scope in itertools.product(ENDPOINTS, (True, False)):
        if not endpoint.scoped and not in_scope:
            continue
        fund = IN if in_scope else OUT
        expected = endpoint.expected(role, in_scope)
        response = await call(caller, endpoint, fixture, fund)
        label = (role, endpoint.method, endpoint.path, "in" if in_scope else "out")
        if response.status_code != expected:
            failures.append((*label, expected, response.status_code, response.text[:200]))
            continue
        if expected >= 400:
            body = response.json()
            code = {403: "forbidden", 404: "not_found"}[expected]
            if not response.headers["content-type"].startswith("application/problem+json") or (
                body.get("code") != code
            ):
                failures.append((*label, "problem+json", code, response.text[:200]))
        else:
            successes += 1
    assert failures == [], "\n".join(map(str, failures))
    if role not in ("admin", "fund_manager"):
        # Only admin and managers write here; everyone else's refusals changed nothing at all.
        assert await snapshot(admin) == before
    else:
        after = await snapshot(admin)
        if role == "fund_manager":
            assert after[OUT] == before[OUT], "a manager of 2301 changed a fund of 3101"
            assert after[f"{OUT}-ledger"] == before[f"{OUT}-ledger"]
    assert successes > 0


async def test_scoped_lists_show_only_the_callers_region(world: World) -> None:
    admin, _, fixture = await build_world(world)
    for role in ("fund_manager", "auditor"):
        caller = await world.caller(role, region="2301")
        codes = [fund["code"] for fund in (await caller.get("/funds")).json()["items"]]
        assert codes == [IN], role
    all_codes = [fund["code"] for fund in (await admin.get("/funds")).json()["items"]]
    assert all_codes == [IN, OUT]

    auditor = await world.caller("auditor", region="2301")
    records = (await auditor.get("/audit", {"limit": "500"})).json()["items"]
    assert records, "the auditor sees the records of its region"
    assert {record["region_code"] for record in records} == {"230100"}
    out_records = (await auditor.get("/audit", {"entity": f"fund:{OUT}"})).json()["items"]
    assert out_records == []
    out_allocation = fixture.allocation[OUT]
    assert (await auditor.get("/audit", {"entity": f"allocation:{out_allocation}"})).json()["items"] == []
    everything = (await admin.get("/audit", {"limit": "500"})).json()["items"]
    assert {record["region_code"] for record in everything} >= {"230100", "310100", None}

    # A manager of another province sees nothing of this one, and is told nothing.
    other = await world.caller("fund_manager", region="31")
    missing = await other.get("/funds/DOES-NOT-EXIST")
    hidden = await other.get(f"/funds/{IN}")
    assert_problem(missing, 404, "not_found")
    assert_problem(hidden, 404, "not_found")
    assert hidden.json()["title"] == missing.json()["title"]


async def test_a_region_prefix_is_a_prefix_not_a_substring(world: World) -> None:
    admin = await world.caller("admin")
    await make_fund(admin, code="F230100", region_code="230100")
    await make_fund(admin, code="F123010", region_code="123010")
    caller = await world.caller("fund_manager", region="2301")
    assert [f["code"] for f in (await caller.get("/funds")).json()["items"]] == ["F230100"]
    assert_problem(await caller.get("/funds/F123010"), 404, "not_found")
    six = await world.caller("auditor", region="230100")
    assert (await six.get("/funds/F230100")).status_code == 200
    other_city = await world.caller("auditor", region="230101")
    assert_problem(await other_city.get("/funds/F230100"), 404, "not_found")


UNAUTHENTICATED = [
    None,
    "Bearer not-a-token",
    "Basic dXNlcjpwYXNz",
]


async def test_every_endpoint_needs_a_valid_token(world: World) -> None:
    admin, _, fixture = await build_world(world)
    before = await snapshot(admin)
    failures = []
    for endpoint, fund, authorization in itertools.product(ENDPOINTS, (IN, OUT), UNAUTHENTICATED):
        headers = {} if authorization is None else {"Authorization": authorization}
        url = "/api/v1" + endpoint.url(fixture, fund)
        if endpoint.method == "GET":
            response = await world.http.get(url, headers=headers)
        else:
            # Even with a malformed body and key: 401 comes first.
            response = await world.http.post(
                url, content=b"{not json", headers={**headers, "Idempotency-Key": "bad key"}
            )
        body = response.json()
        if (
            response.status_code != 401
            or body.get("code") != "unauthenticated"
            or not response.headers["content-type"].startswith("application/problem+json")
            or not response.headers.get("www-authenticate", "").lower().startswith("bearer")
        ):
            failures.append((endpoint.method, endpoint.path, authorization, response.status_code, body))
    assert failures == [], "\n".join(map(str, failures))
    assert await snapshot(admin) == before


async def test_refusal_order_404_403_400_422(world: World) -> None:
    admin, manager, fixture = await build_world(world)
    auditor = await world.caller("auditor", region="2301")
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="B1")
    before = await snapshot(admin)
    path = "/funds/{fund}/allocations"
    good = allocation_body(fixture, IN)

    # 404 (scope) before 403 (role) before 400 (malformed, unknown field, key) before 422.
    for caller in (auditor, window, manager):
        response = await caller.post(path.format(fund=OUT), content=b"{not json", key="bad key")
        assert_problem(response, 404, "not_found")
    for caller in (auditor, window):
        response = await caller.post(path.format(fund=IN), content=b"{not json", key="bad key")
        assert_problem(response, 403, "forbidden")
    assert_problem(await admin.post(path.format(fund="NOPE"), content=b"{"), 404, "not_found")

    # A bank is outside every fund's scope: 404 even without an Idempotency-Key.
    response = await bank.post(path.format(fund=IN), good, headers={}, key="")
    assert_problem(response, 404, "not_found")
    response = await bank.http.post(
        f"/api/v1{path.format(fund=OUT)}", json=good, headers={"Authorization": f"Bearer {bank.token}"}
    )
    assert_problem(response, 404, "not_found")
    # A role refusal (403) also comes before the missing key (400).
    response = await bank.http.post(
        "/api/v1/funds", content=b"{", headers={"Authorization": f"Bearer {bank.token}"}
    )
    assert_problem(response, 403, "forbidden")

    # 400 before 422, wherever the offending parts sit in the body.
    in_path = path.format(fund=IN)
    assert_problem(await manager.post(in_path, good, key="x" * 129), 400, "malformed_request")
    assert_problem(await manager.post(in_path, {**good, "amount": 5}, key="a b"), 400, "malformed_request")
    body = assert_problem(await manager.post(in_path, {"amount": "bad", "extra": 1}), 400, "unknown_field")
    assert body["field"] == "extra"
    body = assert_problem(
        await manager.post(in_path, {**good, "amount": 1, "received_on": "2026-13-01", "zz": True}),
        400,
        "unknown_field",
    )
    assert body["field"] == "zz"
    assert_problem(await manager.post(in_path, content=b'{"amount": 5, '), 400, "malformed_request")
    assert_problem(await manager.post(in_path, content=b'{"amount": "5",'), 400, "malformed_request")
    assert_problem(await manager.post(in_path, content=b""), 400, "malformed_request")

    # 422 validation before 422 business rules (future_date).
    body = assert_problem(
        await manager.post(in_path, {**good, "amount": "1.001", "received_on": "2099-01-01"}),
        422,
        "validation_error",
    )
    assert [error["field"] for error in body["errors"]] == ["amount"]
    assert_problem(await manager.post(in_path, {**good, "received_on": "2099-01-01"}), 422, "future_date")
    assert await snapshot(admin) == before


async def test_unknown_field_beats_invalid_values(world: World) -> None:
    admin, _, _ = await build_world(world)
    response = await admin.post(
        "/funds/IN/policy",
        {"policy_edition": "cn-2020", "effective_from": "2026-13-01", "overrides": {}, "surprise": 1},
    )
    body = assert_problem(response, 400, "unknown_field")
    assert body["field"] == "surprise"
    response = await admin.post(
        "/funds/IN/policy", {"policy_edition": 7, "effective_from": "2026-01-01", "overrides": {}}
    )
    assert_problem(response, 422, "validation_error")


async def test_ids_of_another_fund_are_not_found_through_a_fund_in_scope(world: World) -> None:
    admin, manager, fixture = await build_world(world)
    before = await snapshot(admin)
    foreign_allocation = fixture.allocation[OUT]
    foreign_reversible = fixture.allocation_to_reverse[OUT]
    foreign_contribution = fixture.contribution_to_reverse[OUT]
    assert_problem(await manager.get(f"/funds/{IN}/allocations/{foreign_allocation}"), 404, "not_found")
    response = await manager.post(f"/funds/{IN}/allocations/{foreign_reversible}/reverse", {"reason": "x"})
    assert_problem(response, 404, "not_found")
    response = await manager.post(
        f"/funds/{IN}/contributions/{foreign_contribution}/reverse", {"reason": "x"}
    )
    assert_problem(response, 404, "not_found")
    response = await manager.post(
        f"/funds/{IN}/contributions", {**contribution_body(fixture, IN), "allocation_id": foreign_allocation}
    )
    assert_problem(response, 404, "not_found")
    # Even the admin cannot mix funds up this way.
    response = await admin.post(f"/funds/{IN}/allocations/{foreign_reversible}/reverse", {"reason": "x"})
    assert_problem(response, 404, "not_found")
    assert await snapshot(admin) == before

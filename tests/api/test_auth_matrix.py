"""Who may do what (api.md "Roles and scopes", docs/roles.md): every role × every endpoint of the app's
route table, inside and outside the caller's scope; a route without an entry here fails the suite.

Expected: 401 without a valid token, 404 outside the scope (never reveal), 403 for a role that may not,
and refusals in the contract's order 401 → 404 → 403 → 400 → 422.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
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


async def unauthenticated(world: World, method: str, url: str, authorization: str | None) -> Any:
    """The request without a valid token, or None when it was refused as it must be (401 first)."""
    headers = {} if authorization is None else {"Authorization": authorization}
    if method == "GET":
        response = await world.http.get("/api/v1" + url, headers=headers)
    else:
        # Even with a malformed body and key: 401 comes first.
        response = await world.http.post(
            "/api/v1" + url, content=b"{not json", headers={**headers, "Idempotency-Key": "bad key"}
        )
    body = response.json()
    if (
        response.status_code != 401
        or body.get("code") != "unauthenticated"
        or not response.headers["content-type"].startswith("application/problem+json")
        or not response.headers.get("www-authenticate", "").lower().startswith("bearer")
    ):
        return (method, url, authorization, response.status_code, body)
    return None


async def test_every_endpoint_needs_a_valid_token(world: World) -> None:
    admin, _, fixture = await build_world(world)
    before = await snapshot(admin)
    failures = []
    for endpoint, fund, authorization in itertools.product(ENDPOINTS, (IN, OUT), UNAUTHENTICATED):
        failure = await unauthenticated(world, endpoint.method, endpoint.url(fixture, fund), authorization)
        if failure is not None:
            failures.append(failure)
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


# ---- the rest of the route table: agreements, borrowers, applications, loans, events -------------
#
# Scope kinds: "fund" (a fund's resource: a bank is always outside), "bank" (a fund × bank resource:
# a bank is inside when it is the resource's bank; region roles when the fund is in their region),
# "" (no scope: the role decides). IN has bank B1 (the bank caller's), OUT bank B2.

ALL_BUT_BANK = frozenset({"admin", "fund_manager", "window", "auditor"})
BORROWER_WRITERS = frozenset({"admin", "window"})
CHECKERS = frozenset({"admin", "window", "fund_manager"})
APP_READERS = frozenset({"admin", "fund_manager", "window", "auditor", "bank"})
REJECTERS = frozenset({"admin", "fund_manager", "bank"})
LOAN_WRITERS = frozenset({"admin", "bank"})
LOAN_READERS = frozenset({"admin", "fund_manager", "auditor", "bank"})
VIEWERS = frozenset({"admin", "fund_manager", "auditor", "bank"})


@dataclass
class Lending:
    """Per fund: ids for each endpoint (writes get one resource each, so their order never matters)."""

    ids: dict[str, dict[str, str]]

    def url(self, path: str, fund: str) -> str:
        return path.format(fund=fund, **self.ids[fund])


@dataclass(frozen=True)
class LendingEndpoint:
    method: str
    path: str
    roles: frozenset[str]
    success: int
    scope: str
    body: Callable[[Lending, str], Any] | None = None
    # A list of a fund's things: a caller other than the admin sees the items of IN only (and some).
    lists_funds: bool = False

    def expected(self, role: str, in_scope: bool) -> int:
        if self.scope == "body":  # the scope is named in the body: the role is judged first
            if role not in self.roles:
                return 403
            return 404 if role != "admin" and not in_scope else self.success
        if role != "admin" and self.scope:
            if self.scope == "fund" and role == "bank":
                return 404
            if not in_scope:
                return 404
        return self.success if role in self.roles else 403


_numbers = itertools.count(1)


def _application(lending: Lending, fund: str) -> dict[str, Any]:
    from tests.support import application_body

    bank = "B1" if fund == IN else "B2"
    return application_body(lending.ids[fund]["fresh"], fund=fund, bank=bank, amount="20000")


LENDING_ENDPOINTS = [
    LendingEndpoint("GET", "/agreements", VIEWERS, 200, ""),
    LendingEndpoint("GET", "/agreements/{agreement}", VIEWERS, 200, "bank"),
    LendingEndpoint("GET", "/funds/{fund}/leverage", READERS, 200, "fund"),
    LendingEndpoint(
        "POST",
        "/funds/{fund}/agreements",
        MANAGERS,
        201,
        "fund",
        lambda lending, fund: {
            "bank_code": "NB",
            "leverage_multiple": "5",
            "fund_loss_share_pct": "80",
            "claim_after_days": 90,
            "claim_covers_interest": True,
            "effective_from": "2026-01-01",
        },
    ),
    LendingEndpoint(
        "POST",
        "/agreements/{agreement}/deposits",
        MANAGERS,
        201,
        "bank",
        lambda lending, fund: {"amount": "100", "deposited_on": "2026-03-01", "reference": unique("D")},
    ),
    LendingEndpoint(
        "POST",
        "/agreements/{agreement}/withdrawals",
        MANAGERS,
        201,
        "bank",
        lambda lending, fund: {"amount": "1", "withdrawn_on": "2026-03-02", "reference": unique("W")},
    ),
    LendingEndpoint(
        "POST",
        "/borrowers",
        BORROWER_WRITERS,
        201,
        "",
        lambda lending, fund: {
            "kind": "individual",
            "id_number": _person_id(),
            "name": "Someone",
            "categories": ["registered_unemployed"],
            "region_code": "230100",
        },
    ),
    LendingEndpoint("GET", "/borrowers", APP_READERS, 200, ""),
    LendingEndpoint("GET", "/borrowers/{borrower}", APP_READERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/guarantors",
        BORROWER_WRITERS,
        201,
        "",
        lambda lending, fund: {
            "id_number": _person_id(birth="19700101"),
            "name": "Guarantor",
            "employer": "Finance bureau",
            "employer_kind": "civil_service",
            "monthly_income": "6000",
            "region_code": "230100",
        },
    ),
    LendingEndpoint("GET", "/guarantors", ALL_BUT_BANK, 200, ""),
    LendingEndpoint("GET", "/guarantors/{guarantor}", ALL_BUT_BANK, 200, "fund"),
    LendingEndpoint("POST", "/eligibility-checks", CHECKERS, 200, "", _application),
    LendingEndpoint("POST", "/applications", BORROWER_WRITERS, 201, "", _application),
    LendingEndpoint("GET", "/applications", APP_READERS, 200, ""),
    LendingEndpoint("GET", "/applications/{submitted}", APP_READERS, 200, "bank"),
    LendingEndpoint("POST", "/applications/{to_approve}/approve", MANAGERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/applications/{to_reject}/reject",
        REJECTERS,
        200,
        "bank",
        lambda lending, fund: {"reason": "no"},
    ),
    LendingEndpoint(
        "POST",
        "/applications/{to_withdraw}/withdraw",
        BORROWER_WRITERS,
        200,
        "bank",
        lambda lending, fund: {"reason": "moved away"},
    ),
    LendingEndpoint(
        "POST",
        "/loans",
        LOAN_WRITERS,
        201,
        "body",
        lambda lending, fund: {
            "application_id": lending.ids[fund]["approved"],
            "loan_number": unique("LN"),
            "principal": "20000",
            "annual_rate_pct": "4",
            "disbursed_on": TODAY_DATE,
            "maturity_on": "2028-11-27",
        },
    ),
    LendingEndpoint("GET", "/loans", LOAN_READERS, 200, ""),
    LendingEndpoint("GET", "/loans/{loan}", LOAN_READERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/loans/{loan}/repayments",
        LOAN_WRITERS,
        201,
        "bank",
        lambda lending, fund: {"principal": "10", "interest": "1", "paid_on": TODAY_DATE},
    ),
    LendingEndpoint(
        "POST",
        "/loans/{loan}/overdue",
        LOAN_WRITERS,
        200,
        "bank",
        lambda lending, fund: {"overdue_since": TODAY_DATE, "overdue_principal": "10"},
    ),
    LendingEndpoint(
        "POST",
        "/loans/{loan}/extensions",
        LOAN_WRITERS,
        200,
        "bank",
        lambda lending, fund: {"new_maturity_on": "2029-05-27", "guarantor_consent": True},
    ),
    LendingEndpoint("GET", "/events", ALL, 200, ""),
    LendingEndpoint(
        "POST",
        "/borrowers/{borrower}/eligibility-facts",
        BORROWER_WRITERS,
        200,
        "bank",
        lambda lending, fund: {"syb_trained": True},
    ),
    LendingEndpoint("GET", "/loans/{claimable}/delinquency", VIEWERS, 200, "bank"),
    # Compensation (issue 11): a bank files, a manager decides; recoveries by the bank, write-offs by
    # the manager. Each write that succeeds once has its own loan or claim, made by build_lending.
    LendingEndpoint("GET", "/compensation-claims", VIEWERS, 200, "", lists_funds=True),
    LendingEndpoint(
        "POST",
        "/compensation-claims",
        LOAN_WRITERS,
        201,
        "body",
        lambda lending, fund: {"loan_id": lending.ids[fund]["claimable"], "claimed_on": TODAY_DATE},
    ),
    LendingEndpoint("GET", "/compensation-claims/{claim}", VIEWERS, 200, "bank"),
    LendingEndpoint("POST", "/compensation-claims/{claim_to_approve}/approve", MANAGERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/compensation-claims/{claim_to_reject}/reject",
        MANAGERS,
        200,
        "bank",
        lambda lending, fund: {"reason": "the borrower paid"},
    ),
    # Recoveries, then the write-off that closes the same loan (after it, a recovery is refused).
    LendingEndpoint("GET", "/loans/{compensated}/recoveries", VIEWERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/loans/{compensated}/recoveries",
        LOAN_WRITERS,
        201,
        "bank",
        lambda lending, fund: {"amount": "100", "recovered_on": TODAY_DATE},
    ),
    LendingEndpoint(
        "POST",
        "/loans/{compensated}/write-off",
        MANAGERS,
        200,
        "bank",
        lambda lending, fund: {"reason": "nothing more to recover"},
    ),
    LendingEndpoint("GET", "/agreements/{agreement}/compensation-rate", VIEWERS, 200, "bank"),
    # A fund's report: a bank gets its own part, of a fund it has an agreement with.
    LendingEndpoint("GET", "/reports/portfolio?fund_code={fund}", VIEWERS, 200, "bank"),
    # Interest subsidies (issue 10): a bank files for itself (an admin names the bank), a manager
    # reviews and pays from the subsidy budget.
    LendingEndpoint("GET", "/subsidy-claims", VIEWERS, 200, "", lists_funds=True),
    LendingEndpoint(
        "POST",
        "/subsidy-claims",
        LOAN_WRITERS,
        201,
        "body",
        lambda lending, fund: {
            "fund_code": fund,
            "bank_code": "B1" if fund == IN else "B2",
            "period": "2026Q1",
        },
    ),
    LendingEndpoint("GET", "/subsidy-claims/{subsidy_to_pay}", VIEWERS, 200, "bank"),
    LendingEndpoint(
        "POST",
        "/subsidy-claims/{subsidy_to_review}/review",
        MANAGERS,
        200,
        "bank",
        lambda lending, fund: {"decisions": []},
    ),
    LendingEndpoint("POST", "/subsidy-claims/{subsidy_to_pay}/pay", MANAGERS, 200, "bank"),
    # The installation's jobs (issue 12): not a region's, so no scope; a run carries counts only.
    LendingEndpoint("GET", "/jobs", READERS, 200, ""),
    LendingEndpoint("GET", "/jobs/{job}/runs", READERS, 200, ""),
    # Last: a suspended agreement refuses approvals.
    LendingEndpoint(
        "POST",
        "/agreements/{agreement}/suspend",
        MANAGERS,
        200,
        "bank",
        lambda lending, fund: {"reason": "audit"},
    ),
    LendingEndpoint(
        "POST", "/agreements/{agreement}/resume", MANAGERS, 200, "bank", lambda lending, fund: {}
    ),
]

TODAY_DATE = "2026-11-27"
EARLIER = "2026-10-27"
# Loans old enough to be 90 days past due today, with a subsidy quarter before they fell overdue.
LONG_AGO = "2026-04-01"
_people = itertools.count(10)


def _person_id(birth: str = "19850101") -> str:
    from tests.support import resident_id

    return resident_id(birth, female=False, seq=f"{next(_people) % 100:02d}", district="230103")


def _at(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", day)


def _created(response: Any, status: int = 201) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["id"])


async def build_lending(world: World, monkeypatch: pytest.MonkeyPatch) -> Lending:
    """Two funds (IN with bank B1, OUT with bank B2) and, in each, a resource per endpoint that writes.

    The business date moves forward as in real life: loans made LONG_AGO fall 90 days overdue for
    compensation and fill two subsidy quarters; loans made EARLIER can fall overdue today."""
    from loanfund import jobs
    from loanfund.clock import parse_date
    from tests.support import (
        application_body,
        make_agreement,
        make_deposit,
        register_guarantor,
        register_person,
    )

    _at(monkeypatch, LONG_AGO)
    admin = await world.caller("admin")
    assert (await admin.post("/banks", {"code": "NB", "name": "New bank"})).status_code == 201
    ids: dict[str, dict[str, str]] = {}
    old_loans: dict[str, dict[str, str]] = {}  # per fund: loans made LONG_AGO, by what they are for
    callers = {}
    seqs: dict[str, Iterator[int]] = {}
    for fund, region, prefix, bank in ((IN, "230100", "2301", "B1"), (OUT, "310100", "3101", "B2")):
        manager = await world.caller("fund_manager", region=prefix)
        window = await world.caller("window", region=prefix)
        bank_caller = await world.caller("bank", bank=bank)
        callers[fund] = (manager, window, bank_caller)
        await make_fund(admin, code=fund, region_code=region, edition="cn-2016")
        await make_allocation(manager, fund=fund, amount="3000000")
        # The paid claims below would suspend the agreement at the default 5% (domain.md 7): the
        # approvals and suspensions of the matrix need it open.
        made = await make_agreement(manager, fund=fund, bank=bank, compensation_suspend_pct="100")
        agreement = made["id"]
        await make_deposit(manager, agreement, "1000000")
        seqs[fund] = iter(range(20 if fund == IN else 40, 60))
        old = old_loans[fund] = {}
        for name in ("claimable", "for_approval", "for_rejection", "compensated"):
            person = (await register_person(window, birth="19800101", seq=f"{next(seqs[fund]):02d}"))["id"]
            body = application_body(person, fund=fund, bank=bank, amount="20000", applied_on=LONG_AGO)
            app = _created(await window.post("/applications", body))
            assert (await manager.post(f"/applications/{app}/approve")).status_code == 200
            loan = {
                "application_id": app,
                "loan_number": unique("O"),
                "principal": "20000",
                "annual_rate_pct": "4",
                "disbursed_on": LONG_AGO,
                "maturity_on": "2028-04-01",
            }
            old[name] = _created(await bank_caller.post("/loans", loan))
        ids[fund] = {
            "agreement": agreement,
            "job": "maturity_warnings",
            "claimable": old["claimable"],
            "compensated": old["compensated"],
        }

    _at(monkeypatch, EARLIER)
    for fund, bank in ((IN, "B1"), (OUT, "B2")):
        manager, window, bank_caller = callers[fund]
        people = seqs[fund]
        borrower = (await register_person(window, birth="19800101", seq=f"{next(people):02d}"))["id"]
        guarantor = (await register_guarantor(window, seq="05" if fund == IN else "06"))["id"]
        apps = {}
        for name in ("submitted", "to_approve", "to_reject", "to_withdraw", "approved", "with_loan"):
            person = (await register_person(window, birth="19800101", seq=f"{next(people):02d}"))["id"]
            body = application_body(person, fund=fund, bank=bank, amount="20000", applied_on=EARLIER)
            apps[name] = _created(await window.post("/applications", body))
            if name == "with_loan":
                borrower = person  # the borrower a bank sees: it holds a loan of theirs
        fresh = (await register_person(window, birth="19800101", seq=f"{next(people):02d}"))["id"]
        approved = await manager.post(f"/applications/{apps['with_loan']}/approve")
        assert approved.status_code == 200, approved.text
        loan = await bank_caller.post(
            "/loans",
            {
                "application_id": apps["with_loan"],
                "loan_number": unique("L"),
                "principal": "20000",
                "annual_rate_pct": "4",
                "disbursed_on": EARLIER,
                "maturity_on": "2028-10-27",
            },
        )
        ids[fund].update(borrower=borrower, guarantor=guarantor, loan=_created(loan), fresh=fresh, **apps)

    _at(monkeypatch, TODAY_DATE)
    for fund in (IN, OUT):
        manager, window, bank_caller = callers[fund]
        mine = ids[fund]
        # Approved today, so not lapsed.
        assert (await manager.post(f"/applications/{mine['approved']}/approve")).status_code == 200
        claims = {}
        for name, loan_id in old_loans[fund].items():
            overdue = {"overdue_since": "2026-07-01", "overdue_principal": "1000"}
            assert (await bank_caller.post(f"/loans/{loan_id}/overdue", overdue)).status_code == 200
            if name != "claimable":  # that one is the matrix's to claim
                body = {"loan_id": loan_id, "claimed_on": TODAY_DATE}
                claims[name] = _created(await bank_caller.post("/compensation-claims", body))
        paid = await manager.post(f"/compensation-claims/{claims['compensated']}/approve")
        assert paid.status_code == 200, paid.text
        mine.update(
            claim=claims["compensated"],
            claim_to_approve=claims["for_approval"],
            claim_to_reject=claims["for_rejection"],
        )
        budget = {"amount": "20000", "received_on": TODAY_DATE, "reference": unique("SB")}
        _created(await manager.post(f"/funds/{fund}/subsidy-budget", budget))
        for period, name in (("2026Q2", "subsidy_to_pay"), ("2026Q3", "subsidy_to_review")):
            body = {"fund_code": fund, "period": period}
            mine[name] = _created(await bank_caller.post("/subsidy-claims", body))
        reviewed = await manager.post(f"/subsidy-claims/{mine['subsidy_to_pay']}/review", {"decisions": []})
        assert reviewed.status_code == 200, reviewed.text
        assert reviewed.json()["approved_total"] != "0.00", "the claim to pay has money in it"
    ran = await jobs.run_job(world.engine, jobs.get("maturity_warnings"), parse_date(TODAY_DATE, "day"))
    assert ran.outcome == "ok"
    return Lending(ids)


@pytest.mark.parametrize("role", ROLES)
async def test_lending_role_matrix(world: World, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lending = await build_lending(world, monkeypatch)
    caller = await world.caller(
        role,
        bank="B1" if role == "bank" else None,
        region="2301" if role in ("fund_manager", "window", "auditor") else None,
    )
    failures = []
    for endpoint, in_scope in itertools.product(LENDING_ENDPOINTS, (True, False)):
        if not endpoint.scope and not in_scope:
            continue
        fund = IN if in_scope else OUT
        url = lending.url(endpoint.path, fund)
        if endpoint.method == "GET":
            response = await caller.get(url)
        else:
            body = endpoint.body(lending, fund) if endpoint.body else None
            response = await caller.post(url, body)
        expected = endpoint.expected(role, in_scope)
        label = (role, endpoint.method, endpoint.path, in_scope)
        if response.status_code != expected:
            failures.append((*label, expected, response.text[:300]))
        elif expected >= 400:
            body = response.json()
            code = {403: "forbidden", 404: "not_found"}[expected]
            if body.get("code") != code or not response.headers["content-type"].startswith(PROBLEM):
                failures.append((*label, code, response.text[:200]))
        elif endpoint.lists_funds:
            funds = {item["fund_code"] for item in response.json()["items"]}
            if funds != ({IN, OUT} if role == "admin" else {IN}):
                failures.append((*label, "listed the funds", sorted(funds)))
        elif endpoint.path.startswith("/jobs/") and not response.json()["items"]:
            failures.append((*label, "a run", response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))


PROBLEM = "application/problem+json"


async def test_every_lending_endpoint_needs_a_valid_token(world: World) -> None:
    """401 before anything is looked up, so the ids need not exist."""

    class Nowhere(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return "nope"

    failures = []
    for endpoint, authorization in itertools.product(LENDING_ENDPOINTS, UNAUTHENTICATED):
        url = endpoint.path.format_map(Nowhere(fund=IN))
        failure = await unauthenticated(world, endpoint.method, url, authorization)
        if failure is not None:
            failures.append(failure)
    assert failures == [], "\n".join(map(str, failures))


async def test_refusal_order_of_claims_subsidies_and_reports(world: World) -> None:
    """403 for the role before 400 (malformed) and 422 (missing), where nothing in scope is named;
    404 for what is named and out of reach before 403 and 400."""
    admin = await world.caller("admin")
    await make_fund(admin, code=IN, region_code="230100")
    window = await world.caller("window", region="2301")
    auditor = await world.caller("auditor", region="2301")
    manager = await world.caller("fund_manager", region="2301")
    bank = await world.caller("bank", bank="B1")
    for caller, path in (
        (window, "/compensation-claims"),
        (auditor, "/compensation-claims"),
        (manager, "/subsidy-claims"),
        (window, "/subsidy-claims"),
    ):
        assert_problem(await caller.post(path, content=b"{not json", key="bad key"), 403, "forbidden")
    assert_problem(await window.get("/reports/portfolio"), 403, "forbidden")
    assert_problem(await auditor.get("/reports/portfolio"), 422, "validation_error")
    assert_problem(await window.get("/reports/portfolio", {"fund_code": "NOPE"}), 404, "not_found")
    assert_problem(await window.get("/jobs"), 403, "forbidden")
    assert_problem(await bank.get("/jobs/maturity_warnings/runs"), 403, "forbidden")
    assert_problem(await auditor.get("/jobs/nope/runs"), 404, "not_found")
    for caller in (window, manager, bank):
        for path in (
            "/compensation-claims/nope/approve",
            "/compensation-claims/nope/reject",
            "/subsidy-claims/nope/review",
            "/loans/nope/recoveries",
            "/loans/nope/write-off",
            "/borrowers/nope/eligibility-facts",
        ):
            assert_problem(await caller.post(path, content=b"{not json", key="bad key"), 404, "not_found")
    # A bank names another bank in the body: not found, as if it did not exist.
    response = await bank.post("/subsidy-claims", {"fund_code": IN, "bank_code": "B2", "period": "2026Q1"})
    assert_problem(response, 404, "not_found")


def _shape(path: str) -> str:
    import re

    return re.sub(r"\{[^}]*\}", "{}", path.partition("?")[0])


def test_every_route_of_the_app_has_an_entry_in_the_matrix() -> None:
    """A route added without deciding who may call it fails here (add it to ENDPOINTS or
    LENDING_ENDPOINTS above, and to docs/roles.md)."""
    from litestar.routes import HTTPRoute

    from api.app import API_PREFIX, create_app
    from loanfund.config import Settings

    app = create_app(Settings("sqlite+aiosqlite:///:memory:", 1, 60, 8))
    routes = {
        (method, _shape(route.path.removeprefix(API_PREFIX)))
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith(API_PREFIX + "/")
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    }
    matrix = {(e.method, _shape(e.path)) for e in ENDPOINTS} | {
        (e.method, _shape(e.path)) for e in LENDING_ENDPOINTS
    }
    assert routes - matrix == set(), "routes with no entry in the authorisation matrix"
    assert matrix - routes == set(), "matrix entries for routes that do not exist"


async def test_no_client_revokes_its_own_token(world: World) -> None:
    """The only admin would lock everyone out (issue 8): 409, and the token still works."""
    admin = await world.caller("admin")
    me = next(c for c in (await admin.get("/clients")).json()["items"] if c["role"] == "admin")
    body = assert_problem(await admin.post(f"/clients/{me['id']}/revoke"), 409, "invalid_state")
    assert "own token" in body["detail"]
    assert (await admin.get("/clients")).status_code == 200
    other = await world.caller("admin")
    revoked = await other.post(f"/clients/{me['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert_problem(await admin.get("/clients"), 401, "unauthenticated")

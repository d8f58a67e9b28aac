"""Applications through the API: submit, approve (reserving headroom), reject, withdraw, lapse, events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import (
    Api,
    World,
    application_body,
    assert_problem,
    capacity,
    lending_setup,
    make_fund,
    register_guarantor,
    register_person,
)


async def submit(window: Api, borrower_id: str, **extra: Any) -> dict[str, Any]:
    response = await window.post("/applications", application_body(borrower_id, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_submit_and_approve(world: World, admin: Api, manager: Api) -> None:
    agreement = await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    app = await submit(window, person["id"])
    assert app["status"] == "submitted"
    assert app["eligibility"]["eligible"] is True and app["policy_edition"] == "cn-2016"
    assert app["guarantee"]["id"] is None
    assert app["borrower"]["id_number_masked"] == person["id_number_masked"]

    response = await manager.post(f"/applications/{app['id']}/approve")
    assert response.status_code == 200, response.text
    approved = response.json()
    assert approved["status"] == "guarantee_approved"
    guarantee = approved["guarantee"]
    assert (guarantee["amount"], guarantee["expires_on"]) == ("50000.00", "2026-12-18")  # + 21 days
    assert guarantee["id"].startswith("gua_")
    assert [step["status"] for step in approved["history"]] == ["submitted", "guarantee_approved"]
    assert all(step["client_id"] for step in approved["history"])
    cap = await capacity(manager, agreement["id"])
    assert (cap["reserved"], cap["headroom"]) == ("50000.00", "4950000.00")

    # The fund's managers see the borrower they decided on; the bank learns of the guarantee.
    assert (await manager.get(f"/borrowers/{person['id']}")).status_code == 200
    bank = await world.caller("bank", bank="ICBC")
    events = (await bank.get("/events")).json()["items"]
    assert [e["type"] for e in events] == ["guarantee_approved"]
    assert events[0]["data"]["application_id"] == app["id"]
    assert events[0]["data"]["amount"] == "50000.00"
    listed = (await bank.get("/applications", {"status": "guarantee_approved"})).json()["items"]
    assert [item["id"] for item in listed] == [app["id"]]
    assert_problem(await manager.post(f"/applications/{app['id']}/approve"), 409, "invalid_state")


async def test_ineligible_stores_nothing(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    response = await window.post("/applications", application_body(person["id"], amount="100000.01"))
    body = assert_problem(response, 422, "ineligible")
    assert body["eligible"] is False and body["policy_edition"] == "cn-2016"
    failed = [c for c in body["checks"] if not c["passed"]]
    assert [c["rule"] for c in failed] == ["amount_cap"]
    assert (await window.get("/applications")).json()["items"] == []
    # One application at a time per borrower.
    await submit(window, person["id"])
    again = assert_problem(
        await window.post("/applications", application_body(person["id"])), 422, "ineligible"
    )
    assert [c["rule"] for c in again["checks"] if not c["passed"]] == ["no_open_application"]


async def test_maker_checker_and_roles(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    response = await admin.post("/applications", application_body(person["id"]))
    assert response.status_code == 201, response.text
    app = response.json()
    assert_problem(await admin.post(f"/applications/{app['id']}/approve"), 403, "same_maker_checker")
    assert_problem(await window.post(f"/applications/{app['id']}/approve"), 403, "forbidden")
    bank = await world.caller("bank", bank="ICBC")
    assert_problem(await bank.post(f"/applications/{app['id']}/approve"), 403, "forbidden")
    other_bank = await world.caller("bank", bank="ABC")
    assert_problem(await other_bank.get(f"/applications/{app['id']}"), 404, "not_found")
    far = await world.caller("fund_manager", region="2302")
    assert_problem(await far.post(f"/applications/{app['id']}/approve"), 404, "not_found")
    assert_problem(await manager.post("/applications", application_body(person["id"])), 403, "forbidden")
    assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    auditor = await world.caller("auditor", region="2301")
    assert (await auditor.get(f"/applications/{app['id']}")).json()["status"] == "guarantee_approved"


async def test_leverage_refusal_changes_nothing(world: World, admin: Api, manager: Api) -> None:
    agreement = await lending_setup(admin, manager, deposit="10000")  # capacity 50,000.00
    window = await world.caller("window", region="2301")
    first = await submit(window, (await register_person(window, seq="01"))["id"], amount="45000")
    second = await submit(window, (await register_person(window, seq="03"))["id"], amount="10000")
    assert (await manager.post(f"/applications/{first['id']}/approve")).status_code == 200
    before = await capacity(manager, agreement["id"])
    body = assert_problem(
        await manager.post(f"/applications/{second['id']}/approve"), 409, "leverage_exceeded"
    )
    assert body["headroom"] == "5000.00"
    assert (await manager.get(f"/applications/{second['id']}")).json()["status"] == "submitted"
    assert await capacity(manager, agreement["id"]) == before
    bank = await world.caller("bank", bank="ICBC")
    assert len((await bank.get("/events")).json()["items"]) == 1


async def test_suspended_and_no_agreement(world: World, admin: Api, manager: Api) -> None:
    agreement = await lending_setup(admin, manager)
    await admin.post("/banks", {"code": "ABC", "name": "ABC"})
    window = await world.caller("window", region="2301")
    app = await submit(window, (await register_person(window, seq="01"))["id"])
    elsewhere = await submit(window, (await register_person(window, seq="03"))["id"], bank="ABC")
    assert_problem(await manager.post(f"/applications/{elsewhere['id']}/approve"), 409, "no_agreement")
    suspended = await manager.post(f"/agreements/{agreement['id']}/suspend", {"reason": "review"})
    assert suspended.status_code == 200, suspended.text
    assert_problem(await manager.post(f"/applications/{app['id']}/approve"), 409, "agreement_suspended")
    assert (await manager.get(f"/applications/{app['id']}")).json()["status"] == "submitted"


async def test_guarantor_limit(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    guarantor = await register_guarantor(window)
    backed = {"kind": "guarantor", "guarantor_ids": [guarantor["id"]]}
    apps = [
        await submit(window, (await register_person(window, seq=seq))["id"], guarantee=backed)
        for seq in ("01", "03", "11")
    ]
    for app in apps[:2]:
        assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    assert (await window.get(f"/guarantors/{guarantor['id']}")).json()["active_guarantees"] == 2
    body = assert_problem(
        await manager.post(f"/applications/{apps[2]['id']}/approve"), 409, "guarantor_limit_exceeded"
    )
    assert (body["guarantor_id"], body["active_guarantees"], body["guarantor_max_active"]) == (
        guarantor["id"],
        2,
        2,
    )
    # Rejecting one frees the guarantor.
    assert (
        await manager.post(f"/applications/{apps[0]['id']}/reject", {"reason": "documents"})
    ).status_code == 200
    assert (await window.get(f"/guarantors/{guarantor['id']}")).json()["active_guarantees"] == 1
    assert (await manager.post(f"/applications/{apps[2]['id']}/approve")).status_code == 200


async def test_reject_and_withdraw_release_the_reservation(world: World, admin: Api, manager: Api) -> None:
    agreement = await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="ICBC")
    first = await submit(window, (await register_person(window, seq="01"))["id"])
    second = await submit(window, (await register_person(window, seq="03"))["id"])
    untouched = await capacity(manager, agreement["id"])
    for app in (first, second):
        assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    assert (await capacity(manager, agreement["id"]))["reserved"] == "100000.00"

    assert_problem(await bank.post(f"/applications/{first['id']}/reject", {}), 422, "validation_error")
    rejected = await bank.post(f"/applications/{first['id']}/reject", {"reason": "borrower unreachable"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["history"][-1]["reason"] == "borrower unreachable"
    assert_problem(await window.post(f"/applications/{first['id']}/withdraw"), 409, "invalid_state")
    assert_problem(await bank.post(f"/applications/{second['id']}/withdraw"), 403, "forbidden")
    withdrawn = await window.post(f"/applications/{second['id']}/withdraw", {"reason": "found a job"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert await capacity(manager, agreement["id"]) == untouched

    types = [e["type"] for e in (await bank.get("/events")).json()["items"]]
    assert types == [
        "guarantee_approved",
        "guarantee_approved",
        "application_rejected",
        "application_withdrawn",
    ]
    region_events = (await window.get("/events", {"after": "2", "limit": 1})).json()
    assert [e["type"] for e in region_events["items"]] == ["application_rejected"]
    assert region_events["next_cursor"] == "3"
    other = await world.caller("bank", bank="ABC")
    assert (await other.get("/events")).json()["items"] == []
    # A submitted application can be withdrawn too, without a reservation.
    third = await submit(window, (await register_person(window, seq="11"))["id"])
    assert (await window.post(f"/applications/{third['id']}/withdraw")).json()["status"] == "withdrawn"


async def test_lapsed_is_derived(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    app = await submit(window, (await register_person(window))["id"])
    assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-12-18")  # the last day
    assert (await window.get(f"/applications/{app['id']}")).json()["status"] == "guarantee_approved"
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-12-19")
    assert (await window.get(f"/applications/{app['id']}")).json()["status"] == "lapsed"
    lapsed = (await window.get("/applications", {"status": "lapsed"})).json()["items"]
    assert [item["id"] for item in lapsed] == [app["id"]]
    assert (await window.get("/applications", {"status": "guarantee_approved"})).json()["items"] == []
    assert (await capacity(manager, agreement["id"]))["reserved"] == "0.00"
    assert_problem(
        await manager.post(f"/applications/{app['id']}/reject", {"reason": "late"}), 409, "invalid_state"
    )
    # The borrower may apply again once the guarantee has lapsed.
    again = await window.post("/applications", application_body(app["borrower_id"], applied_on="2026-12-19"))
    assert again.status_code == 201, again.text


async def test_lists_and_pagination(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    await make_fund(admin, code="QQH", region_code="230200", edition="cn-2016")
    window = await world.caller("window", region="2301")
    ids = [
        (await submit(window, (await register_person(window, seq=seq))["id"]))["id"]
        for seq in ("01", "03", "11")
    ]
    first = (await window.get("/applications", {"limit": 2})).json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    rest = (await window.get("/applications", {"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [item["id"] for item in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    assert (
        len((await window.get("/applications", {"fund_code": "HRB", "status": "submitted"})).json()["items"])
        == 3
    )
    assert (await window.get("/applications", {"bank_code": "ABC"})).json()["items"] == []
    assert_problem(await window.get("/applications", {"status": "pending"}), 422, "validation_error")
    far = await world.caller("window", region="2302")
    assert (await far.get("/applications")).json()["items"] == []
    assert_problem(await far.get(f"/applications/{ids[0]}"), 404, "not_found")
    bank = await world.caller("bank", bank="ICBC")
    assert len((await bank.get("/applications")).json()["items"]) == 3
    assert (await bank.get("/applications", {"bank_code": "ABC"})).json()["items"] == []


async def test_partnership_cap_and_partner_rules(world: World, admin: Api, manager: Api) -> None:
    """cn-2020: a partnership may borrow up to 110% of its members' individual caps (2 × 200,000)."""
    await lending_setup(admin, manager, edition="cn-2020", deposit="2000000")
    window = await world.caller("window", region="2301")
    applicant = await register_person(window, seq="11")
    partner = await register_person(window, seq="12", female=True)
    too_old = await register_person(window, birth="19600101", seq="13")

    over = await window.post(
        "/applications",
        application_body(applicant["id"], amount="440000.01", partner_borrower_ids=[partner["id"]]),
    )
    body = assert_problem(over, 422, "ineligible")
    failed = [c for c in body["checks"] if not c["passed"]]
    assert [c["rule"] for c in failed] == ["amount_cap"]
    assert "partnership cap for 2 members of 440000.00" in failed[0]["detail"]

    old = await window.post(
        "/applications",
        application_body(applicant["id"], amount="300000", partner_borrower_ids=[too_old["id"]]),
    )
    body = assert_problem(old, 422, "ineligible")
    assert [c["rule"] for c in body["checks"] if not c["passed"]] == ["partner_age"]

    for bad in ([applicant["id"]], [partner["id"], partner["id"]], ["bor_nobody"]):
        response = await window.post(
            "/applications", application_body(applicant["id"], amount="300000", partner_borrower_ids=bad)
        )
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"][0]["field"] == "partner_borrower_ids"
    assert (await window.get("/applications")).json()["items"] == []

    app = await submit(window, applicant["id"], amount="440000", partner_borrower_ids=[partner["id"]])
    assert app["partner_borrower_ids"] == [partner["id"]]
    assert [c["rule"] for c in app["eligibility"]["checks"] if c["rule"].startswith("partner_")] == [
        "partner_age",
        "partner_category",
        "partner_repeat_support",
        "partner_no_outstanding_loan",
        "partner_no_default",
        "partner_no_open_application",
    ]
    alone = await register_person(window, seq="14")
    assert_problem(
        await window.post("/applications", application_body(alone["id"], amount="200000.01")),
        422,
        "ineligible",
    )
    approved = await manager.post(f"/applications/{app['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["guarantee"]["amount"] == "440000.00"

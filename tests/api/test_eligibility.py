"""POST /eligibility-checks: the policy in force on applied_on, each rule explained, nothing stored."""

from __future__ import annotations

from typing import Any

from tests.support import (
    Api,
    World,
    application_body,
    assert_problem,
    make_fund,
    register_person,
)

CERT_2004 = {
    "kind": "reemployment",
    "number": "HLJ-2004-1",
    "issued_on": "2003-03-01",
    "inspected_year": 2004,
}


async def laid_off(window: Api, birth: str, *, female: bool, seq: str = "01") -> dict[str, Any]:
    return await register_person(
        window, birth=birth, female=female, seq=seq, categories=("laid_off",), certificates=[CERT_2004]
    )


def checks_by_rule(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["rule"]: check for check in body["checks"]}


async def test_worked_example_7_through_the_api(world: World, admin: Api) -> None:
    await make_fund(admin, code="HRB02", edition="cn-2002")
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    window = await world.caller("window", region="2301")
    woman = await laid_off(window, "19640501", female=True)
    man = await laid_off(window, "19550101", female=False, seq="03")
    assert woman["is_4050"] is True and man["is_4050"] is True  # both, as of today (2026)

    for person, expected in [(woman, True), (man, False)]:
        body = application_body(
            person["id"], fund="HRB02", amount="20000", term_months=24, applied_on="2004-07-02"
        )
        response = await window.post("/eligibility-checks", body)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["is_4050"] is expected, result
        assert result["policy_edition"] == "cn-2002"
        assert result["eligible"] is True, result
        assert checks_by_rule(result)["reemployment_certificate"]["passed"] is True
    assert checks_by_rule(result)["age"]["detail"] == "Age 49 on 2004-07-02 is within the maximum of 60."


async def test_policy_in_force_on_applied_on(world: World, admin: Api) -> None:
    await make_fund(admin, code="HRB02", edition="cn-2002")
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    manager = await world.caller("fund_manager", region="2301")
    adopted = await manager.post(
        "/funds/HRB02/policy", {"policy_edition": "cn-2008", "effective_from": "2008-08-01", "overrides": {}}
    )
    assert adopted.status_code == 201, adopted.text
    window = await world.caller("window", region="2301")
    graduate = await register_person(window, birth="19850101", categories=("graduate",), graduation_year=2007)

    early = (
        await window.post(
            "/eligibility-checks",
            application_body(
                graduate["id"], fund="HRB02", amount="30000", term_months=12, applied_on="2008-07-31"
            ),
        )
    ).json()
    assert early["policy_edition"] == "cn-2002" and early["eligible"] is False
    failed = {c["rule"]: c["detail"] for c in early["checks"] if not c["passed"]}
    assert set(failed) == {"category", "amount_cap"}
    assert failed["amount_cap"] == "Amount 30000.00 yuan is above the individual cap of 20000.00 yuan."

    later = (
        await window.post(
            "/eligibility-checks",
            application_body(
                graduate["id"], fund="HRB02", amount="30000", term_months=12, applied_on="2008-08-01"
            ),
        )
    ).json()
    assert later["policy_edition"] == "cn-2008"
    assert later["eligible"] is True, later


async def test_small_firm_by_edition(world: World, admin: Api) -> None:
    await make_fund(admin, code="OLD", edition="cn-2002")
    await make_fund(admin, code="NEW", edition="cn-2018")
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    window = await world.caller("window", region="2301")
    from tests.support import make_uscc

    firm = (
        await window.post(
            "/borrowers",
            {
                "kind": "enterprise",
                "uscc": make_uscc(),
                "name": "Firm",
                "staff_count": 20,
                "eligible_new_hires": 5,
            },
        )
    ).json()
    old = (
        await window.post(
            "/eligibility-checks", application_body(firm["id"], fund="OLD", amount="500000", term_months=24)
        )
    ).json()
    assert old["eligible"] is False
    assert checks_by_rule(old)["small_firm_admitted"]["passed"] is False
    new = (
        await window.post(
            "/eligibility-checks", application_body(firm["id"], fund="NEW", amount="3000000", term_months=24)
        )
    ).json()
    assert new["eligible"] is True, new  # 25% of 20 staff
    assert checks_by_rule(new)["new_hire_share"]["detail"].startswith(
        "5 eligible new hires among 20 staff is 25.00%"
    )


async def test_checks_store_nothing(world: World, admin: Api) -> None:
    await make_fund(admin, code="HRB", edition="cn-2016")
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    before = (await admin.get("/audit", {"limit": 500})).json()["items"]
    for amount in ["50000", "500000"]:
        response = await window.post("/eligibility-checks", application_body(person["id"], amount=amount))
        assert response.status_code == 200, response.text
    assert response.json()["eligible"] is False
    assert (await admin.get("/audit", {"limit": 500})).json()["items"] == before
    assert (await window.get("/applications")).json()["items"] == []


async def test_refusals(world: World, admin: Api) -> None:
    await make_fund(admin, code="HRB", edition="cn-2016")
    await make_fund(admin, code="BJ", region_code="110100", edition="cn-2016")
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    window = await world.caller("window", region="2301")
    person = await register_person(window)
    ok = application_body(person["id"])
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "applied_on": "2026-11-28"}), 422, "future_date"
    )
    assert_problem(await window.post("/eligibility-checks", {**ok, "amount": 50000}), 422, "validation_error")
    assert_problem(await window.post("/eligibility-checks", {**ok, "amount": "0"}), 422, "validation_error")
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "term_months": 0}), 422, "validation_error"
    )
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "guarantee": {"kind": "guarantor"}}),
        422,
        "validation_error",
    )
    assert_problem(
        await window.post(
            "/eligibility-checks", {**ok, "guarantee": {"kind": "credit", "guarantor_ids": ["g"]}}
        ),
        422,
        "validation_error",
    )
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "guarantee": {"kind": "pledge"}}),
        422,
        "validation_error",
    )
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "bank_code": "NOPE"}), 422, "validation_error"
    )
    assert_problem(await window.post("/eligibility-checks", {**ok, "extra": 1}), 400, "unknown_field")
    assert_problem(await window.post("/eligibility-checks", {**ok, "fund_code": "BJ"}), 404, "not_found")
    assert_problem(await window.post("/eligibility-checks", {**ok, "fund_code": "NONE"}), 404, "not_found")
    assert_problem(
        await window.post("/eligibility-checks", {**ok, "borrower_id": "bor_none"}), 404, "not_found"
    )
    far = await world.caller("window", region="2302")
    assert_problem(await far.post("/eligibility-checks", ok), 404, "not_found")
    bank = await world.caller("bank", bank="ICBC")
    assert_problem(await bank.post("/eligibility-checks", ok), 403, "forbidden")
    # An unknown guarantor is a failed check, not an error.
    result = (
        await window.post(
            "/eligibility-checks", {**ok, "guarantee": {"kind": "guarantor", "guarantor_ids": ["gtr_x"]}}
        )
    ).json()
    assert result["eligible"] is False
    assert checks_by_rule(result)["guarantors"]["detail"] == "Guarantor gtr_x is not registered."

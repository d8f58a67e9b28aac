"""Eligibility facts through the API (issue 9): partners' own records, other loans (cn-2018 on), proof of
claimed categories, the SYB business plan, guarantor employers from the policy, graduates' window, and
one input validation shared by /eligibility-checks and /applications."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import uow
from loanfund.applications import service as application_service
from loanfund.borrowers import queries as borrower_queries
from loanfund.eligibility import service as eligibility
from loanfund.errors import Ineligible
from tests.support import (
    SETUP,
    TODAY,
    Api,
    World,
    application_body,
    assert_problem,
    lending_setup,
    make_fund,
    register_guarantor,
    register_person,
    resident_id,
)

CERT_2026 = {"kind": "reemployment", "number": "HLJ-26-1", "issued_on": "2020-03-01", "inspected_year": 2026}
CERT_2025 = {**CERT_2026, "inspected_year": 2025}


def checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["rule"]: check for check in body["checks"]}


def failed(body: dict[str, Any]) -> list[str]:
    return [check["rule"] for check in body["checks"] if not check["passed"]]


async def check(window: Api, borrower_id: str, **extra: Any) -> dict[str, Any]:
    response = await window.post("/eligibility-checks", application_body(borrower_id, **extra))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def setup(world: World, admin: Api, edition: str, **fund: Any) -> Api:
    await make_fund(admin, edition=edition, **fund)
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    return await world.caller("window", region="2301")


# ---- 1. partners are checked like the applicant ---------------------------------------------------------


async def test_partners_own_record_counts_and_a_partnership_counts_for_its_members(
    world: World, admin: Api, manager: Api
) -> None:
    await lending_setup(admin, manager, edition="cn-2018", deposit="2000000")
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="ICBC")
    first, second, third = [await register_person(window, seq=seq) for seq in ("21", "22", "23")]
    body = application_body(first["id"], amount="300000", partner_borrower_ids=[second["id"]])
    submitted = await window.post("/applications", body)
    assert submitted.status_code == 201, submitted.text
    app = submitted.json()

    # While the partnership's application is open, the partner has an application in progress too.
    alone = await check(window, second["id"])
    assert failed(alone) == ["no_open_application"]
    as_partner = await check(window, third["id"], amount="300000", partner_borrower_ids=[second["id"]])
    assert failed(as_partner) == ["partner_no_open_application"]
    assert checks(as_partner)["partner_no_open_application"]["detail"].startswith(
        "Member 2: The partner has 1 other application(s) in progress"
    )

    assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    loan = await bank.post(
        "/loans",
        {
            "application_id": app["id"],
            "loan_number": "LN-P-1",
            "principal": "300000",
            "annual_rate_pct": "6",
            "disbursed_on": "2026-11-27",
            "maturity_on": "2028-11-27",
        },
    )
    assert loan.status_code == 201, loan.text

    # The partnership's loan is each member's loan: refused alone, and refused as someone's partner.
    alone = await check(window, second["id"])
    assert failed(alone) == ["no_outstanding_loan"]
    assert checks(alone)["repeat_support"]["detail"] == (
        "This would be support number 2; the policy allows at most 3."
    )
    as_partner = await check(window, third["id"], amount="300000", partner_borrower_ids=[second["id"]])
    assert failed(as_partner) == ["partner_no_outstanding_loan"]
    assert (
        "Member 2: The partner has 1 programme loan(s) still outstanding"
        in (checks(as_partner)["partner_no_outstanding_loan"]["detail"])
    )
    refused = await window.post(
        "/applications", application_body(third["id"], amount="300000", partner_borrower_ids=[first["id"]])
    )
    assert failed(assert_problem(refused, 422, "ineligible")) == ["partner_no_outstanding_loan"]


# ---- 2. other loans of borrower and spouse (cn-2018 on) ------------------------------------------------


@pytest.mark.parametrize("edition", ["cn-2018", "cn-2020"])
async def test_other_loans_rule_from_2018(world: World, admin: Api, edition: str) -> None:
    window = await setup(world, admin, edition)
    person = await register_person(window)

    none = await check(window, person["id"])
    assert none["eligible"] is True
    assert checks(none)["other_loans"]["detail"] == (
        f"Other loans of the borrower and spouse are permitted under {edition} (only student,"
        " poverty_relief, housing, car loans and consumer loans up to 50000.00 yuan): none declared."
    )
    permitted = [
        {"holder": "borrower", "kind": "housing", "outstanding": "380000"},
        {"holder": "spouse", "kind": "consumer", "outstanding": "50000"},
        {"holder": "spouse", "kind": "student", "outstanding": "8000.50"},
    ]
    result = await check(window, person["id"], other_loans=permitted)
    assert result["eligible"] is True, result
    assert "spouse consumer loan 50000.00 yuan" in checks(result)["other_loans"]["detail"]

    for loan, text in [
        (
            {"holder": "spouse", "kind": "consumer", "outstanding": "50000.01"},
            "spouse consumer loan 50000.01",
        ),
        (
            {"holder": "borrower", "kind": "business", "outstanding": "10000"},
            "borrower business loan 10000.00",
        ),
        ({"holder": "spouse", "kind": "other", "outstanding": "1"}, "spouse other loan 1.00"),
    ]:
        result = await check(window, person["id"], other_loans=[*permitted, loan])
        assert failed(result) == ["other_loans"], result
        detail = checks(result)["other_loans"]["detail"]
        assert detail.startswith(f"Under {edition} the borrower and spouse may hold only student,")
        assert detail.endswith(f"not permitted: {text} yuan outstanding.")
        refused = await window.post(
            "/applications", application_body(person["id"], other_loans=[*permitted, loan])
        )
        assert failed(assert_problem(refused, 422, "ineligible")) == ["other_loans"]

    # Stored with the application: what was declared, in the explanation.
    submitted = await window.post("/applications", application_body(person["id"], other_loans=permitted))
    assert submitted.status_code == 201, submitted.text
    stored = checks(submitted.json()["eligibility"])["other_loans"]
    assert stored["passed"] and "borrower housing loan 380000.00 yuan" in stored["detail"]
    shown = [
        {"holder": "borrower", "kind": "housing", "currency": "CNY", "outstanding": "380000.00"},
        {"holder": "spouse", "kind": "consumer", "currency": "CNY", "outstanding": "50000.00"},
        {"holder": "spouse", "kind": "student", "currency": "CNY", "outstanding": "8000.50"},
    ]
    assert submitted.json()["other_loans"] == shown
    app_id = submitted.json()["id"]
    assert (await window.get(f"/applications/{app_id}")).json()["other_loans"] == shown
    listed = (await window.get("/applications")).json()["items"]
    assert [item["other_loans"] for item in listed if item["id"] == app_id] == [shown]
    # A command's response comes from the locked application: the same facts.
    withdrawn = await window.post(f"/applications/{app_id}/withdraw", {"reason": "changed plans"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["other_loans"] == shown


async def test_other_loans_not_restricted_before_2018(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2016")
    person = await register_person(window)
    assert "other_loans" not in checks(await check(window, person["id"]))
    business = [{"holder": "borrower", "kind": "business", "outstanding": "90000"}]
    result = await check(window, person["id"], other_loans=business)
    assert result["eligible"] is True
    assert checks(result)["other_loans"]["detail"] == (
        "Other loans are not restricted under cn-2016 (borrower business loan 90000.00 yuan)."
    )


async def test_other_loans_rule_is_policy_data(world: World, admin: Api) -> None:
    rule = {
        "kind": "other_loans",
        "excepted": ["housing"],
        "consumer_loan_max": "0.01",
        "includes_spouse": False,
    }
    window = await setup(world, admin, "cn-2018", policy_overrides={"other_loans_rule": rule})
    person = await register_person(window)
    spouse_car = [{"holder": "spouse", "kind": "car", "outstanding": "60000"}]
    assert (await check(window, person["id"], other_loans=spouse_car))["eligible"] is True
    own_car = [{"holder": "borrower", "kind": "car", "outstanding": "60000"}]
    result = await check(window, person["id"], other_loans=own_car)
    assert failed(result) == ["other_loans"]
    assert checks(result)["other_loans"]["detail"].startswith(
        "Under cn-2018 the borrower may hold only housing loans"
    )


BAD_OTHER_LOANS = [
    ({"holder": "cousin", "kind": "car", "outstanding": "1"}, "other_loans"),
    ({"holder": "spouse", "kind": "mortgage", "outstanding": "1"}, "other_loans"),
    ({"holder": "spouse", "kind": "car", "outstanding": "0"}, "other_loans[0].outstanding"),
    ({"holder": "spouse", "kind": "car", "outstanding": 100}, "other_loans"),
]


async def test_other_loans_bad_input(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2018")
    person = await register_person(window)
    for loan, field in BAD_OTHER_LOANS:
        for path in ("/eligibility-checks", "/applications"):
            response = await window.post(path, application_body(person["id"], other_loans=[loan]))
            problem = assert_problem(response, 422, "validation_error")
            assert problem["errors"][0]["field"].startswith(field), (loan, problem)


# ---- 3. categories claimed without their proof --------------------------------------------------------


async def test_laid_off_without_certificate_does_not_count_cn2002(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2002")
    stale = await register_person(window, categories=("laid_off",), certificates=[CERT_2025])
    result = await check(window, stale["id"], amount="20000")
    assert failed(result) == ["category", "reemployment_certificate"]
    assert checks(result)["category"]["detail"] == (
        "Category laid_off is admitted under cn-2002, but no claim is proven. laid_off does not count: it"
        " needs a re-employment certificate inspected for 2026 (certificates on file are inspected for 2025)."
    )
    proven = await register_person(window, seq="02", categories=("laid_off",), certificates=[CERT_2026])
    result = await check(window, proven["id"], amount="20000")
    assert result["eligible"] is True
    assert checks(result)["category"]["detail"].startswith("Admitted as laid_off under cn-2002")


LATER_EDITIONS = ("cn-2008", "cn-2016", "cn-2018", "cn-2020")


async def funds_of_every_later_edition(world: World, admin: Api) -> Api:
    """One fund per edition from cn-2008 (code F2008, F2016, ...) and a window of their region."""
    for edition in LATER_EDITIONS:
        await make_fund(admin, code=f"F{edition[-4:]}", edition=edition)
    await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    return await world.caller("window", region="2301")


async def test_another_category_carries_the_decision(world: World, admin: Api) -> None:
    window = await funds_of_every_later_edition(world, admin)
    both = await register_person(window, categories=("laid_off", "registered_unemployed"))
    for edition in LATER_EDITIONS:
        await _carried_by_the_other_category(window, both, edition)


async def _carried_by_the_other_category(window: Api, both: dict[str, Any], edition: str) -> None:
    result = await check(window, both["id"], amount="20000", fund=f"F{edition[-4:]}")
    assert result["eligible"] is True, result
    assert checks(result)["category"]["detail"] == (
        f"Admitted as registered_unemployed under {edition}; category laid_off, registered_unemployed is"
        " admitted. laid_off does not count: it needs a re-employment certificate inspected for 2026."
    )
    assert checks(result)["reemployment_certificate"]["detail"] == (
        "The laid_off claim needs a re-employment certificate inspected for 2026, so it does not count; the"
        " borrower is admitted as registered_unemployed instead."
    )


# ---- 4. the credit-guarantee waiver by SYB training needs an approved plan ------------------------------


@pytest.mark.parametrize(
    ("edition", "amount"), [("cn-2008", "50000"), ("cn-2016", "100000"), ("cn-2020", "150000")]
)
async def test_syb_waiver_needs_an_approved_business_plan(
    world: World, admin: Api, edition: str, amount: str
) -> None:
    window = await setup(world, admin, edition)
    credit = {"kind": "credit"}
    trained = await register_person(window, syb_trained=True)
    result = await check(window, trained["id"], amount=amount, guarantee=credit)
    assert failed(result) == ["guarantee_kind"]
    detail = checks(result)["guarantee_kind"]["detail"]
    assert "SYB training with an approved business plan" in detail
    assert "SYB trained without an approved business plan" in detail

    planned = await register_person(window, seq="02", syb_trained=True, syb_plan_approved_on="2026-10-15")
    result = await check(window, planned["id"], amount=amount, guarantee=credit)
    assert result["eligible"] is True, result
    assert "business plan approved on 2026-10-15" in checks(result)["guarantee_kind"]["detail"]
    # Judged on the application date: a plan approved later did not exist yet.
    early = await check(window, planned["id"], amount=amount, guarantee=credit, applied_on="2026-10-14")
    assert failed(early) == ["guarantee_kind"]
    assert "business plan approved only on 2026-10-15" in checks(early)["guarantee_kind"]["detail"]
    # A plan without the training is no waiver either.
    untrained = await register_person(window, seq="03", syb_plan_approved_on="2026-10-15")
    assert failed(await check(window, untrained["id"], amount=amount, guarantee=credit)) == ["guarantee_kind"]


async def test_syb_plan_date_is_validated(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2008")
    future = await window.post(
        "/borrowers",
        {
            "kind": "individual",
            "id_number": resident_id("19800101", female=False),
            "name": "X",
            "categories": ["veteran"],
            "syb_trained": True,
            "syb_plan_approved_on": "2026-11-28",
        },
    )
    assert assert_problem(future, 422, "future_date")["field"] == "syb_plan_approved_on"


# ---- 5. guarantor employer kinds come from the policy ---------------------------------------------------


async def test_guarantor_employer_kinds_from_policy(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2016")
    await make_fund(
        admin,
        code="SOE",
        edition="cn-2016",
        policy_overrides={"guarantor_employer_kinds": ["civil_service", "state_enterprise"]},
    )
    person = await register_person(window)
    factory = await register_guarantor(window, seq="05", employer_kind="state_enterprise")
    school = await register_guarantor(window, seq="06", employer_kind="public_institution", birth="19710101")
    by_factory = {"kind": "guarantor", "guarantor_ids": [factory["id"]]}
    by_school = {"kind": "guarantor", "guarantor_ids": [school["id"]]}

    default = await check(window, person["id"], guarantee=by_factory)
    assert failed(default) == ["guarantors"]
    assert checks(default)["guarantors"]["detail"] == (
        f"Guarantor {factory['id']} works in state_enterprise; under cn-2016 guarantors must work in"
        " civil_service or public_institution."
    )
    assert (await check(window, person["id"], guarantee=by_school))["eligible"] is True

    assert (await check(window, person["id"], fund="SOE", guarantee=by_factory))["eligible"] is True
    overridden = await check(window, person["id"], fund="SOE", guarantee=by_school)
    assert failed(overridden) == ["guarantors"]
    assert "must work in civil_service or state_enterprise" in checks(overridden)["guarantors"]["detail"]

    bad = await admin.post(
        "/funds",
        {
            "code": "BAD",
            "name": "Bad",
            "region_code": "230100",
            "policy_edition": "cn-2016",
            "currency": "CNY",
            "policy_overrides": {"guarantor_employer_kinds": ["army"]},
        },
    )
    assert_problem(bad, 422, "validation_error")


# ---- 6. one validation for both endpoints ---------------------------------------------------------------


async def test_same_validation_for_checks_and_applications(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2016")
    person = await register_person(window)
    for change, field in [
        ({"jobs_created": -1}, "jobs_created"),
        ({"purpose": "   "}, "purpose"),
        ({"amount": "0"}, "amount"),
        ({"term_months": 0}, "term_months"),
    ]:
        for path in ("/eligibility-checks", "/applications"):
            response = await window.post(path, {**application_body(person["id"]), **change})
            problem = assert_problem(response, 422, "validation_error")
            assert problem["errors"][0]["field"] == field, (path, problem)


# ---- 7. graduates: graduation year and the edition's window ---------------------------------------------


async def test_graduates_within_the_window(world: World, admin: Api) -> None:
    window = await funds_of_every_later_edition(world, admin)
    recent = await register_person(window, birth="20000101", categories=("graduate",), graduation_year=2024)
    old = await register_person(
        window, birth="20000101", seq="02", categories=("graduate",), graduation_year=2023
    )
    unknown = await register_person(window, birth="20000101", seq="03", categories=("graduate",))
    for edition in LATER_EDITIONS:
        await _graduates_under(window, edition, recent, old, unknown)


async def _graduates_under(
    window: Api, edition: str, recent: dict[str, Any], old: dict[str, Any], unknown: dict[str, Any]
) -> None:
    fund = f"F{edition[-4:]}"
    result = await check(window, recent["id"], amount="20000", fund=fund)
    assert result["eligible"] is True, result
    assert checks(result)["graduation_year"]["detail"] == (
        f"Graduated in 2024, within the 2 years after graduation that {edition} allows on 2026-11-27."
    )
    assert checks(result)["category"]["detail"].startswith(f"Admitted as graduate under {edition}")

    result = await check(window, old["id"], amount="20000", fund=fund)
    assert failed(result) == ["category", "graduation_year"]
    assert checks(result)["graduation_year"]["detail"] == (
        "A graduate borrower graduated in 2023, 3 years before 2026; graduates count for 2 years."
    )
    result = await check(window, unknown["id"], amount="20000", fund=fund)
    assert failed(result) == ["category", "graduation_year"]
    assert "needs a graduation year" in checks(result)["graduation_year"]["detail"]
    # Judged on the application date: the same graduate was within the window in 2025.
    assert (await check(window, old["id"], amount="20000", fund=fund, applied_on="2025-06-01"))["eligible"]


async def test_graduate_window_is_policy_data(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2016", policy_overrides={"graduate_window_years": 5})
    person = await register_person(window, birth="19990101", categories=("graduate",), graduation_year=2021)
    assert (await check(window, person["id"], amount="20000"))["eligible"] is True
    await make_fund(admin, code="ANY", edition="cn-2016", policy_overrides={"graduate_window_years": None})
    unknown = await register_person(window, birth="19990101", seq="02", categories=("graduate",))
    result = await check(window, unknown["id"], fund="ANY", amount="20000")
    assert result["eligible"] is True and "graduation_year" not in checks(result)


async def test_graduation_year_is_validated_and_shown(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2016")
    for year in (1989, 2027):
        response = await window.post(
            "/borrowers",
            {
                "kind": "individual",
                "id_number": resident_id("19900101", female=False),
                "name": "X",
                "categories": ["graduate"],
                "graduation_year": year,
            },
        )
        assert assert_problem(response, 422, "validation_error")["errors"][0]["field"] == "graduation_year"
    person = await register_person(window, categories=("graduate",), graduation_year=2002)
    shown = (await window.get(f"/borrowers/{person['id']}")).json()
    assert (shown["graduation_year"], shown["syb_plan_approved_on"]) == (2002, None)


@pytest.mark.postgres_only
async def test_a_partner_is_locked_with_the_applicant(
    world: World, admin: Api, manager: Api, engine: AsyncEngine
) -> None:
    """Two partnerships naming one person: the second waits for the first and then sees it open."""
    await lending_setup(admin, manager, edition="cn-2018", deposit="2000000")
    window = await world.caller("window", region="2301")
    partner, first, second = [await register_person(window, seq=seq) for seq in ("40", "41", "42")]

    async def submit(conn: AsyncConnection, applicant: dict[str, Any]) -> str:
        request = eligibility.ApplicationRequest(
            fund_code="HRB",
            bank_code="ICBC",
            borrower_id=applicant["id"],
            amount_fen=300_000_00,
            term_months=24,
            applied_on=date.fromisoformat(TODAY),
            guarantee=eligibility.GuaranteeRequest("collateral", collateral_description="a van"),
            partner_borrower_ids=(partner["id"],),
        )
        borrower = await borrower_queries.get_borrower(conn, applicant["id"])
        tx = uow.begin(conn, SETUP, date.fromisoformat(TODAY))
        application_id, _ = await application_service.submit(
            tx,
            request,
            borrower=borrower,
            purpose="a shop",
            micro_profit=False,
            jobs_created=1,
            region_prefix=None,
        )
        await tx.flush()
        return application_id

    async def submit_alone(applicant: dict[str, Any]) -> str:
        async with engine.begin() as conn:
            return await submit(conn, applicant)

    async with engine.connect() as conn:
        transaction = await conn.begin()
        await submit(conn, first)
        racing = asyncio.create_task(submit_alone(second))
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting for the partner's row
        await transaction.commit()
    with pytest.raises(Ineligible) as refused:
        await racing
    assert [c["rule"] for c in refused.value.facts["checks"] if not c["passed"]] == [
        "partner_no_open_application"
    ]


async def test_facts_recorded_after_registration_count_from_their_date(world: World, admin: Api) -> None:
    window = await setup(world, admin, "cn-2008")
    person = await register_person(window, categories=("graduate",))
    credit = {"kind": "credit"}
    assert failed(await check(window, person["id"], guarantee=credit)) == [
        "category",
        "graduation_year",
        "guarantee_kind",
    ]
    response = await window.post(
        f"/borrowers/{person['id']}/eligibility-facts",
        {"syb_trained": True, "syb_plan_approved_on": "2026-11-02", "graduation_year": 2025},
    )
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["syb_trained"], shown["syb_plan_approved_on"], shown["graduation_year"]) == (
        True,
        "2026-11-02",
        2025,
    )
    assert (await check(window, person["id"], guarantee=credit))["eligible"] is True
    before = await check(window, person["id"], guarantee=credit, applied_on="2026-11-01")
    assert failed(before) == ["guarantee_kind"]
    audit = (await admin.get("/audit", {"entity": f"borrower:{person['id']}"})).json()["items"]
    recorded = [item for item in audit if item["action"] == "borrower.facts_recorded"]
    assert recorded and recorded[0]["changes"]["syb_plan_approved_on"] == {"from": None, "to": "2026-11-02"}

    for body, status, code in [
        ({}, 422, "validation_error"),
        ({"syb_plan_approved_on": "2026-11-28"}, 422, "future_date"),
        ({"graduation_year": 1970}, 422, "validation_error"),
        ({"graduation_year": 2020, "x": 1}, 400, "unknown_field"),
    ]:
        assert_problem(await window.post(f"/borrowers/{person['id']}/eligibility-facts", body), status, code)
    far = await world.caller("window", region="2302")
    assert_problem(
        await far.post(f"/borrowers/{person['id']}/eligibility-facts", {"syb_trained": True}),
        404,
        "not_found",
    )
    bank = await world.caller("bank", bank="ICBC")
    assert_problem(
        await bank.post(f"/borrowers/{person['id']}/eligibility-facts", {"syb_trained": True}),
        404,
        "not_found",
    )

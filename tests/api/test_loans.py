"""Loans through the API: disbursement, repayments, extension, overdue, refusals, retries, audit story."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import (
    TODAY,
    Api,
    World,
    application_body,
    assert_problem,
    capacity,
    lending_setup,
    make_agreement,
    make_allocation,
    make_deposit,
    make_fund,
    register_guarantor,
    register_person,
    resident_id,
)


async def approved(
    world: World, manager: Api, *, seq: str = "01", window: Api | None = None, **extra: Any
) -> dict[str, Any]:
    """A registered person with an approved application (50,000.00 for 24 months unless told)."""
    window = window or await world.caller("window", region="2301")
    person = await register_person(window, seq=seq, **extra.pop("person", {}))
    response = await window.post("/applications", application_body(person["id"], **extra))
    assert response.status_code == 201, response.text
    app = response.json()
    response = await manager.post(f"/applications/{app['id']}/approve")
    assert response.status_code == 200, response.text
    return dict(response.json())


GRADUATE_2008 = {"categories": ("graduate",), "graduation_year": 2008}


def loan_body(app: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "application_id": app["id"],
        "loan_number": f"LN-{app['id'][-6:]}",
        "principal": "40000",
        "annual_rate_pct": "6",
        "disbursed_on": TODAY,
        "maturity_on": "2028-11-27",
        **extra,
    }


async def disburse(bank: Api, app: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await bank.post("/loans", loan_body(app, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def balances(tb: dict[str, Any]) -> dict[str, str]:
    return {line["account"]: line["balance"] for line in tb["accounts"] if line["balance"] != "0.00"}


async def test_full_scenario_leaves_capacity_and_ledger_as_before(
    world: World, admin: Api, manager: Api
) -> None:
    agreement = await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="ICBC")
    cap_before = await capacity(manager, agreement["id"])
    tb_before = (await manager.get("/funds/HRB/trial-balance")).json()
    position_before = (await manager.get("/funds/HRB")).json()["position"]
    audit_before = len((await admin.get("/audit", {"limit": 500})).json()["items"])

    person = await register_person(window, birth="19840501", female=True)
    body = application_body(person["id"], amount="50000", term_months=24)
    check = (await window.post("/eligibility-checks", body)).json()
    assert check["eligible"] is True and check["is_4050"] is True
    app = (await window.post("/applications", body)).json()
    assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
    assert (await capacity(manager, agreement["id"]))["reserved"] == "50000.00"

    loan = await disburse(bank, app, principal="40000", annual_rate_pct="5.5")
    assert loan["status"] == "active" and loan["outstanding_principal"] == "40000.00"
    assert (loan["reference_rate_kind"], loan["reference_rate_pct"], loan["reference_rate_date"]) == (
        "LPR1Y",
        "3",
        "2025-05-20",
    )
    assert loan["reference_rate_stale"] is True  # no LPR fixing added for 18 months
    assert (loan["rate_ceiling_pct"], loan["policy_edition"], loan["term_months"]) == ("6", "cn-2016", 24)
    assert loan["days_past_due"] == 0
    cap = await capacity(manager, agreement["id"])
    assert (cap["reserved"], cap["outstanding"]) == ("0.00", "40000.00")  # the unused 10,000.00 released
    assert (await manager.get(f"/applications/{app['id']}")).json()["status"] == "disbursed"

    part = await bank.post(
        f"/loans/{loan['id']}/repayments", {"principal": "15000", "interest": "180.25", "paid_on": TODAY}
    )
    assert part.status_code == 201, part.text
    assert (part.json()["outstanding_principal"], part.json()["repayment"]["principal"]) == (
        "25000.00",
        "15000.00",
    )
    assert (await capacity(manager, agreement["id"]))["outstanding"] == "25000.00"
    full = await bank.post(
        f"/loans/{loan['id']}/repayments", {"principal": "25000.00", "interest": "20", "paid_on": TODAY}
    )
    assert full.status_code == 201, full.text
    done = full.json()
    assert (done["status"], done["outstanding_principal"], done["repaid_on"], done["interest_paid"]) == (
        "repaid",
        "0.00",
        TODAY,
        "200.25",
    )

    assert await capacity(manager, agreement["id"]) == cap_before
    tb_after = (await manager.get("/funds/HRB/trial-balance")).json()
    assert balances(tb_after) == balances(tb_before)
    assert (tb_after["total_debit"], tb_after["total_credit"]) == (
        tb_before["total_debit"],
        tb_before["total_credit"],
    )
    assert (await manager.get("/funds/HRB")).json()["position"] == position_before

    story = [r["action"] for r in (await admin.get("/audit", {"limit": 500})).json()["items"][audit_before:]]
    assert story == [
        "borrower.registered",
        "application.submitted",
        "borrower.shared_with_region",
        "guarantee.reserved",
        "application.approved",
        "guarantee.converted",
        "loan.disbursed",
        "guarantee.outstanding_reduced",
        "loan.repayment",
        "guarantee.outstanding_reduced",
        "loan.repaid",
    ]
    loan_story = (await admin.get("/audit", {"entity": f"loan:{loan['id']}"})).json()["items"]
    assert [r["action"] for r in loan_story] == ["loan.disbursed", "loan.repayment", "loan.repaid"]
    assert loan_story[0]["changes"]["principal_fen"] == 4_000_000
    assert all(r["region_code"] == "230100" for r in loan_story)
    app_story = (await admin.get("/audit", {"entity": f"application:{app['id']}"})).json()["items"]
    assert [r["action"] for r in app_story] == ["application.submitted", "application.approved"]

    # The bank holding the loan sees the borrower's full number; nobody else does.
    seen = (await bank.get(f"/borrowers/{person['id']}")).json()
    assert seen["id_number"] == resident_id("19840501", female=True)
    assert (await window.get(f"/borrowers/{person['id']}")).json()["id_number"] is None
    other = await world.caller("bank", bank="ABC")
    assert_problem(await other.get(f"/borrowers/{person['id']}"), 404, "not_found")
    assert_problem(await other.get(f"/loans/{loan['id']}"), 404, "not_found")
    assert_problem(
        await bank.post(
            f"/loans/{loan['id']}/repayments", {"principal": "1", "interest": "0", "paid_on": TODAY}
        ),
        409,
        "invalid_state",
    )


async def test_disbursement_refusals(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="ICBC")
    app = await approved(world, manager, window=window)
    assert_problem(
        await bank.post("/loans", loan_body(app, principal="50000.01")), 422, "principal_exceeds_guarantee"
    )
    # cn-2016: at most 36 whole calendar months; one day more starts a 37th.
    body = assert_problem(
        await bank.post("/loans", loan_body(app, maturity_on="2029-11-28")), 422, "term_too_long"
    )
    assert (body["term_months"], body["max_term_months"]) == (37, 36)
    body = assert_problem(
        await bank.post("/loans", loan_body(app, annual_rate_pct="6.01")), 422, "rate_above_ceiling"
    )
    assert (body["rate_ceiling_pct"], body["reference_rate_pct"], body["reference_rate_kind"]) == (
        "6",
        "3",
        "LPR1Y",
    )
    assert_problem(await bank.post("/loans", loan_body(app, disbursed_on="2026-11-28")), 422, "future_date")
    assert_problem(await bank.post("/loans", loan_body(app, maturity_on=TODAY)), 422, "validation_error")
    early = assert_problem(
        await bank.post("/loans", loan_body(app, disbursed_on="2026-11-26")), 422, "validation_error"
    )
    assert early["errors"][0]["field"] == "disbursed_on"  # before the guarantee was approved
    assert_problem(await bank.post("/loans", loan_body(app, contracted_on="2026-11-28")), 422, "future_date")
    assert_problem(await bank.post("/loans", loan_body(app, principal=40000)), 422, "validation_error")
    assert_problem(await bank.post("/loans", loan_body(app, annual_rate_pct="-1")), 422, "validation_error")
    assert_problem(await bank.post("/loans", {**loan_body(app), "fee": "1"}), 400, "unknown_field")
    assert_problem(await bank.post("/loans", loan_body(app), key=""), 400, "idempotency_key_required")
    other = await world.caller("bank", bank="ABC")
    assert_problem(await other.post("/loans", loan_body(app)), 404, "not_found")
    assert_problem(await manager.post("/loans", loan_body(app)), 403, "forbidden")

    submitted = (
        await window.post("/applications", application_body((await register_person(window, seq="03"))["id"]))
    ).json()
    assert_problem(await bank.post("/loans", loan_body(submitted)), 409, "not_approved")

    loan = await disburse(
        bank, app, maturity_on="2029-11-27", annual_rate_pct="6.00"
    )  # 36 months, on the ceiling
    assert (loan["term_months"], loan["annual_rate_pct"]) == (36, "6")
    again = await bank.post("/loans", loan_body(app, loan_number="LN-other"))
    assert_problem(again, 409, "invalid_state")
    second = await approved(world, manager, seq="11", window=window)
    leverage = await manager.get("/funds/HRB/leverage")
    assert leverage.status_code == 200 and leverage.json()["items"], leverage.text
    leverage_before = leverage.json()
    body = assert_problem(
        await bank.post("/loans", loan_body(second, loan_number=loan["loan_number"])), 409, "duplicate"
    )
    assert body["id"] == loan["id"]
    # The number is checked last, by the insert: the conversion made before it rolled back.
    assert (await manager.get(f"/applications/{second['id']}")).json()["status"] == "guarantee_approved"
    assert (await manager.get("/funds/HRB/leverage")).json() == leverage_before


async def test_lapsed_guarantee_cannot_be_disbursed(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    app = await approved(world, manager)
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-12-19")
    # 422 business rules win over the 409 state.
    assert_problem(
        await bank.post("/loans", loan_body(app, principal="60000")), 422, "principal_exceeds_guarantee"
    )
    body = assert_problem(await bank.post("/loans", loan_body(app)), 409, "guarantee_lapsed")
    assert body["expires_on"] == "2026-12-18"
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-12-18")
    loan = await disburse(bank, app, disbursed_on="2026-12-18", maturity_on="2027-12-18")
    assert loan["status"] == "active"
    assert (await capacity(manager, agreement["id"]))["outstanding"] == "40000.00"


async def dated_setup(admin: Api, manager: Api, *, edition: str, start: str) -> None:
    await make_fund(admin, code="OLD", edition=edition)
    await make_allocation(manager, fund="OLD", amount="1000000", received_on=start, due=start)
    made = await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
    assert made.status_code in (201, 409)
    agreement = await make_agreement(manager, fund="OLD", effective_from=start)
    await make_deposit(manager, agreement["id"], "100000", on=start)


async def test_benchmark_ceiling_at_the_contract_date(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2009-03-10")
    await dated_setup(admin, manager, edition="cn-2008", start="2009-01-05")
    bank = await world.caller("bank", bank="ICBC")
    first = await approved(world, manager, fund="OLD", applied_on="2009-03-01", person=GRADUATE_2008)
    # 24 months in 2009: the 1-3 year benchmark, 5.40% from 2008-12-23; cn-2008 allows + 3.00 pp.
    body = {"disbursed_on": "2009-03-10", "maturity_on": "2011-03-10"}
    refused = assert_problem(
        await bank.post("/loans", loan_body(first, annual_rate_pct="8.41", **body)), 422, "rate_above_ceiling"
    )
    assert (refused["rate_ceiling_pct"], refused["reference_rate_date"]) == ("8.4", "2008-12-23")
    loan = await disburse(bank, first, annual_rate_pct="8.4", **body)
    assert (loan["reference_rate_kind"], loan["reference_rate_pct"], loan["reference_rate_stale"]) == (
        "PBOC1_3Y",
        "5.4",
        False,
    )
    # A contract signed before the last cut is priced on the fixing in force that day.
    second = await approved(
        world, manager, seq="03", fund="OLD", applied_on="2009-03-01", person=GRADUATE_2008
    )
    early = await disburse(bank, second, contracted_on="2008-12-22", annual_rate_pct="8.67", **body)
    assert (early["contracted_on"], early["reference_rate_pct"], early["rate_ceiling_pct"]) == (
        "2008-12-22",
        "5.67",
        "8.67",
    )


async def test_missing_reference_rate_and_cn2002_ceiling(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2002-02-01")
    await dated_setup(admin, manager, edition="cn-2002", start="2002-01-05")
    bank = await world.caller("bank", bank="ICBC")
    cert = {"kind": "reemployment", "number": "C-1", "issued_on": "2001-06-01", "inspected_year": 2002}
    person = {"categories": ("laid_off",), "certificates": [cert]}
    app = await approved(
        world, manager, fund="OLD", amount="20000", term_months=12, applied_on="2002-01-20", person=person
    )
    body = {
        "disbursed_on": "2002-02-01",
        "maturity_on": "2003-02-01",
        "annual_rate_pct": "5.31",
        "principal": "20000",
    }
    # The first PBOC1Y fixing held is 2002-02-21.
    problem = assert_problem(await bank.post("/loans", loan_body(app, **body)), 409, "missing_reference_rate")
    assert problem["first_fixing_on"] == "2002-02-21"
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2002-02-21")
    body.update(disbursed_on="2002-02-21", maturity_on="2003-02-21")
    # cn-2002: the benchmark itself, no upward float.
    assert_problem(
        await bank.post("/loans", loan_body(app, **{**body, "annual_rate_pct": "5.32"})),
        422,
        "rate_above_ceiling",
    )
    loan = await disburse(bank, app, **body)
    assert (loan["rate_ceiling_pct"], loan["policy_edition"]) == ("5.31", "cn-2002")


async def test_repayment_rules(world: World, admin: Api, manager: Api) -> None:
    await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    loan = await disburse(bank, await approved(world, manager))
    path = f"/loans/{loan['id']}/repayments"
    body = assert_problem(
        await bank.post(path, {"principal": "40000.01", "interest": "0", "paid_on": TODAY}),
        422,
        "overpayment",
    )
    assert body["outstanding_principal"] == "40000.00"
    interest_only = await bank.post(path, {"principal": "0", "interest": "12.50", "paid_on": TODAY})
    assert interest_only.status_code == 201, interest_only.text
    assert (interest_only.json()["outstanding_principal"], interest_only.json()["interest_paid"]) == (
        "40000.00",
        "12.50",
    )
    assert_problem(
        await bank.post(path, {"principal": "0", "interest": "0", "paid_on": TODAY}), 422, "validation_error"
    )
    assert_problem(
        await bank.post(path, {"principal": "1", "interest": "0", "paid_on": "2026-11-28"}),
        422,
        "future_date",
    )
    assert_problem(
        await bank.post(path, {"principal": "1", "interest": "0", "paid_on": "2026-11-26"}),
        422,
        "validation_error",
    )
    assert_problem(
        await bank.post(path, {"principal": "-1", "interest": "0", "paid_on": TODAY}), 422, "validation_error"
    )
    assert_problem(
        await manager.post(path, {"principal": "1", "interest": "0", "paid_on": TODAY}), 403, "forbidden"
    )


async def test_extension_and_overdue(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await lending_setup(admin, manager)
    window = await world.caller("window", region="2301")
    bank = await world.caller("bank", bank="ICBC")
    guarantor = await register_guarantor(window)
    backed = {"kind": "guarantor", "guarantor_ids": [guarantor["id"]]}
    loan = await disburse(
        bank, await approved(world, manager, window=window, guarantee=backed), maturity_on="2027-11-27"
    )
    plain = await disburse(
        bank, await approved(world, manager, seq="03", window=window), maturity_on="2027-11-27"
    )
    assert (await window.get(f"/guarantors/{guarantor['id']}")).json()["active_guarantees"] == 1
    ext = f"/loans/{loan['id']}/extensions"

    body = assert_problem(
        await bank.post(ext, {"new_maturity_on": "2028-05-27", "guarantor_consent": False}),
        409,
        "extension_not_allowed",
    )
    assert body["reason"] == "guarantor_consent"
    body = assert_problem(
        await bank.post(ext, {"new_maturity_on": "2028-11-28", "guarantor_consent": True}),
        409,
        "extension_not_allowed",
    )
    assert (body["reason"], body["latest_maturity_on"]) == ("too_long", "2028-11-27")
    assert_problem(
        await bank.post(ext, {"new_maturity_on": "2027-11-27", "guarantor_consent": True}),
        422,
        "validation_error",
    )
    response = await bank.post(ext, {"new_maturity_on": "2028-11-27", "guarantor_consent": True})
    assert response.status_code == 200, response.text
    extended = response.json()
    assert (extended["maturity_on"], extended["original_maturity_on"], extended["extension_count"]) == (
        "2028-11-27",
        "2027-11-27",
        1,
    )
    assert extended["extensions"][0]["previous_maturity_on"] == "2027-11-27"
    body = assert_problem(
        await bank.post(ext, {"new_maturity_on": "2028-12-27", "guarantor_consent": True}),
        409,
        "extension_not_allowed",
    )
    assert body["reason"] == "count"

    # A missed instalment: overdue from its first overdue day, cured when its principal is paid.
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2027-01-15")
    missed = await bank.post(
        f"/loans/{loan['id']}/overdue", {"overdue_since": "2027-01-11", "overdue_principal": "1000"}
    )
    assert missed.status_code == 200, missed.text
    assert (missed.json()["status"], missed.json()["days_past_due"], missed.json()["overdue_principal"]) == (
        "overdue",
        5,
        "1000.00",
    )
    assert [item["id"] for item in (await bank.get("/loans", {"status": "overdue"})).json()["items"]] == [
        loan["id"]
    ]
    assert (await window.get(f"/guarantors/{guarantor['id']}")).json()["active_guarantees"] == 1
    assert_problem(
        await bank.post(
            f"/loans/{loan['id']}/overdue", {"overdue_since": "2027-01-16", "overdue_principal": "1"}
        ),
        422,
        "future_date",
    )
    assert_problem(
        await bank.post(f"/loans/{loan['id']}/overdue", {"overdue_since": TODAY, "overdue_principal": "1"}),
        422,
        "validation_error",
    )
    assert_problem(
        await bank.post(
            f"/loans/{loan['id']}/overdue", {"overdue_since": "2027-01-11", "overdue_principal": "40000.01"}
        ),
        422,
        "validation_error",
    )
    cured = await bank.post(
        f"/loans/{loan['id']}/repayments", {"principal": "1000", "interest": "30", "paid_on": "2027-01-15"}
    )
    assert (cured.json()["status"], cured.json()["days_past_due"], cured.json()["overdue_since"]) == (
        "active",
        0,
        None,
    )

    # Maturity passing makes a loan overdue by itself; by then it is too late to extend it.
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2027-11-28")
    late = (await bank.get(f"/loans/{plain['id']}")).json()
    assert (late["status"], late["days_past_due"]) == ("overdue", 1)
    body = assert_problem(
        await bank.post(
            f"/loans/{plain['id']}/extensions", {"new_maturity_on": "2028-05-28", "guarantor_consent": True}
        ),
        409,
        "extension_not_allowed",
    )
    assert body["reason"] == "matured"
    assert (await bank.get(f"/loans/{loan['id']}")).json()["status"] == "active"  # extended to 2028
    listed = (
        await manager.get("/loans", {"status": "active", "fund_code": "HRB", "bank_code": "ICBC"})
    ).json()
    assert [item["id"] for item in listed["items"]] == [loan["id"]]


async def test_retrying_bank_posts_changes_nothing(world: World, admin: Api, manager: Api) -> None:
    agreement = await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    app = await approved(world, manager)
    rejected_app = await approved(world, manager, seq="03")

    async def twice(path: str, body: dict[str, Any], key: str) -> Any:
        first = await bank.post(path, body, key=key)
        state = (await capacity(manager, agreement["id"]), (await admin.get("/audit", {"limit": 500})).json())
        second = await bank.post(path, body, key=key)
        assert second.headers.get("idempotent-replayed") == "true"
        assert (second.status_code, second.content) == (first.status_code, first.content)
        assert (
            await capacity(manager, agreement["id"]),
            (await admin.get("/audit", {"limit": 500})).json(),
        ) == state
        return first

    loan = (await twice("/loans", loan_body(app, maturity_on="2027-11-27"), "k-loan")).json()
    await twice(
        f"/loans/{loan['id']}/repayments", {"principal": "100", "interest": "5", "paid_on": TODAY}, "k-repay"
    )
    await twice(
        f"/loans/{loan['id']}/extensions",
        {"new_maturity_on": "2028-05-27", "guarantor_consent": True},
        "k-ext",
    )
    await twice(f"/applications/{rejected_app['id']}/reject", {"reason": "no collateral papers"}, "k-reject")
    refused = await twice(
        f"/loans/{loan['id']}/repayments", {"principal": "99999", "interest": "0", "paid_on": TODAY}, "k-over"
    )
    assert refused.status_code == 422
    current = (await bank.get(f"/loans/{loan['id']}")).json()
    assert (current["outstanding_principal"], current["extension_count"]) == ("39900.00", 1)
    # A bank's overdue report, retried, is recorded once.
    await twice(
        f"/loans/{loan['id']}/overdue", {"overdue_since": TODAY, "overdue_principal": "0"}, "k-overdue"
    )
    assert_problem(
        await bank.post("/loans", loan_body(app, loan_number="X"), key="k-loan"),
        422,
        "idempotency_key_reused",
    )

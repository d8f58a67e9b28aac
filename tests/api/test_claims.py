"""Compensation claims, recoveries and write-offs through the API (domain.md 7, worked example 6)."""

from __future__ import annotations

from datetime import date

import pytest

from loanfund.subsidies import queries as subsidy_queries
from loanfund.subsidies.interest import compute_line
from loanfund.subsidies.periods import parse_period
from tests.claims_support import (
    CLAIM_DAY,
    at,
    bank_with_loan,
    ledger_state,
    loan_on,
    overdue,
    position_holds,
    repay,
)
from tests.support import Api, World, assert_problem, capacity, lending_setup


async def test_worked_example_6(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    loan = await loan_on(world, manager, bank, monkeypatch)
    at(monkeypatch, CLAIM_DAY)
    # 95 days overdue on the claim day: the first overdue day, 2026-07-27, is day 1.
    await overdue(bank, loan, "2026-07-27")
    assert (await bank.get(f"/loans/{loan['id']}")).json()["days_past_due"] == 95
    before = await ledger_state(manager)
    cap_before = await capacity(manager, agreement["id"])
    assert (cap_before["deposit"], cap_before["capacity"], cap_before["headroom"]) == (
        "1000000.00",
        "5000000.00",
        "4940000.00",
    )

    # Refusals, each leaving the ledger as it was.
    early = assert_problem(
        await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": "2026-10-23"}),
        409,
        "claim_too_early",
    )
    assert (early["days_past_due"], early["claim_after_days"]) == (89, 90)
    other = await world.caller("bank", bank="ABC")
    assert_problem(
        await other.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY}),
        404,
        "not_found",
    )
    assert_problem(
        await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": "2026-10-30"}),
        422,
        "future_date",
    )
    assert_problem(await manager.post("/compensation-claims", {"loan_id": loan["id"]}), 403, "forbidden")

    filed = await admin.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    assert (claim["status"], claim["base_principal"], claim["base_interest"]) == (
        "submitted",
        "60000.00",
        "1200.00",
    )
    assert (claim["fund_loss_share_pct"], claim["amount"], claim["days_past_due"]) == ("80", "48960.00", 95)
    again = assert_problem(
        await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY}),
        409,
        "duplicate",
    )
    assert again["id"] == claim["id"]
    assert_problem(await admin.post(f"/compensation-claims/{claim['id']}/approve"), 403, "same_maker_checker")
    assert_problem(await bank.post(f"/compensation-claims/{claim['id']}/approve"), 403, "forbidden")
    assert_problem(await other.get(f"/compensation-claims/{claim['id']}"), 404, "not_found")
    assert await ledger_state(manager) == before
    assert await capacity(manager, agreement["id"]) == cap_before

    paid = await manager.post(f"/compensation-claims/{claim['id']}/approve")
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["status"], body["amount"], body["recoverable"]) == ("paid", "48960.00", "48960.00")
    cap = await capacity(manager, agreement["id"])
    assert body["capacity"] == cap
    to_fen = lambda text: int(text.replace(".", ""))  # noqa: E731
    changes = {key: to_fen(cap[key]) - to_fen(cap_before[key]) for key in ("deposit", "capacity", "headroom")}
    assert changes == {"deposit": -4_896_000, "capacity": -24_480_000, "headroom": -18_480_000}
    assert (cap["outstanding"], cap["headroom"]) == ("0.00", "4755200.00")
    assert (await bank.get(f"/loans/{loan['id']}")).json()["status"] == "compensated"
    # No interest subsidy from the day the fund paid: the subsidy engine reads the compensation date.
    async with world.engine.connect() as conn:
        [facts] = await subsidy_queries.loan_facts(conn, "HRB", parse_period("2026Q4"))
    assert facts.compensated_on == date.fromisoformat(CLAIM_DAY)
    line = compute_line(facts, parse_period("2026Q4"))
    assert line.subsidy_fen == 0 and any(e.reason == "compensated" for e in line.exclusions), line.exclusions

    # Paid twice: refused, nothing moves.
    after_payment = await ledger_state(manager)
    assert_problem(await manager.post(f"/compensation-claims/{claim['id']}/approve"), 409, "invalid_state")
    assert_problem(
        await manager.post(f"/compensation-claims/{claim['id']}/reject", {"reason": "late"}),
        409,
        "invalid_state",
    )
    assert_problem(
        await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY}),
        409,
        "duplicate",
    )
    assert await ledger_state(manager) == after_payment
    balances, _ = after_payment
    assert balances["recoverable:ICBC"] == "48960.00"
    position = (await manager.get("/funds/HRB")).json()["position"]
    assert (position["compensation_paid"], position["recovered"], position["written_off"]) == (
        "48960.00",
        "0.00",
        "0.00",
    )
    assert position_holds(position)

    # A recovery of 10,000.00: 8,000.00 back to the fund's deposit, the bank keeps 2,000.00.
    recovered = await bank.post(
        f"/loans/{loan['id']}/recoveries", {"amount": "10000", "recovered_on": CLAIM_DAY}
    )
    assert recovered.status_code == 201, recovered.text
    assert (recovered.json()["fund_part"], recovered.json()["bank_part"]) == ("8000.00", "2000.00")
    cap_recovered = await capacity(manager, agreement["id"])
    assert (cap_recovered["deposit"], cap_recovered["capacity"]) == ("959040.00", "4795200.00")
    position = (await manager.get("/funds/HRB")).json()["position"]
    assert (position["compensation_paid"], position["recovered"]) == ("48960.00", "8000.00")
    assert position_holds(position)
    assert_problem(
        await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "60000", "recovered_on": CLAIM_DAY}),
        409,
        "invalid_state",
    )

    # Write-off: what the fund has not recovered becomes its loss.
    assert_problem(await bank.post(f"/loans/{loan['id']}/write-off", {"reason": "x"}), 403, "forbidden")
    written = await manager.post(f"/loans/{loan['id']}/write-off", {"reason": "borrower bankrupt"})
    assert written.status_code == 200, written.text
    assert (written.json()["status"], written.json()["written_off"]) == ("written_off", "40960.00")
    assert (await bank.get(f"/loans/{loan['id']}")).json()["status"] == "written_off"
    position = (await manager.get("/funds/HRB")).json()["position"]
    assert (position["compensation_paid"], position["recovered"], position["written_off"]) == (
        "48960.00",
        "8000.00",
        "40960.00",
    )
    assert position_holds(position)
    balances, _ = await ledger_state(manager)
    assert "recoverable:ICBC" not in balances
    assert (balances["expense:compensation"], balances["income:recovery"]) == ("8000.00", "8000.00")
    assert balances["expense:write_off"] == "40960.00"
    assert_problem(
        await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "1", "recovered_on": CLAIM_DAY}),
        409,
        "invalid_state",
    )
    assert_problem(
        await manager.post(f"/loans/{loan['id']}/write-off", {"reason": "again"}), 409, "invalid_state"
    )

    types = [event["type"] for event in (await bank.get("/events", {"limit": 500})).json()["items"]]
    assert types[-5:] == [
        "claim_submitted",
        "claim_paid",
        "agreement_suspended",
        "recovery_recorded",
        "loan_written_off",
    ]
    assert (await other.get("/events")).json()["items"] == []
    story = (await admin.get("/audit", {"entity": f"loan:{loan['id']}"})).json()["items"]
    assert [r["action"] for r in story][-3:] == ["loan.compensated", "loan.recovery", "loan.written_off"]


async def test_rejected_claim_frees_the_loan_for_another(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, loan = await bank_with_loan(world, admin, manager, monkeypatch)
    at(monkeypatch, CLAIM_DAY)
    await overdue(bank, loan, "2026-07-27")
    before = await ledger_state(manager)
    body = {"loan_id": loan["id"], "claimed_on": CLAIM_DAY}
    first = await bank.post("/compensation-claims", body, key="claim-1")
    retried = await bank.post("/compensation-claims", body, key="claim-1")
    assert (retried.status_code, retried.headers["idempotent-replayed"]) == (201, "true")
    claim = first.json()
    assert retried.json()["id"] == claim["id"]
    assert_problem(await bank.post("/compensation-claims", body, key=""), 400, "idempotency_key_required")
    assert_problem(
        await manager.post(f"/compensation-claims/{claim['id']}/reject", {}), 422, "validation_error"
    )
    rejected = await manager.post(f"/compensation-claims/{claim['id']}/reject", {"reason": "papers missing"})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == ("rejected", "papers missing")
    assert_problem(await manager.post(f"/compensation-claims/{claim['id']}/approve"), 409, "invalid_state")
    assert (await bank.get(f"/loans/{loan['id']}")).json()["status"] == "overdue"
    assert_problem(
        await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "1", "recovered_on": CLAIM_DAY}),
        409,
        "invalid_state",
    )
    assert await ledger_state(manager) == before
    second = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
    assert second.status_code == 201, second.text
    listed = (await bank.get("/compensation-claims", {"loan_id": loan["id"]})).json()["items"]
    assert [c["status"] for c in listed] == ["rejected", "submitted"]


async def test_principal_only_agreement_and_bad_input(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    from tests.support import make_allocation, make_deposit, make_fund

    await make_fund(admin, edition="cn-2016")
    await make_allocation(manager, amount="3000000")
    await admin.post("/banks", {"code": "ICBC", "name": "Bank ICBC"})
    made = await manager.post(
        "/funds/HRB/agreements",
        {
            "bank_code": "ICBC",
            "leverage_multiple": "5",
            "fund_loss_share_pct": "70",
            "claim_after_days": 30,
            "claim_covers_interest": False,
            "effective_from": "2026-01-01",
        },
    )
    assert made.status_code == 201, made.text
    await make_deposit(manager, made.json()["id"], "1000000")
    bank = await world.caller("bank", bank="ICBC")
    loan = await loan_on(world, manager, bank, monkeypatch, principal="33333.33")
    at(monkeypatch, CLAIM_DAY)
    await overdue(bank, loan, "2026-09-29")  # 31 days past due on the claim day
    bad = [
        {"loan_id": loan["id"]},
        {"loan_id": loan["id"], "claimed_on": "2026-13-01"},
        {"loan_id": loan["id"], "claimed_on": 20261029},
        {"loan_id": loan["id"], "claimed_on": "2026-06-30"},  # before disbursement
    ]
    for body in bad:
        assert_problem(await bank.post("/compensation-claims", body), 422, "validation_error")
    assert_problem(
        await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY, "x": 1}),
        400,
        "unknown_field",
    )
    assert_problem(
        await bank.post("/compensation-claims", {"loan_id": "loan_nope", "claimed_on": CLAIM_DAY}),
        404,
        "not_found",
    )
    claim = (await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})).json()
    # 70% of 33,333.33 = 23,333.331 → 23,333.33 (half-up, once); no interest under this agreement.
    assert (claim["base_interest"], claim["amount"], claim["days_past_due"]) == ("0.00", "23333.33", 31)
    paid = await manager.post(f"/compensation-claims/{claim['id']}/approve")
    assert paid.status_code == 200, paid.text
    for amount in ("0", "-1", "1.001", 5):
        assert_problem(
            await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": amount, "recovered_on": CLAIM_DAY}),
            422,
            "validation_error",
        )
    # 0.01 × 70% = 0.007 → the fund's part rounds up to 0.01 and the bank keeps nothing.
    tiny = await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "0.01", "recovered_on": CLAIM_DAY})
    assert (tiny.json()["fund_part"], tiny.json()["bank_part"]) == ("0.01", "0.00")
    odd = await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "0.05", "recovered_on": CLAIM_DAY})
    assert (odd.json()["fund_part"], odd.json()["bank_part"]) == ("0.04", "0.01")  # 0.035 → 0.04
    assert_problem(
        await bank.post(f"/loans/{loan['id']}/recoveries", {"amount": "1", "recovered_on": "2026-10-28"}),
        422,
        "validation_error",
    )
    position = (await manager.get("/funds/HRB")).json()["position"]
    assert position_holds(position)


async def test_a_claim_is_paid_only_while_the_loan_is_still_as_filed_and_in_default(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, loan = await bank_with_loan(world, admin, manager, monkeypatch)
    cured = await loan_on(world, manager, bank, monkeypatch, seq="02")
    at(monkeypatch, CLAIM_DAY)
    await overdue(bank, loan, "2026-07-27", principal="5000")
    await overdue(bank, cured, "2026-07-27", principal="1000")
    filed = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
    assert filed.status_code == 201, filed.text
    claim = filed.json()

    # A repayment reported after filing (arrears not cured): the claim as filed would pay for money
    # the bank got back.
    await repay(bank, loan, "1000", "0", CLAIM_DAY)
    before = await ledger_state(manager)
    stale = assert_problem(
        await manager.post(f"/compensation-claims/{claim['id']}/approve"), 409, "invalid_state"
    )
    assert (stale["base_principal"], stale["now_principal"]) == ("60000.00", "59000.00")
    assert await ledger_state(manager) == before
    assert (await bank.get(f"/compensation-claims/{claim['id']}")).json()["status"] == "submitted"
    rejected = await manager.post(f"/compensation-claims/{claim['id']}/reject", {"reason": "repaid since"})
    assert rejected.status_code == 200, rejected.text
    again = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
    assert again.status_code == 201, again.text
    assert again.json()["base_principal"] == "59000.00"
    paid = await manager.post(f"/compensation-claims/{again.json()['id']}/approve")
    assert paid.status_code == 200, paid.text

    # Arrears cured, then a claim dated back to when the loan was in default: refused, as of today.
    await repay(bank, cured, "1000", "0", CLAIM_DAY)
    at(monkeypatch, "2026-11-05")
    assert (await bank.get(f"/loans/{cured['id']}")).json()["days_past_due"] == 0
    before = await ledger_state(manager)
    late = assert_problem(
        await bank.post("/compensation-claims", {"loan_id": cured["id"], "claimed_on": "2026-10-28"}),
        409,
        "claim_too_early",
    )
    assert (late["days_past_due"], late["claim_after_days"]) == (0, 90)
    assert await ledger_state(manager) == before

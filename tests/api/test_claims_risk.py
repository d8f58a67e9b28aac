"""What compensation does to a bank: negative headroom, the compensation rate, automatic suspension."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from loanfund import uow
from loanfund.audit import Actor
from loanfund.claims import service as claims_service
from loanfund.db.tables import agreements, audit_log, compensation_claims
from tests.claims_support import CLAIM_DAY, at, ledger_state, loan_on, overdue
from tests.support import (
    Api,
    World,
    application_body,
    assert_problem,
    capacity,
    make_agreement,
    make_allocation,
    make_deposit,
    make_fund,
    register_person,
)


async def pair(admin: Api, manager: Api, *, deposit: str, **agreement: Any) -> dict[str, Any]:
    await make_fund(admin, edition="cn-2016")
    await make_allocation(manager, amount="3000000")
    await admin.post("/banks", {"code": "ICBC", "name": "Bank ICBC"})
    made = await make_agreement(manager, **agreement)
    await make_deposit(manager, made["id"], deposit)
    return made


async def claim_paid(bank: Api, manager: Api, loan: dict[str, Any]) -> dict[str, Any]:
    await overdue(bank, loan, "2026-07-27")
    filed = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
    assert filed.status_code == 201, filed.text
    paid = await manager.post(f"/compensation-claims/{filed.json()['id']}/approve")
    assert paid.status_code == 200, paid.text
    return dict(paid.json())


async def test_negative_headroom_refuses_approvals_and_withdrawals(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="60000", compensation_suspend_pct="100")
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    bad = await loan_on(world, manager, bank, monkeypatch, seq="01", window=window)
    await loan_on(world, manager, bank, monkeypatch, seq="02", principal="100000", window=window)
    await loan_on(world, manager, bank, monkeypatch, seq="03", principal="100000", window=window)
    at(monkeypatch, CLAIM_DAY)
    paid = await claim_paid(bank, manager, bad)
    assert paid["agreement_suspended"] is False  # 81.6% is not above this agreement's 100%
    cap = await capacity(manager, agreement["id"])
    # Deposit 60,000.00 − 48,960.00 = 11,040.00; capacity 55,200.00; outstanding 200,000.00.
    assert (cap["deposit"], cap["capacity"], cap["outstanding"], cap["headroom"]) == (
        "11040.00",
        "55200.00",
        "200000.00",
        "-144800.00",
    )
    before = await ledger_state(manager)
    person = await register_person(window, seq="04")
    app = (await window.post("/applications", application_body(person["id"], applied_on=CLAIM_DAY))).json()
    refused = assert_problem(
        await manager.post(f"/applications/{app['id']}/approve"), 409, "leverage_exceeded"
    )
    assert refused["headroom"] == "-144800.00"
    assert_problem(
        await manager.post(
            f"/agreements/{agreement['id']}/withdrawals",
            {"amount": "1", "withdrawn_on": CLAIM_DAY, "reference": "W-1"},
        ),
        409,
        "leverage_exceeded",
    )
    assert await ledger_state(manager) == before
    # A deposit is still accepted, and brings headroom back.
    await make_deposit(manager, agreement["id"], "40000", on=CLAIM_DAY, reference="D-2")
    assert (await capacity(manager, agreement["id"]))["headroom"] == "55200.00"


async def test_crossing_the_threshold_suspends_in_the_payment(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="1000000")
    assert agreement["compensation_suspend_pct"] == "5"  # the policy's default
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    good = await loan_on(world, manager, bank, monkeypatch, seq="01", window=window)
    bad = await loan_on(world, manager, bank, monkeypatch, seq="02", window=window)
    at(monkeypatch, CLAIM_DAY)
    repaid = await bank.post(
        f"/loans/{good['id']}/repayments", {"principal": "60000", "interest": "1200", "paid_on": CLAIM_DAY}
    )
    assert repaid.json()["status"] == "repaid"
    paid = await claim_paid(bank, manager, bad)
    # 48,960.00 paid ÷ 120,000.00 released (one loan repaid, one compensated) = 40.8%.
    assert paid["agreement_compensation_rate"]["compensation_rate_pct"] == "40.8"
    assert paid["agreement_compensation_rate"]["released_principal"] == "120000.00"
    assert (paid["agreement_suspended"], paid["compensation_suspend_pct"]) == (True, "5")
    assert (paid["fund_red_flag"], paid["fund_compensation_rate"]["compensation_rate_pct"]) == (True, "40.8")
    shown = (await manager.get(f"/agreements/{agreement['id']}")).json()
    assert (shown["status"], shown["suspended_reason"]) == ("suspended", "compensation_rate")

    events = (await bank.get("/events", {"limit": 500})).json()["items"]
    suspended = [e for e in events if e["type"] == "agreement_suspended"]
    assert len(suspended) == 1
    assert (suspended[0]["data"]["reason"], suspended[0]["data"]["compensation_rate_pct"]) == (
        "compensation_rate",
        "40.8",
    )
    assert [e["type"] for e in events].index("claim_paid") < [e["type"] for e in events].index(
        "agreement_suspended"
    )
    rate = (await bank.get(f"/agreements/{agreement['id']}/compensation-rate")).json()
    assert (rate["compensation_rate"]["compensation_rate_pct"], rate["compensation_suspend_pct"]) == (
        "40.8",
        "5",
    )
    assert (rate["above_threshold"], rate["fund_red_flag"]) == (True, True)
    earlier = (
        await manager.get(f"/agreements/{agreement['id']}/compensation-rate", {"as_of": "2026-10-28"})
    ).json()
    assert (earlier["compensation_rate"]["compensation_rate_pct"], earlier["above_threshold"]) == (
        None,
        False,
    )
    later = (
        await manager.get(f"/agreements/{agreement['id']}/compensation-rate", {"as_of": "2027-10-30"})
    ).json()
    assert later["compensation_rate"]["compensation_paid"] == "0.00"  # out of the 12-month window
    other = await world.caller("bank", bank="ABC")
    assert_problem(await other.get(f"/agreements/{agreement['id']}/compensation-rate"), 404, "not_found")
    region_events = [e["type"] for e in (await manager.get("/events", {"limit": 500})).json()["items"]]
    assert "compensation_red_flag" in region_events
    async with world.engine.connect() as conn:
        actions = (
            await conn.execute(
                sa.select(audit_log.c.action, audit_log.c.changes).where(
                    audit_log.c.entity_id == agreement["id"]
                )
            )
        ).all()
    assert [a.action for a in actions][-1] == "agreement.suspended"
    assert actions[-1].changes["automatic"] is True

    person = await register_person(window, seq="05")
    app = (await window.post("/applications", application_body(person["id"], applied_on=CLAIM_DAY))).json()
    assert_problem(await manager.post(f"/applications/{app['id']}/approve"), 409, "agreement_suspended")
    resumed = await manager.post(
        f"/agreements/{agreement['id']}/resume", {"reason": "bank replaced its team"}
    )
    assert resumed.status_code == 200, resumed.text
    assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200


async def test_a_rate_equal_to_the_threshold_does_not_suspend(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="1000000", compensation_suspend_pct="40.8")
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    good = await loan_on(world, manager, bank, monkeypatch, seq="01", window=window)
    bad = await loan_on(world, manager, bank, monkeypatch, seq="02", window=window)
    at(monkeypatch, CLAIM_DAY)
    await bank.post(
        f"/loans/{good['id']}/repayments", {"principal": "60000", "interest": "0", "paid_on": CLAIM_DAY}
    )
    paid = await claim_paid(bank, manager, bad)
    assert (paid["agreement_compensation_rate"]["compensation_rate_pct"], paid["agreement_suspended"]) == (
        "40.8",
        False,
    )
    assert (await manager.get(f"/agreements/{agreement['id']}")).json()["status"] == "active"


async def test_payment_and_suspension_roll_back_together(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch, is_postgres: bool
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="1000000")
    bank = await world.caller("bank", bank="ICBC")
    loan = await loan_on(world, manager, bank, monkeypatch)
    at(monkeypatch, CLAIM_DAY)
    await overdue(bank, loan, "2026-07-27")
    claim = (await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})).json()
    before = await ledger_state(manager)

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with uow.transaction(world.engine, Actor("manager-in-a-script")) as tx:
            payment = await claims_service.approve_claim(tx, claim["id"])
            assert payment.outcome.suspended
            if not is_postgres:  # one connection to SQLite: nobody else can look
                raise Crash
            async with world.engine.connect() as other:
                # Not visible outside the transaction before it commits: neither half.
                status = await other.scalar(
                    sa.select(compensation_claims.c.status).where(compensation_claims.c.id == claim["id"])
                )
                suspended = await other.scalar(
                    sa.select(agreements.c.suspended).where(agreements.c.id == agreement["id"])
                )
                assert (status, suspended) == ("submitted", False)
            raise Crash
    assert await ledger_state(manager) == before
    shown = (await manager.get(f"/agreements/{agreement['id']}")).json()
    assert shown["status"] == "active"
    assert (await manager.get(f"/compensation-claims/{claim['id']}")).json()["status"] == "submitted"
    # Committed, both halves are there.
    async with uow.transaction(world.engine, Actor("manager-in-a-script")) as tx:
        await claims_service.approve_claim(tx, claim["id"])
    assert (await manager.get(f"/agreements/{agreement['id']}")).json()["status"] == "suspended"
    assert (await manager.get(f"/compensation-claims/{claim['id']}")).json()["status"] == "paid"

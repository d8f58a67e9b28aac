"""Agreements, deposits, withdrawals, suspension and capacity through the API; worked example 4.

Reservations have no endpoint of their own yet (applications will make them): they are made here with
the library, on the test's own engine, and observed through GET /agreements/{id}.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from api.errors import problem_body
from loanfund import uow
from loanfund.agreements import reservations
from loanfund.clock import business_date
from loanfund.db.tables import agreements, audit_log, events, guarantees
from loanfund.errors import GuaranteeLapsed, LoanfundError, NoAgreement
from scheduler import jobs
from tests.support import (
    SETUP,
    TODAY,
    Api,
    World,
    assert_problem,
    make_agreement,
    make_allocation,
    make_bank,
    make_deposit,
    make_fund,
)

MILLION = 100_000_000  # fen


async def reserve(world: World, amount_fen: int, on: date = date(2026, 11, 20), bank: str = "ICBC") -> Any:
    async with uow.transaction(world.engine, SETUP) as tx:
        return await reservations.reserve(
            tx, fund_code="HRB", bank_code=bank, amount_fen=amount_fen, approved_on=on
        )


async def refused(world: World, amount_fen: int, **kwargs: Any) -> dict[str, Any]:
    """The problem document the API would answer for a refused reservation; nothing is kept."""
    with pytest.raises(LoanfundError) as caught:
        await reserve(world, amount_fen, **kwargs)
    return problem_body(caught.value)


async def capacity(api: Api, agreement_id: str) -> dict[str, Any]:
    response = await api.get(f"/agreements/{agreement_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["capacity"])


async def example_4(admin: Api, manager: Api) -> dict[str, Any]:
    await make_fund(admin)  # cn-2008: multiple at most 5
    await make_bank(admin)
    await make_allocation(manager, amount="10000000.00")
    agreement = await make_agreement(manager, multiple="5")
    await make_deposit(manager, agreement["id"], "10000000.00")
    return agreement


async def test_worked_example_4(world: World, admin: Api, manager: Api) -> None:
    agreement = await example_4(admin, manager)
    assert agreement["status"] == "active"
    assert agreement["compensation_suspend_pct"] == "5"  # the policy's default
    assert await capacity(manager, agreement["id"]) == {
        "currency": "CNY",
        "deposit": "10000000.00",
        "leverage_multiple": "5",
        "capacity": "50000000.00",
        "outstanding": "0.00",
        "reserved": "0.00",
        "headroom": "50000000.00",
        "leverage_ratio": "0.0000",
        "max_withdrawal": "10000000.00",
    }
    big = await reserve(world, 4_999_000_000)
    async with uow.transaction(world.engine, SETUP) as tx:
        await reservations.convert(tx, big.id, principal_fen=4_999_000_000, on=date(2026, 11, 21))
    view = await capacity(manager, agreement["id"])
    assert (view["outstanding"], view["reserved"], view["headroom"]) == ("49990000.00", "0.00", "10000.00")

    problem = await refused(world, 2_000_000)
    assert (problem["status"], problem["code"], problem["headroom"], problem["amount"]) == (
        409,
        "leverage_exceeded",
        "10000.00",
        "20000.00",
    )
    assert (await capacity(manager, agreement["id"]))["headroom"] == "10000.00"

    passed = await reserve(world, 1_000_000)
    assert passed.status == "reserved" and passed.expires_on == date(2026, 12, 11)
    view = await capacity(manager, agreement["id"])
    assert (view["reserved"], view["headroom"], view["leverage_ratio"]) == ("10000.00", "0.00", "5.0000")
    assert (await refused(world, 1))["headroom"] == "0.00"


async def test_fund_leverage_lists_each_bank_once(world: World, admin: Api, manager: Api) -> None:
    first = await example_4(admin, manager)
    await make_bank(admin, "ABC")
    await make_allocation(manager, amount="500000.00", reference="P-2")
    second = await make_agreement(manager, bank="ABC", multiple="2.5")
    await make_deposit(manager, second["id"], "333333.33")
    await reserve(world, 12_345, bank="ABC")
    report = (await manager.get("/funds/HRB/leverage")).json()
    assert [item["id"] for item in report["items"]] == [second["id"], first["id"]]
    abc = report["items"][0]["capacity"]
    # 333,333.33 × 2.5 = 833,333.325 → half-up to the fen.
    assert (abc["capacity"], abc["reserved"], abc["headroom"]) == ("833333.33", "123.45", "833209.88")
    assert abc["leverage_ratio"] == "0.0004"
    assert report["totals"] == {
        "currency": "CNY",
        "deposit": "10333333.33",
        "capacity": "50833333.33",
        "outstanding": "0.00",
        "reserved": "123.45",
        "headroom": "50833209.88",
        "leverage_ratio": "0.0000",
    }
    fund = (await manager.get("/funds/HRB")).json()["position"]
    assert (fund["cash"], fund["deposited"]) == ("166666.67", "10333333.33")


async def test_duplicate_and_following_agreement(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="1000000")
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-03-01")
    first = await make_agreement(manager, effective_to="2026-06-30")
    await make_deposit(manager, first["id"], "400000")
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", TODAY)
    body = {
        "bank_code": "ICBC",
        "leverage_multiple": "4",
        "fund_loss_share_pct": "70",
        "claim_after_days": 90,
        "claim_covers_interest": False,
    }
    overlapping = await manager.post("/funds/HRB/agreements", {**body, "effective_from": "2026-06-30"})
    assert assert_problem(overlapping, 409, "duplicate")["agreement_id"] == first["id"]
    assert (await manager.get(f"/agreements/{first['id']}")).json()["status"] == "ended"

    following = await manager.post("/funds/HRB/agreements", {**body, "effective_from": "2026-07-01"})
    assert following.status_code == 201, following.text
    view = following.json()
    assert view["status"] == "active"
    # The deposit belongs to the fund × bank pair and carries over.
    assert (view["capacity"]["deposit"], view["capacity"]["capacity"]) == ("400000.00", "1600000.00")
    again = await manager.post("/funds/HRB/agreements", {**body, "effective_from": "2026-08-01"})
    assert_problem(again, 409, "duplicate")
    # An ended agreement takes no deposits; the pair's money can still come back through it.
    late = await manager.post(
        f"/agreements/{first['id']}/deposits", {"amount": "1", "deposited_on": "2026-11-01", "reference": "X"}
    )
    assert_problem(late, 409, "invalid_state")
    back = await manager.post(
        f"/agreements/{first['id']}/withdrawals",
        {"amount": "1", "withdrawn_on": "2026-11-01", "reference": "W"},
    )
    assert back.status_code == 201, back.text
    assert back.json()["capacity"]["deposit"] == "399999.00"
    # The pair's reservations go under the agreement in force.
    reservation = await reserve(world, 100)
    assert reservation.agreement_id == view["id"]
    problem = await refused(world, 100, on=date(2026, 6, 1))
    assert problem["code"] == "no_agreement"


async def test_multiple_above_policy_maximum(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_fund(admin, code="NEW", edition="cn-2016")
    await make_bank(admin)
    base = {
        "bank_code": "ICBC",
        "fund_loss_share_pct": "80",
        "claim_after_days": 90,
        "claim_covers_interest": True,
        "effective_from": "2026-01-01",
    }
    body = assert_problem(
        await manager.post("/funds/HRB/agreements", {**base, "leverage_multiple": "5.01"}),
        422,
        "leverage_multiple_too_high",
    )
    assert (body["leverage_multiple"], body["leverage_multiple_max"], body["policy_edition"]) == (
        "5.01",
        "5",
        "cn-2008",
    )
    # Plain validation comes first.
    bad = await manager.post(
        "/funds/HRB/agreements", {**base, "leverage_multiple": "6", "fund_loss_share_pct": "101"}
    )
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["field"] == "fund_loss_share_pct"
    ok = await manager.post("/funds/NEW/agreements", {**base, "leverage_multiple": "10"})
    assert ok.status_code == 201, ok.text
    assert (await manager.get("/agreements")).json()["items"][0]["leverage_multiple"] == "10"


async def test_insufficient_fund_cash_on_deposit(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="1000.00")
    agreement = await make_agreement(manager)
    response = await manager.post(
        f"/agreements/{agreement['id']}/deposits",
        {"amount": "1000.01", "deposited_on": "2026-02-01", "reference": "D"},
    )
    body = assert_problem(response, 409, "insufficient_fund_cash")
    assert (body["cash"], body["amount"]) == ("1000.00", "1000.01")
    assert (await manager.get("/funds/HRB")).json()["position"]["cash"] == "1000.00"
    deposit = await make_deposit(manager, agreement["id"], "1000.00")
    assert deposit["capacity"]["capacity"] == "5000.00"
    assert (await manager.get("/funds/HRB")).json()["position"]["cash"] == "0.00"


async def test_withdrawal_limited_by_leverage(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="1000000")
    agreement = await make_agreement(manager)
    path = f"/agreements/{agreement['id']}/withdrawals"
    await make_deposit(manager, agreement["id"], "1000000")
    loan = await reserve(world, 4 * MILLION)
    async with uow.transaction(world.engine, SETUP) as tx:
        await reservations.convert(tx, loan.id, principal_fen=4 * MILLION, on=date(2026, 11, 20))
    assert (await capacity(manager, agreement["id"]))["max_withdrawal"] == "200000.00"

    body = assert_problem(
        await manager.post(path, {"amount": "200000.01", "withdrawn_on": "2026-11-25", "reference": "W"}),
        409,
        "leverage_exceeded",
    )
    assert body["headroom"] == "1000000.00"
    assert (body["capacity_after"], body["headroom_after"], body["max_withdrawal"]) == (
        "3999999.95",
        "-0.05",
        "200000.00",
    )
    too_much = await manager.post(
        path, {"amount": "1000000.01", "withdrawn_on": "2026-11-25", "reference": "W"}
    )
    assert assert_problem(too_much, 409, "insufficient_deposit")["deposit"] == "1000000.00"
    assert (await capacity(manager, agreement["id"]))["deposit"] == "1000000.00"

    ok = await manager.post(path, {"amount": "200000", "withdrawn_on": "2026-11-25", "reference": "W"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["capacity"]["headroom"] == "0.00"
    assert_problem(
        await manager.post(path, {"amount": "0.01", "withdrawn_on": "2026-11-25", "reference": "W"}),
        409,
        "leverage_exceeded",
    )
    # Repayments bring the headroom back.
    async with uow.transaction(world.engine, SETUP) as tx:
        await reservations.reduce_outstanding(
            tx,
            fund_code="HRB",
            bank_code="ICBC",
            amount_fen=MILLION,
            on=date(2026, 11, 26),
            reason="repaid",
        )
    assert (await capacity(manager, agreement["id"]))["max_withdrawal"] == "200000.00"


async def test_lower_multiple_must_carry_what_is_outstanding(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="100000")
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-10-21")
    first = await make_agreement(manager, effective_to="2026-10-31")
    await make_deposit(manager, first["id"], "100000")
    loan = await reserve(world, 30_000_000, on=date(2026, 10, 20))
    async with uow.transaction(world.engine, SETUP) as tx:
        await reservations.convert(tx, loan.id, principal_fen=30_000_000, on=date(2026, 10, 21))
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", TODAY)
    body = {
        "bank_code": "ICBC",
        "fund_loss_share_pct": "80",
        "claim_after_days": 90,
        "claim_covers_interest": True,
        "effective_from": "2026-11-01",
    }
    low = await manager.post("/funds/HRB/agreements", {**body, "leverage_multiple": "2.99"})
    problem = assert_problem(low, 409, "leverage_exceeded")
    assert (problem["capacity"], problem["headroom"]) == ("299000.00", "-1000.00")
    ok = await manager.post("/funds/HRB/agreements", {**body, "leverage_multiple": "3"})
    assert ok.json()["capacity"]["headroom"] == "0.00"


async def test_suspension_blocks_new_guarantees(world: World, admin: Api, manager: Api) -> None:
    agreement = await example_4(admin, manager)
    path = f"/agreements/{agreement['id']}"
    held = await reserve(world, MILLION)
    response = await manager.post(f"{path}/suspend", {"reason": "compensation rate review"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["suspended_reason"]) == (
        "suspended",
        "compensation rate review",
    )
    problem = await refused(world, 100)
    assert (problem["status"], problem["code"], problem["agreement_id"]) == (
        409,
        "agreement_suspended",
        agreement["id"],
    )
    # Still in force: existing reservations convert, money moves.
    async with uow.transaction(world.engine, SETUP) as tx:
        conn = tx.conn
        await reservations.convert(tx, held.id, principal_fen=MILLION, on=date(2026, 11, 27))
    await make_allocation(manager, amount="10", reference="P-2")
    await make_deposit(manager, agreement["id"], "10", on="2026-11-27")
    assert_problem(await manager.post(f"{path}/suspend", {"reason": "again"}), 409, "invalid_state")
    assert_problem(await manager.post(f"{path}/suspend", {}), 422, "validation_error")

    async with world.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events).where(events.c.type == "agreement_suspended"))).all()
    assert len(rows) == 1
    assert (rows[0].bank_code, rows[0].region_code, rows[0].data["reason"]) == (
        "ICBC",
        "230100",
        "compensation rate review",
    )

    resumed = await manager.post(f"{path}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["suspended_reason"]) == ("active", None)
    assert_problem(await manager.post(f"{path}/resume", {"reason": "twice"}), 409, "invalid_state")
    assert (await reserve(world, 100)).status == "reserved"


async def test_no_agreement(world: World, admin: Api, manager: Api) -> None:
    await example_4(admin, manager)
    await make_bank(admin, "ABC")
    assert (await refused(world, 100, bank="ABC"))["code"] == "no_agreement"
    assert (await refused(world, 100, on=date(2025, 12, 31)))["code"] == "no_agreement"
    with pytest.raises(NoAgreement):
        await reserve(world, 100, bank="NOBANK")


async def test_reservation_lapses_the_day_after_expiry_without_a_job(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = await example_4(admin, manager)
    held = await reserve(world, 3 * MILLION, on=date(2026, 11, 6))
    assert held.expires_on == date(2026, 11, 27)  # 21 days; today is the last day
    view = await capacity(manager, agreement["id"])
    assert (view["reserved"], view["headroom"]) == ("3000000.00", "47000000.00")

    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-28")
    view = await capacity(manager, agreement["id"])
    assert (view["reserved"], view["headroom"]) == ("0.00", "50000000.00")
    async with uow.transaction(world.engine, SETUP) as tx:
        conn = tx.conn
        assert (await reservations.get_reservation(conn, held.id, business_date())).status == "lapsed"
        lapsed = await reservations.pair_capacity(conn, "HRB", "ICBC", today=date(2026, 11, 28))
        assert lapsed.reserved_fen == 0
        # Headroom is the reservation's again: a new one of the full capacity fits.
        await reservations.reserve(
            tx,
            fund_code="HRB",
            bank_code="ICBC",
            amount_fen=50 * MILLION,
            approved_on=date(2026, 11, 28),
        )
    with pytest.raises(GuaranteeLapsed) as caught:
        async with uow.transaction(world.engine, SETUP) as tx:
            conn = tx.conn
            await reservations.convert(tx, held.id, principal_fen=MILLION, on=date(2026, 11, 27))
    assert problem_body(caught.value)["code"] == "guarantee_lapsed"
    async with uow.transaction(world.engine, SETUP) as tx:
        conn = tx.conn
        again = await reservations.release(tx, held.id, on=date(2026, 11, 28), reason="rejected")
    assert again.status == "lapsed"
    async with world.engine.connect() as conn:
        stored = await conn.scalar(sa.select(guarantees.c.status).where(guarantees.c.id == held.id))
    assert stored == "reserved"  # no job has run; every read already says lapsed


async def test_lapse_job_catches_up_once(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await example_4(admin, manager)
    held = await reserve(world, 3 * MILLION, on=date(2026, 11, 6))
    kept = await reserve(world, MILLION, on=date(2026, 11, 7))
    settings = world.http.app.state.settings
    assert await jobs.lapse_reservations(world.engine, settings) == 0
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-28")
    async with world.engine.connect() as conn:
        before = await reservations.pair_capacity(conn, "HRB", "ICBC", today=date(2026, 11, 28))
        ledger_view = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=date(2026, 11, 28))
    assert ledger_view.reserved_fen == before.reserved_fen + 3 * MILLION
    assert await jobs.lapse_reservations(world.engine, settings) == 1
    assert await jobs.lapse_reservations(world.engine, settings) == 0
    async with world.engine.connect() as conn:
        after = await reservations.pair_capacity(conn, "HRB", "ICBC", today=date(2026, 11, 28))
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=date(2026, 11, 28))
        assert after == before == rebuilt
        assert after.reserved_fen == MILLION
        assert (await reservations.get_reservation(conn, kept.id, business_date())).status == "reserved"
        lapsed_events = (
            await conn.execute(sa.select(events).where(events.c.type == "guarantee_lapsed"))
        ).all()
        actions = (
            await conn.scalars(sa.select(audit_log.c.action).where(audit_log.c.entity_id == held.id))
        ).all()
    assert [(e.bank_code, e.data["guarantee_id"], e.data["expires_on"]) for e in lapsed_events] == [
        ("ICBC", held.id, "2026-11-27")
    ]
    assert list(actions) == ["guarantee.reserved", "guarantee.lapsed"]
    ledger = (await manager.get("/funds/HRB/ledger", {"account": "memo:reserved:ICBC"})).json()["items"]
    assert [(e["kind"], e["entry_date"]) for e in ledger] == [
        ("guarantee_reserved", "2026-11-06"),
        ("guarantee_reserved", "2026-11-07"),
        ("reversal", "2026-11-28"),
    ]
    tb = (await manager.get("/funds/HRB/trial-balance")).json()
    assert tb["total_debit"] == tb["total_credit"]


async def test_bad_input_changes_nothing(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="1000")
    create = "/funds/HRB/agreements"
    good = {
        "bank_code": "ICBC",
        "leverage_multiple": "5",
        "fund_loss_share_pct": "80",
        "claim_after_days": 90,
        "claim_covers_interest": True,
        "effective_from": "2026-01-01",
    }
    assert_problem(await manager.post(create, content=b"{nope"), 400, "malformed_request")
    assert assert_problem(await manager.post(create, {**good, "x": 1}), 400, "unknown_field")["field"] == "x"
    for field, value in [
        ("leverage_multiple", 5),
        ("leverage_multiple", "0"),
        ("leverage_multiple", "-1"),
        ("leverage_multiple", "5x"),
        ("leverage_multiple", "1e1"),
        ("leverage_multiple", "4.12345"),
        ("fund_loss_share_pct", "0"),
        ("claim_after_days", "90"),
        ("claim_after_days", 0),
        ("claim_covers_interest", "yes"),
        ("effective_from", "2026-02-30"),
        ("effective_to", "2025-12-31"),
        ("compensation_suspend_pct", "150"),
        ("bank_code", "NOPE"),
    ]:
        body = assert_problem(await manager.post(create, {**good, field: value}), 422, "validation_error")
        assert body["errors"][0]["field"] == field, (field, value, body)
    assert_problem(await manager.post(create, {**good, "effective_from": "2026-11-28"}), 422, "future_date")
    missing = {k: v for k, v in good.items() if k != "claim_after_days"}
    assert_problem(await manager.post(create, missing), 422, "validation_error")
    assert (await manager.get("/agreements")).json()["items"] == []

    agreement = await make_agreement(manager)
    deposits = f"/agreements/{agreement['id']}/deposits"
    for bad in [100, "0", "-1", "1.001", None]:
        body = assert_problem(
            await manager.post(deposits, {"amount": bad, "deposited_on": "2026-02-01", "reference": "D"}),
            422,
            "validation_error",
        )
        assert body["errors"][0]["field"] == "amount"
    assert_problem(
        await manager.post(deposits, {"amount": "1", "deposited_on": "2026-11-28", "reference": "D"}),
        422,
        "future_date",
    )
    before = await manager.post(deposits, {"amount": "1", "deposited_on": "2025-12-31", "reference": "D"})
    assert assert_problem(before, 422, "validation_error")["errors"][0]["field"] == "deposited_on"
    assert_problem(await manager.post(deposits, {"amount": "1", "reference": "D"}), 422, "validation_error")
    assert_problem(
        await manager.post(f"/agreements/{agreement['id']}/resume", content=b"[1"), 400, "malformed_request"
    )
    assert_problem(await manager.get("/agreements/agr_missing"), 404, "not_found")
    assert (await capacity(manager, agreement["id"]))["deposit"] == "0.00"
    assert (await manager.get("/funds/HRB")).json()["position"]["cash"] == "1000.00"
    assert (await manager.get("/agreements/" + agreement["id"])).json()["status"] == "active"


async def test_scopes_and_roles(world: World, admin: Api, manager: Api) -> None:
    agreement = await example_4(admin, manager)
    other_fund = await make_fund(admin, code="SH", region_code="310100")
    await make_bank(admin, "ABC")
    await make_allocation(admin, fund="SH", amount="100")
    other = await make_agreement(admin, fund="SH", bank="ABC")
    assert other_fund["region_code"] == "310100"
    path = f"/agreements/{agreement['id']}"
    deposit = {"amount": "1", "deposited_on": "2026-11-01", "reference": "D"}

    bank_a = await world.caller("bank", bank="ICBC")
    bank_b = await world.caller("bank", bank="ABC")
    window = await world.caller("window", region="2301")
    auditor = await world.caller("auditor", region="2301")
    outsider = await world.caller("fund_manager", region="4401")

    assert (await bank_a.get(path)).json()["capacity"]["capacity"] == "50000000.00"
    assert [item["id"] for item in (await bank_a.get("/agreements")).json()["items"]] == [agreement["id"]]
    assert (await bank_a.get("/agreements", {"bank_code": "ABC"})).json()["items"] == []
    assert [item["id"] for item in (await bank_b.get("/agreements")).json()["items"]] == [other["id"]]
    assert (await auditor.get(path)).status_code == 200
    assert (await auditor.get("/funds/HRB/leverage")).json()["totals"]["capacity"] == "50000000.00"
    assert [item["id"] for item in (await manager.get("/agreements")).json()["items"]] == [agreement["id"]]
    assert [item["id"] for item in (await admin.get("/agreements", {"fund_code": "SH"})).json()["items"]] == [
        other["id"]
    ]
    assert (await outsider.get("/agreements")).json()["items"] == []

    assert_problem(await bank_b.get(path), 404, "not_found")
    assert_problem(await bank_b.post(f"{path}/deposits", deposit), 404, "not_found")
    assert_problem(await bank_b.post(f"{path}/suspend", {"reason": "x"}), 404, "not_found")
    assert_problem(await bank_a.post(f"{path}/deposits", deposit), 403, "forbidden")
    assert_problem(await bank_a.post(f"{path}/withdrawals", deposit), 403, "forbidden")
    assert_problem(await bank_a.get("/funds/HRB/leverage"), 404, "not_found")
    assert_problem(await bank_a.post("/funds/HRB/agreements", {}), 404, "not_found")
    assert_problem(await window.get(path), 403, "forbidden")
    assert_problem(await window.get("/agreements"), 403, "forbidden")
    assert_problem(await window.get("/funds/HRB/leverage"), 403, "forbidden")
    assert_problem(await window.post("/funds/HRB/agreements", {}), 403, "forbidden")
    assert_problem(await auditor.post(f"{path}/suspend", {"reason": "x"}), 403, "forbidden")
    assert_problem(await outsider.get(path), 404, "not_found")
    assert_problem(await outsider.post(f"{path}/deposits", deposit), 404, "not_found")
    assert_problem(await outsider.get("/funds/HRB/leverage"), 404, "not_found")
    assert_problem(await manager.get(f"/agreements/{other['id']}"), 404, "not_found")
    # Scope is judged before the body: an outsider's empty body still gets 404.
    assert_problem(await outsider.post(f"{path}/withdrawals", content=b"{nope"), 404, "not_found")
    assert (await capacity(manager, agreement["id"]))["deposit"] == "10000000.00"


async def test_retry_with_the_same_key_changes_nothing(admin: Api, manager: Api) -> None:
    agreement = await example_4(admin, manager)
    await make_allocation(manager, amount="500", reference="P-2")
    path = f"/agreements/{agreement['id']}"
    body = {"amount": "500", "deposited_on": "2026-11-01", "reference": "D-2"}
    first = await manager.post(f"{path}/deposits", body, key="dep-1")
    second = await manager.post(f"{path}/deposits", body, key="dep-1")
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert (await capacity(manager, agreement["id"]))["deposit"] == "10000500.00"
    reused = await manager.post(f"{path}/deposits", {**body, "amount": "1"}, key="dep-1")
    assert_problem(reused, 422, "idempotency_key_reused")

    suspended = await manager.post(f"{path}/suspend", {"reason": "r"}, key="sus-1")
    replay = await manager.post(f"{path}/suspend", {"reason": "r"}, key="sus-1")
    assert suspended.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    fund = (await manager.get("/funds/HRB")).json()["position"]
    assert (fund["cash"], fund["deposited"]) == ("0.00", "10000500.00")
    ledger = (await manager.get("/funds/HRB/ledger", {"account": "deposit:ICBC"})).json()["items"]
    assert len(ledger) == 2


async def test_agreement_row_is_audited(world: World, admin: Api, manager: Api) -> None:
    agreement = await example_4(admin, manager)
    await manager.post(f"/agreements/{agreement['id']}/suspend", {"reason": "review"})
    async with world.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(audit_log.c.action, audit_log.c.region_code, audit_log.c.client_id).where(
                    audit_log.c.entity_id == agreement["id"]
                )
            )
        ).all()
        suspended_at = await conn.scalar(sa.select(agreements.c.suspended_at))
    assert [(r.action, r.region_code) for r in rows] == [
        ("agreement.created", "230100"),
        ("agreement.deposit", "230100"),
        ("agreement.suspended", "230100"),
    ]
    assert all(r.client_id for r in rows)
    assert suspended_at is not None

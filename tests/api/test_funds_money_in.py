"""Funds and money in through the API: worked example 5, position, reversals, refusals."""

from __future__ import annotations

from tests.support import Api, World, assert_problem, make_allocation, make_fund


async def test_worked_example_5_matching(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    allocation = await make_allocation(manager, amount="3000000.00", ratio="100", due="2026-12-31")
    response = await manager.post(
        "/funds/HRB/contributions",
        {
            "source": "local_match",
            "amount": "1200000.00",
            "received_on": "2026-03-01",
            "reference": "L-1",
            "allocation_id": allocation["id"],
        },
    )
    assert response.status_code == 201, response.text

    report = (await manager.get("/funds/HRB/matching", {"as_of": "2026-12-31"})).json()
    item = report["items"][0]
    assert (item["required"], item["matched"], item["shortfall"], item["status"]) == (
        "3000000.00",
        "1200000.00",
        "1800000.00",
        "pending",
    )
    late = (await manager.get("/funds/HRB/matching", {"as_of": "2027-01-01"})).json()
    assert late["items"][0]["status"] == "overdue"
    assert late["totals"]["shortfall"] == "1800000.00"


async def test_position_and_trial_balance_agree(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    allocation = await make_allocation(manager, amount="1000000.55")
    await manager.post(
        "/funds/HRB/contributions",
        {"source": "central", "amount": "250000", "received_on": "2026-05-01", "reference": "C-1"},
    )
    await manager.post(
        "/funds/HRB/subsidy-budget", {"amount": "80000", "received_on": "2026-05-02", "reference": "S-1"}
    )
    fund = (await manager.get("/funds/HRB")).json()
    position = fund["position"]
    assert position["cash"] == "1250000.55"
    assert position["contributed"] == "1250000.55"
    assert position["subsidy_budget"] == "80000.00"
    tb = (await manager.get("/funds/HRB/trial-balance")).json()
    assert tb["total_debit"] == tb["total_credit"] == "1330000.55"
    by_name = {line["account"]: line for line in tb["accounts"]}
    assert by_name["cash"]["balance"] == position["cash"]
    assert by_name["capital:provincial"]["credit"] == "1000000.55"
    assert allocation["matching"]["required"] == "1000000.55"


async def test_reversal_restores_cash_and_is_refused_twice(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    allocation = await make_allocation(manager, amount="500000")
    response = await manager.post(
        f"/funds/HRB/allocations/{allocation['id']}/reverse", {"reason": "wrong fund"}
    )
    assert response.status_code == 201, response.text
    fund = (await manager.get("/funds/HRB")).json()
    assert fund["position"]["cash"] == "0.00"
    assert fund["position"]["contributed"] == "0.00"
    again = await manager.post(f"/funds/HRB/allocations/{allocation['id']}/reverse", {"reason": "again"})
    assert_problem(again, 409, "invalid_state")
    report = (await manager.get("/funds/HRB/matching")).json()
    assert report["items"] == []


async def test_local_match_needs_allocation(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    response = await manager.post(
        "/funds/HRB/contributions",
        {"source": "local_match", "amount": "10", "received_on": "2026-03-01", "reference": "L"},
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "allocation_id"
    response = await manager.post(
        "/funds/HRB/contributions",
        {"source": "lottery", "amount": "10", "received_on": "2026-03-01", "reference": "L"},
    )
    assert_problem(response, 422, "validation_error")


async def test_money_input_rules(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    base = {
        "received_on": "2026-01-10",
        "reference": "P",
        "match_ratio_pct": "100",
        "match_due_on": "2026-12-31",
    }
    for bad in [
        1000,
        "1000.001",
        "-5",
        "1e3",
        " 100",
        "1,000",
        "０１",
        "01",
        "",
        "NaN",
        "Infinity",
        "0",
        "99999999999999",
        None,
        True,
    ]:
        response = await manager.post("/funds/HRB/allocations", {**base, "amount": bad})
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "amount", (bad, body)
    for good, shown in [("20000", "20000.00"), ("20000.5", "20000.50"), ("0.01", "0.01")]:
        response = await manager.post("/funds/HRB/allocations", {**base, "amount": good})
        assert response.status_code == 201, response.text
        assert response.json()["amount"] == shown
    fund = (await manager.get("/funds/HRB")).json()
    assert fund["position"]["cash"] == "40000.51"


async def test_bad_requests_change_nothing(admin: Api, manager: Api) -> None:
    await make_fund(admin)
    path = "/funds/HRB/allocations"
    assert_problem(await manager.post(path, content=b"{not json"), 400, "malformed_request")
    good = {
        "amount": "10",
        "received_on": "2026-01-10",
        "reference": "P",
        "match_ratio_pct": "100",
        "match_due_on": "2026-12-31",
    }
    body = assert_problem(await manager.post(path, {**good, "extra": 1}), 400, "unknown_field")
    assert body["field"] == "extra"
    assert_problem(await manager.post(path, {**good, "received_on": "2026-02-30"}), 422, "validation_error")
    assert_problem(await manager.post(path, {**good, "received_on": "2026-11-28"}), 422, "future_date")
    assert_problem(await manager.post(path, {**good, "match_ratio_pct": 100}), 422, "validation_error")
    missing = dict(good)
    del missing["reference"]
    body = assert_problem(await manager.post(path, missing), 422, "validation_error")
    assert body["errors"] == [{"field": "reference", "message": "is required"}]
    assert_problem(await manager.post(path, [good]), 422, "validation_error")
    fund = (await manager.get("/funds/HRB")).json()
    assert fund["position"]["cash"] == "0.00"
    tb = (await manager.get("/funds/HRB/trial-balance")).json()
    assert tb["accounts"] == []


async def test_create_fund_refusals(admin: Api) -> None:
    await make_fund(admin)
    fund = {
        "code": "HRB",
        "name": "x",
        "region_code": "230100",
        "policy_edition": "cn-2008",
        "currency": "CNY",
    }
    assert_problem(await admin.post("/funds", fund), 409, "duplicate")
    assert_problem(
        await admin.post("/funds", {**fund, "code": "N2", "policy_edition": "cn-1999"}),
        422,
        "unknown_policy_edition",
    )
    assert_problem(
        await admin.post("/funds", {**fund, "code": "N3", "region_code": "2301"}), 422, "validation_error"
    )
    assert_problem(
        await admin.post("/funds", {**fund, "code": "N4", "currency": "USD"}), 422, "validation_error"
    )
    response = await admin.post("/funds", {**fund, "code": "N5", "policy_overrides": {"no_such_param": 1}})
    assert response.status_code == 422, response.text
    response = await admin.post(
        "/funds", {**fund, "code": "N6", "policy_overrides": {"reservation_days": 30}}
    )
    assert response.status_code == 201, response.text


async def test_reversal_refused_when_cash_has_left(world: World, admin: Api, manager: Api) -> None:
    """Cash placed at a bank cannot be reversed away: the reversal would make cash negative."""
    from loanfund import ledger, uow
    from loanfund.ledger import accounts
    from tests.support import SETUP

    await make_fund(admin)
    allocation = await make_allocation(manager, amount="1000")
    async with uow.transaction(world.engine, SETUP) as tx:
        await ledger.post(
            tx,
            fund_code="HRB",
            entry_date=__import__("datetime").date(2026, 2, 1),
            kind="deposit",
            description="placed at bank",
            lines=ledger.transfer(accounts.deposit("B1"), accounts.CASH, 60000),
        )
    response = await manager.post(f"/funds/HRB/allocations/{allocation['id']}/reverse", {"reason": "x"})
    body = assert_problem(response, 409, "insufficient_fund_cash")
    assert body["cash"] == "400.00"
    fund = (await manager.get("/funds/HRB")).json()
    assert fund["position"]["cash"] == "400.00"

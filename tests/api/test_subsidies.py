"""Interest subsidy claims through the API, on SQLite and PostgreSQL.

Worked examples 1–3 of domain.md §9 to the fen, exclusions from loans as the bank reported them,
the claim workflow (file, review with maker-checker, pay from the subsidy budget), every refusal
leaving the ledger unchanged, exports, and the list.

Loans are made in the past by moving the business date (`LOANFUND_BUSINESS_DATE`) while lending, and
back to TODAY to claim.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from loanfund import uow
from loanfund.audit import Actor
from loanfund.errors import Duplicate
from loanfund.subsidies import service as subsidy_service
from tests.support import (
    TODAY,
    Api,
    World,
    application_body,
    assert_problem,
    make_agreement,
    make_allocation,
    make_deposit,
    make_fund,
    make_uscc,
    register_person,
)

Setup = dict[str, Any]


def at(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", day)


async def fund_at(
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    admin: Api,
    manager: Api,
    *,
    on: str,
    edition: str,
    fund: str = "HRB",
    bank: str = "ICBC",
    deposit: str = "1000000",
    **extra: Any,
) -> Setup:
    """A fund lending from `on`: money in, a bank with an agreement and a deposit, a window, the bank."""
    at(monkeypatch, on)
    await make_fund(admin, code=fund, edition=edition, **extra)
    await make_allocation(manager, fund=fund, amount="3000000", received_on=on, due=on)
    made = await admin.post("/banks", {"code": bank, "name": f"Bank {bank}"})
    assert made.status_code in (201, 409), made.text
    agreement = await make_agreement(manager, fund=fund, bank=bank, effective_from=on)
    await make_deposit(manager, agreement["id"], deposit, on=on)
    return {
        "fund": fund,
        "bank": bank,
        "window": await world.caller("window", region="2301"),
        "bank_api": await world.caller("bank", bank=bank),
    }


async def lend(
    monkeypatch: pytest.MonkeyPatch,
    manager: Api,
    setup: Setup,
    *,
    on: str,
    amount: str,
    term: int,
    rate: str,
    maturity: str,
    seq: str = "01",
    firm: bool = False,
) -> dict[str, Any]:
    at(monkeypatch, on)
    window: Api = setup["window"]
    if firm:
        response = await window.post(
            "/borrowers",
            {
                "kind": "enterprise",
                "uscc": make_uscc(f"MA1B2C3{seq}"),
                "name": f"Firm {seq}",
                "staff_count": 20,
                "eligible_new_hires": 6,
                "categories": ["small_firm"],
            },
        )
        assert response.status_code == 201, response.text
        borrower = response.json()
    else:
        borrower = await register_person(window, birth="19700101", seq=seq)
    body = application_body(
        borrower["id"], fund=setup["fund"], bank=setup["bank"], amount=amount, term_months=term, applied_on=on
    )
    response = await window.post("/applications", body)
    assert response.status_code == 201, response.text
    app = response.json()
    response = await manager.post(f"/applications/{app['id']}/approve")
    assert response.status_code == 200, response.text
    response = await setup["bank_api"].post(
        "/loans",
        {
            "application_id": app["id"],
            "loan_number": f"L-{seq}",
            "principal": amount,
            "annual_rate_pct": rate,
            "disbursed_on": on,
            "maturity_on": maturity,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def file(monkeypatch: pytest.MonkeyPatch, bank: Api, fund: str, period: str) -> Any:
    at(monkeypatch, TODAY)
    return await bank.post("/subsidy-claims", {"fund_code": fund, "period": period})


def line_of(claim: dict[str, Any], loan: dict[str, Any]) -> dict[str, Any]:
    [line] = [x for x in claim["lines"] if x["loan_id"] == loan["id"]]
    return line


# ---- worked examples -----------------------------------------------------------------------------


async def example_1(monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api) -> Setup:
    """Example 1: two cn-2008 loans of 50,000.00 at 5.40% from 2009-03-10, the second repaid on the 20th."""
    setup = await fund_at(monkeypatch, world, admin, manager, on="2009-03-10", edition="cn-2008")
    kept = await lend(
        monkeypatch,
        manager,
        setup,
        on="2009-03-10",
        amount="50000",
        term=24,
        rate="5.40",
        maturity="2011-03-10",
        seq="01",
    )
    repaid = await lend(
        monkeypatch,
        manager,
        setup,
        on="2009-03-10",
        amount="50000",
        term=24,
        rate="5.40",
        maturity="2011-03-10",
        seq="02",
    )
    at(monkeypatch, "2009-03-20")
    response = await setup["bank_api"].post(
        f"/loans/{repaid['id']}/repayments", {"principal": "50000", "interest": "75", "paid_on": "2009-03-20"}
    )
    assert response.status_code == 201, response.text
    return {**setup, "kept": kept, "repaid": repaid}


async def test_worked_example_1(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    setup = await example_1(monkeypatch, world, admin, manager)
    response = await file(monkeypatch, setup["bank_api"], "HRB", "2009Q1")
    assert response.status_code == 201, response.text
    claim = response.json()
    assert (claim["status"], claim["period"], claim["currency"]) == ("submitted", "2009Q1", "CNY")
    kept = line_of(claim, setup["kept"])
    assert (kept["days"], kept["excluded_days"], kept["interest"], kept["subsidy"]) == (
        22,
        0,
        "165.00",
        "165.00",
    )
    assert (kept["opening_principal"], kept["closing_principal"]) == ("0.00", "50000.00")
    assert (kept["annual_rate_pct"], kept["reference_rate_pct"], kept["subsidy_rate_pct"]) == (
        "5.4",
        "5.4",
        "5.4",
    )
    [span] = kept["spans"]
    assert (span["from"], span["to"], span["days"], span["principal"], span["share"]) == (
        "2009-03-10",
        "2009-04-01",
        22,
        "50000.00",
        "1",
    )
    assert span["subsidy_exact"] == "165.000000"
    repaid = line_of(claim, setup["repaid"])
    assert (repaid["days"], repaid["subsidy"], repaid["closing_principal"]) == (10, "75.00", "0.00")
    assert claim["total"] == "240.00"
    again = await setup["bank_api"].get(f"/subsidy-claims/{claim['id']}")
    assert again.status_code == 200 and again.json() == claim


async def test_worked_example_2(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    setup = await fund_at(
        monkeypatch,
        world,
        admin,
        manager,
        on="2023-01-10",
        edition="cn-2020",
        policy_overrides={"rate_tier_default": 3},
    )
    loan = await lend(
        monkeypatch,
        manager,
        setup,
        on="2023-01-10",
        amount="200000",
        term=36,
        rate="6.15",
        maturity="2026-01-10",
    )
    assert loan["reference_rate_pct"] == "3.65"
    claim = (await file(monkeypatch, setup["bank_api"], "HRB", "2023Q3")).json()
    line = line_of(claim, loan)
    assert (line["days"], line["subsidy_rate_pct"], line["subsidy"], line["interest"]) == (
        92,
        "4",
        "2044.44",
        "3143.33",
    )
    assert Decimal(line["interest"]) - Decimal(line["subsidy"]) == Decimal("1098.89")  # the borrower's 2.15%
    assert line["spans"][0]["rule"] == "borrower_cap"


async def test_worked_example_3(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    setup = await fund_at(monkeypatch, world, admin, manager, on="2016-10-01", edition="cn-2008")
    loan = await lend(
        monkeypatch,
        manager,
        setup,
        on="2016-10-01",
        amount="2000000",
        term=12,
        rate="4.35",
        maturity="2017-10-01",
        firm=True,
    )
    claim = (await file(monkeypatch, setup["bank_api"], "HRB", "2017Q1")).json()
    line = line_of(claim, loan)
    assert (line["days"], line["subsidy_rate_pct"], line["subsidy"]) == (90, "2.175", "10875.00")
    assert (line["spans"][0]["rate_pct"], line["spans"][0]["share"]) == ("4.35", "1/2")


# ---- exclusions from what the bank reported --------------------------------------------------------


async def one_year_loan(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> tuple[Api, dict[str, Any]]:
    """A cn-2008 fund from 2009-01-05 and its bank's twelve-month loan of 36,000.00 at 5.40%."""
    setup = await fund_at(monkeypatch, world, admin, manager, on="2009-01-05", edition="cn-2008")
    loan = await lend(
        monkeypatch,
        manager,
        setup,
        on="2009-01-05",
        amount="36000",
        term=12,
        rate="5.40",
        maturity="2010-01-05",
    )
    return setup["bank_api"], loan


async def reported(
    monkeypatch: pytest.MonkeyPatch,
    bank: Api,
    loan: dict[str, Any],
    day: str,
    path: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """What the bank reports of the loan on `day` (`overdue`, `repayments`, `extensions`)."""
    at(monkeypatch, day)
    response = await bank.post(f"/loans/{loan['id']}/{path}", body)
    assert response.status_code == (201 if path == "repayments" else 200), response.text
    return dict(response.json())


async def test_overdue_spell_part_repayment_and_extension(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    bank, loan = await one_year_loan(monkeypatch, world, admin, manager)
    overdue = {"overdue_since": "2009-05-05", "overdue_principal": "1000"}
    await reported(monkeypatch, bank, loan, "2009-05-10", "overdue", overdue)
    repayment = {"principal": "1000", "interest": "0", "paid_on": "2009-05-20"}
    assert (await reported(monkeypatch, bank, loan, "2009-05-20", "repayments", repayment))[
        "overdue_since"
    ] is None
    extension = {"new_maturity_on": "2010-07-05", "guarantor_consent": True}
    await reported(monkeypatch, bank, loan, "2010-01-04", "extensions", extension)

    q2 = line_of((await file(monkeypatch, bank, "HRB", "2009Q2")).json(), loan)
    assert q2["exclusions"] == [{"from": "2009-05-05", "to": "2009-05-20", "days": 15, "reason": "overdue"}]
    assert (q2["days"], q2["excluded_days"], q2["repaid"], q2["closing_principal"]) == (
        91,
        15,
        "1000.00",
        "35000.00",
    )
    # 36,000 × 5.40% × 34/360 + 35,000 × 5.40% × 42/360 = 183.60 + 220.50 (the spell's 15 days left out)
    assert q2["subsidy"] == "404.10"
    q1_2010 = line_of((await file(monkeypatch, bank, "HRB", "2010Q1")).json(), loan)
    assert q1_2010["exclusions"] == [
        {"from": "2010-01-05", "to": "2010-04-01", "days": 86, "reason": "extension"}
    ]
    assert q1_2010["subsidy"] == "21.00"  # 35,000 × 5.40% × 4/360


# ---- the workflow --------------------------------------------------------------------------------


async def ledger_state(manager: Api, fund: str = "HRB") -> tuple[Any, Any]:
    tb = (await manager.get(f"/funds/{fund}/trial-balance")).json()
    entries = (await manager.get(f"/funds/{fund}/ledger")).json()
    return tb, entries


async def test_claim_review_and_payment(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    setup = await example_1(monkeypatch, world, admin, manager)
    bank: Api = setup["bank_api"]
    other_bank = await world.caller("bank", bank="BOC")

    # Refusals when filing: nothing stored, nothing posted.
    before = await ledger_state(manager)
    assert_problem(await file(monkeypatch, bank, "HRB", "2026Q4"), 409, "period_not_closed")
    assert_problem(await file(monkeypatch, bank, "HRB", "2009H1"), 422, "validation_error")
    assert_problem(await file(monkeypatch, bank, "HRB", "2009Q5"), 422, "validation_error")
    assert_problem(await file(monkeypatch, other_bank, "HRB", "2009Q1"), 404, "not_found")
    assert_problem(await file(monkeypatch, bank, "NOPE", "2009Q1"), 404, "not_found")
    assert_problem(
        await manager.post("/subsidy-claims", {"fund_code": "HRB", "period": "2009Q1"}), 403, "forbidden"
    )
    claim = (await file(monkeypatch, bank, "HRB", "2009Q1")).json()
    duplicate = assert_problem(await file(monkeypatch, bank, "HRB", "2009Q1"), 409, "duplicate")
    assert duplicate["id"] == claim["id"]
    assert_problem(await other_bank.get(f"/subsidy-claims/{claim['id']}"), 404, "not_found")
    assert_problem(await manager.post(f"/subsidy-claims/{claim['id']}/pay"), 409, "invalid_state")

    # Review: 403 for the bank, 422 for bad decisions, then approved with both lines adjusted.
    repaid_id = setup["repaid"]["id"]
    assert_problem(
        await bank.post(f"/subsidy-claims/{claim['id']}/review", {"decisions": []}), 403, "forbidden"
    )
    for decisions in (
        [{"loan_id": repaid_id, "approved_subsidy": "70"}],  # changed without a reason
        [{"loan_id": repaid_id, "approved_subsidy": "80", "reason": "more"}],  # above the claim
        [{"loan_id": "loan_nope", "approved_subsidy": "0", "reason": "x"}],
        [{"loan_id": repaid_id, "approved_subsidy": 70, "reason": "number"}],
    ):
        response = await manager.post(f"/subsidy-claims/{claim['id']}/review", {"decisions": decisions})
        assert_problem(response, 422, "validation_error")
    response = await manager.post(
        f"/subsidy-claims/{claim['id']}/review",
        {
            "decisions": [
                {"loan_id": repaid_id, "approved_subsidy": "70", "reason": "repaid early; agreed 70"},
                {"loan_id": setup["kept"]["id"], "approved_subsidy": "160", "reason": "capped at 160"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    approved = response.json()
    assert (approved["status"], approved["total"], approved["approved_total"]) == (
        "approved",
        "240.00",
        "230.00",
    )
    assert line_of(approved, setup["repaid"])["review_reason"] == "repaid early; agreed 70"
    assert line_of(approved, setup["repaid"])["approved_subsidy"] == "70.00"
    assert line_of(approved, setup["kept"])["approved_subsidy"] == "160.00"
    assert line_of(approved, setup["kept"])["review_reason"] == "capped at 160"
    assert_problem(await manager.post(f"/subsidy-claims/{claim['id']}/review", {}), 409, "invalid_state")
    assert await ledger_state(manager) == before

    # Pay: short budget refused with nothing changed; then paid once.
    short = assert_problem(
        await manager.post(f"/subsidy-claims/{claim['id']}/pay"), 409, "insufficient_subsidy_budget"
    )
    assert (short["subsidy_budget"], short["amount"]) == ("0.00", "230.00")
    response = await manager.post(
        "/funds/HRB/subsidy-budget", {"amount": "200", "received_on": TODAY, "reference": "S-1"}
    )
    assert response.status_code == 201, response.text
    before = await ledger_state(manager)
    short = assert_problem(
        await manager.post(f"/subsidy-claims/{claim['id']}/pay"), 409, "insufficient_subsidy_budget"
    )
    assert short["shortfall"] == "30.00"
    assert await ledger_state(manager) == before
    assert (await manager.get(f"/subsidy-claims/{claim['id']}")).json()["status"] == "approved"
    await manager.post(
        "/funds/HRB/subsidy-budget", {"amount": "100", "received_on": TODAY, "reference": "S-2"}
    )
    response = await manager.post(f"/subsidy-claims/{claim['id']}/pay")
    assert response.status_code == 200, response.text
    paid = response.json()
    assert (paid["status"], paid["paid_on"]) == ("paid", TODAY)
    tb = (await manager.get("/funds/HRB/trial-balance")).json()
    balances = {a["account"]: a["balance"] for a in tb["accounts"]}
    assert balances["subsidy_paid:ICBC"] == "230.00" and balances["subsidy_budget"] == "70.00"
    assert (await manager.get("/funds/HRB")).json()["position"]["subsidy_budget"] == "70.00"
    before = await ledger_state(manager)
    assert_problem(await manager.post(f"/subsidy-claims/{claim['id']}/pay"), 409, "invalid_state")
    assert await ledger_state(manager) == before

    events = [e for e in (await bank.get("/events")).json()["items"] if e["type"].startswith("subsidy")]
    assert [(e["type"], e["data"]["claim_id"]) for e in events] == [
        ("subsidy_claim_approved", claim["id"]),
        ("subsidy_paid", claim["id"]),
    ]
    assert events[1]["data"]["amount"] == "230.00"
    assert not [
        e for e in (await other_bank.get("/events")).json()["items"] if e["type"].startswith("subsidy")
    ]
    audit = (await admin.get("/audit", {"entity": "subsidy_claim", "limit": 500})).json()["items"]
    actions = [a["action"] for a in audit if a["entity_id"] == claim["id"]]
    assert actions == ["subsidy_claim.filed", "subsidy_claim.approved", "subsidy_claim.paid"]


async def test_maker_checker_and_admin_filing(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    await example_1(monkeypatch, world, admin, manager)
    at(monkeypatch, TODAY)
    assert_problem(
        await admin.post("/subsidy-claims", {"fund_code": "HRB", "period": "2009Q1"}), 422, "validation_error"
    )
    response = await admin.post(
        "/subsidy-claims", {"fund_code": "HRB", "period": "2009Q1", "bank_code": "ICBC"}
    )
    assert response.status_code == 201, response.text
    claim = response.json()
    assert_problem(await admin.post(f"/subsidy-claims/{claim['id']}/review", {}), 403, "same_maker_checker")
    assert (await manager.post(f"/subsidy-claims/{claim['id']}/review", {})).json()[
        "approved_total"
    ] == "240.00"


async def test_list_and_exports(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    setup = await example_1(monkeypatch, world, admin, manager)
    bank: Api = setup["bank_api"]
    q1 = (await file(monkeypatch, bank, "HRB", "2009Q1")).json()
    q2 = (await file(monkeypatch, bank, "HRB", "2009Q2")).json()
    await manager.post(f"/subsidy-claims/{q1['id']}/review", {})

    listed = (await bank.get("/subsidy-claims", {"fund_code": "HRB"})).json()
    assert [c["id"] for c in listed["items"]] == sorted([q1["id"], q2["id"]])
    assert "lines" not in listed["items"][0]
    submitted = (await manager.get("/subsidy-claims", {"status": "submitted"})).json()["items"]
    assert [c["id"] for c in submitted] == [q2["id"]]
    first = (await manager.get("/subsidy-claims", {"limit": 1})).json()
    rest = (await manager.get("/subsidy-claims", {"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [c["id"] for c in first["items"] + rest["items"]] == sorted([q1["id"], q2["id"]])
    assert (await (await world.caller("bank", bank="BOC")).get("/subsidy-claims")).json()["items"] == []
    outside = await world.caller("fund_manager", region="1101")
    assert (await outside.get("/subsidy-claims")).json()["items"] == []
    assert_problem(await outside.get(f"/subsidy-claims/{q1['id']}"), 404, "not_found")
    assert_problem(await manager.get("/subsidy-claims", {"status": "lost"}), 422, "validation_error")

    claim = (await manager.get(f"/subsidy-claims/{q1['id']}")).json()
    response = await manager.get(f"/subsidy-claims/{q1['id']}", {"format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    headings, data, totals = rows[1], rows[2:-1], rows[-1]
    assert headings[:3] == ("序号", "贷款编号", "期初本金")
    column = {name: index for index, name in enumerate(headings)}
    assert len(data) == len(claim["lines"]) == 2
    assert totals[0] == "合计" and totals[column["贷款编号"]] == 2
    for name, key in (("申请贴息", "total"), ("核定贴息", "approved_total"), ("利息", "interest")):
        assert isinstance(totals[column[name]], int | float)
        assert Decimal(str(totals[column[name]])).quantize(Decimal("0.01")) == Decimal(claim[key])
        assert sum(Decimal(str(r[column[name]])) for r in data).quantize(Decimal("0.01")) == Decimal(
            claim[key]
        )
    closing = sum(Decimal(line["closing_principal"]) for line in claim["lines"])
    assert Decimal(str(totals[column["期末本金"]])) == closing

    response = await manager.get(f"/subsidy-claims/{q1['id']}", {"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    csv_rows = list(csv.reader(io.StringIO(text)))
    assert csv_rows[1] == list(headings)
    assert csv_rows[-1][column["申请贴息"]] == "240.00" and csv_rows[-1][column["核定贴息"]] == "240.00"
    by_accept = await manager.http.get(
        f"/api/v1/subsidy-claims/{q1['id']}", headers={**manager.headers("", None), "Accept": "text/csv"}
    )
    assert by_accept.content == response.content
    assert_problem(
        await manager.get(f"/subsidy-claims/{q1['id']}", {"format": "pdf"}), 422, "validation_error"
    )


async def test_library_computes_and_files_without_http(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    from datetime import date

    from loanfund import uow
    from loanfund.audit import Actor
    from loanfund.money import format_fen
    from loanfund.subsidies import service as subsidies
    from loanfund.subsidies.periods import parse_period

    setup = await example_1(monkeypatch, world, admin, manager)
    script = Actor(client_id=None, request_id="script:subsidy-2009Q1")
    async with uow.transaction(world.engine, script, today=date(2009, 4, 8)) as tx:
        lines = await subsidies.compute_claim_lines(
            tx, fund_code="HRB", bank_code="ICBC", period=parse_period("2009Q1")
        )
        assert sorted((x.loan_number, x.days, format_fen(x.subsidy_fen)) for x in lines) == [
            ("L-01", 22, "165.00"),
            ("L-02", 10, "75.00"),
        ]
        claim_id = await subsidies.file_claim(tx, fund_code="HRB", bank_code="ICBC", period="2009Q1")
    claim = (await setup["bank_api"].get(f"/subsidy-claims/{claim_id}")).json()
    assert (claim["total"], claim["filed_on"]) == ("240.00", "2009-04-08")
    audit = (await admin.get("/audit", {"entity": "subsidy_claim"})).json()["items"]
    assert [a["action"] for a in audit] == ["subsidy_claim.filed"]


@pytest.mark.postgres_only
async def test_concurrent_filing_and_paying(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    """Racing requests on PostgreSQL: one claim per bank, fund and period; a budget paid out once."""
    setup = await example_1(monkeypatch, world, admin, manager)
    bank: Api = setup["bank_api"]
    at(monkeypatch, TODAY)
    filed = await asyncio.gather(
        *[bank.post("/subsidy-claims", {"fund_code": "HRB", "period": "2009Q1"}) for _ in range(6)]
    )
    assert sorted(r.status_code for r in filed) == [201] + [409] * 5
    [claim] = [r.json() for r in filed if r.status_code == 201]
    assert all(
        r.json()["code"] == "duplicate" and r.json()["id"] == claim["id"]
        for r in filed
        if r.status_code == 409
    )
    q2 = (await file(monkeypatch, bank, "HRB", "2009Q2")).json()
    for one in (claim, q2):
        assert (await manager.post(f"/subsidy-claims/{one['id']}/review", {})).status_code == 200
    # Budget for the larger claim only: whichever is paid first, the other is refused.
    budget = max(Decimal(claim["total"]), Decimal(q2["total"]))
    await manager.post(
        "/funds/HRB/subsidy-budget", {"amount": str(budget), "received_on": TODAY, "reference": "S"}
    )
    paid = await asyncio.gather(
        *[manager.post(f"/subsidy-claims/{c['id']}/pay") for c in (claim, q2, claim, q2)]
    )
    codes = sorted((r.status_code, r.json().get("code")) for r in paid)
    assert codes.count((200, None)) == 1, codes
    assert all(
        code in ("insufficient_subsidy_budget", "invalid_state") for status, code in codes if status != 200
    )
    fund = (await manager.get("/funds/HRB")).json()
    assert Decimal(fund["position"]["subsidy_budget"]) >= 0
    tb = (await manager.get("/funds/HRB/trial-balance")).json()
    assert tb["total_debit"] == tb["total_credit"]
    paid_total = sum(
        Decimal(a["balance"]) for a in tb["accounts"] if a["account"].startswith("subsidy_paid:")
    )
    assert paid_total + Decimal(fund["position"]["subsidy_budget"]) == budget


async def test_overdue_spells_follow_the_reports(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    """An earlier start moves the open spell; a cure on its first day leaves no overdue day. Each
    report is a missed instalment of its own (loanfund/loans/delinquency.py): the spell ends when
    both are paid."""
    bank, loan = await one_year_loan(monkeypatch, world, admin, manager)

    def post(day: str, path: str, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        return reported(monkeypatch, bank, loan, day, path, body)

    await post("2009-05-10", "overdue", {"overdue_since": "2009-05-05", "overdue_principal": "1000"})
    await post("2009-05-12", "overdue", {"overdue_since": "2009-05-01", "overdue_principal": "1000"})
    await post("2009-05-20", "repayments", {"principal": "2000", "interest": "0", "paid_on": "2009-05-20"})
    await post("2009-06-01", "overdue", {"overdue_since": "2009-06-01", "overdue_principal": "0"})
    await post("2009-06-01", "repayments", {"principal": "0", "interest": "150", "paid_on": "2009-06-01"})
    line = line_of((await file(monkeypatch, bank, "HRB", "2009Q2")).json(), loan)
    assert line["exclusions"] == [{"from": "2009-05-01", "to": "2009-05-20", "days": 19, "reason": "overdue"}]


async def test_arrears_paid_in_two_steps_end_the_spell(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    """Two missed instalments paid one at a time: the loan stays overdue from the first until the
    second is paid, then it is subsidised again (the spell neither moves to the second instalment
    nor stays open)."""
    bank, loan = await one_year_loan(monkeypatch, world, admin, manager)

    def post(day: str, path: str, body: dict[str, Any]) -> Awaitable[dict[str, Any]]:
        return reported(monkeypatch, bank, loan, day, path, body)

    await post("2009-05-02", "overdue", {"overdue_since": "2009-05-01", "overdue_principal": "1000"})
    await post("2009-06-02", "overdue", {"overdue_since": "2009-06-01", "overdue_principal": "1000"})
    first = await post(
        "2009-06-10", "repayments", {"principal": "1000", "interest": "0", "paid_on": "2009-06-10"}
    )
    assert first["overdue_since"] == "2009-06-01"  # the second instalment is still missed
    second = await post(
        "2009-06-20", "repayments", {"principal": "1000", "interest": "0", "paid_on": "2009-06-20"}
    )
    assert second["overdue_since"] is None
    q2 = line_of((await file(monkeypatch, bank, "HRB", "2009Q2")).json(), loan)
    assert q2["exclusions"] == [{"from": "2009-05-01", "to": "2009-06-20", "days": 50, "reason": "overdue"}]
    q3 = line_of((await file(monkeypatch, bank, "HRB", "2009Q3")).json(), loan)
    assert (q3["excluded_days"], q3["exclusions"]) == (0, [])
    assert q3["subsidy"] == q3["interest"] != "0.00"


async def quarters_and_halves(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> Setup:
    """A cn-2008 fund that takes claims by quarter and by half-year, with one loan from 2009-03-10."""
    setup = await fund_at(
        monkeypatch,
        world,
        admin,
        manager,
        on="2009-03-10",
        edition="cn-2008",
        policy_overrides={"subsidy_period_kinds": ["quarter", "half"]},
    )
    await lend(
        monkeypatch,
        manager,
        setup,
        on="2009-03-10",
        amount="50000",
        term=24,
        rate="5.40",
        maturity="2011-03-10",
    )
    return setup


async def test_a_period_overlapping_one_claimed_is_a_duplicate(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    """A fund that takes quarters and halves: the half holding a claimed quarter (and a quarter inside
    a claimed half) would pay the same days twice."""
    setup = await quarters_and_halves(monkeypatch, world, admin, manager)
    bank = setup["bank_api"]
    quarter = await file(monkeypatch, bank, "HRB", "2009Q1")
    assert quarter.status_code == 201, quarter.text
    before = await ledger_state(manager)
    half = assert_problem(await file(monkeypatch, bank, "HRB", "2009H1"), 409, "duplicate")
    assert half["id"] == quarter.json()["id"]
    second_half = await file(monkeypatch, bank, "HRB", "2009H2")
    assert second_half.status_code == 201, second_half.text
    inside = assert_problem(await file(monkeypatch, bank, "HRB", "2009Q4"), 409, "duplicate")
    assert inside["id"] == second_half.json()["id"]
    assert (await file(monkeypatch, bank, "HRB", "2009Q2")).status_code == 201
    assert await ledger_state(manager) == before
    listed = (await bank.get("/subsidy-claims")).json()["items"]
    assert sorted(c["period"] for c in listed) == ["2009H2", "2009Q1", "2009Q2"]


@pytest.mark.postgres_only
async def test_overlapping_filings_take_turns(
    monkeypatch: pytest.MonkeyPatch, world: World, admin: Api, manager: Api
) -> None:
    """Two filings of overlapping periods by one bank, in two open transactions: the second waits for
    the first (the pair's row is locked) and then sees its claim, so the days are claimed once."""
    await quarters_and_halves(monkeypatch, world, admin, manager)
    at(monkeypatch, TODAY)
    actor = Actor(client_id=None, request_id="race")

    async def file_half() -> str:
        async with uow.transaction(world.engine, actor) as tx:
            return await subsidy_service.file_claim(tx, fund_code="HRB", bank_code="ICBC", period="2009H1")

    async with uow.transaction(world.engine, actor) as first:
        quarter = await subsidy_service.file_claim(first, fund_code="HRB", bank_code="ICBC", period="2009Q1")
        second = asyncio.create_task(file_half())
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting on the pair's row
    with pytest.raises(Duplicate) as refused:
        await second
    assert refused.value.facts["id"] == quarter

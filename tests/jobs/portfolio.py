"""A small portfolio with loans in every state, built through the API on the dates things happened.

Fund HRB (cn-2016): banks ICBC (deposit 1,000,000.00 × 5) and ABC (deposit 20,000.00 × 5). Allocation
P-1 3,000,000.00 at 1:1 due 2026-12-31 with 1,200,000.00 matched; P-2 500,000.00 at 50% fully matched.

| loan | bank | principal | disbursed | maturity | later |
|---|---|---|---|---|---|
| L1 | ICBC | 50,000 | 2026-06-01 | 2026-12-15 | overdue from 2026-12-16 |
| L2 | ICBC | 40,000 | 2026-06-01 | 2027-01-20 | borrower laid_off, certificate inspected 2026 |
| L3 | ICBC | 30,000 | 2026-06-01 | 2027-06-01 | repaid in full 2026-09-01 |
| L4 | ICBC | 60,000 | 2026-06-01 | 2028-06-01 | missed instalment: overdue since 2026-10-01 |
| L5 | ICBC | 20,000 | 2026-06-01 | 2026-12-20 | extended on 2026-12-15 to 2027-03-20 |
| L6 | ABC  | 95,000 | 2026-06-01 | 2028-06-01 | 95% of ABC's capacity; 10,000 repaid 2026-12-22 |

Reservations: R1 50,000 (ICBC) approved 2026-12-05, never disbursed: last day 2026-12-26.
R2 30,000 (ICBC) approved 2026-12-20 (`approve_r2`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import (
    Api,
    World,
    application_body,
    make_agreement,
    make_allocation,
    make_deposit,
    make_fund,
    register_person,
)

LAID_OFF_CERT = {"kind": "reemployment", "number": "RE-1", "issued_on": "2020-03-01", "inspected_year": 2026}


@dataclass
class Portfolio:
    admin: Api
    manager: Api
    window: Api
    icbc: Api
    abc: Api
    agreements: dict[str, str] = field(default_factory=dict)
    loans: dict[str, str] = field(default_factory=dict)
    borrowers: dict[str, str] = field(default_factory=dict)
    applications: dict[str, str] = field(default_factory=dict)
    allocations: dict[str, str] = field(default_factory=dict)


def on(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", day)


async def approve(p: Portfolio, name: str, bank: str, amount: str, today: str, **person: Any) -> str:
    seq = f"{len(p.applications) + 10:02d}"
    borrower = await register_person(p.window, seq=seq, **person)
    p.borrowers[name] = borrower["id"]
    body = application_body(borrower["id"], bank=bank, amount=amount, term_months=12, applied_on=today)
    made = await p.window.post("/applications", body)
    assert made.status_code == 201, made.text
    app_id = made.json()["id"]
    approved = await p.manager.post(f"/applications/{app_id}/approve")
    assert approved.status_code == 200, approved.text
    p.applications[name] = app_id
    return str(app_id)


async def lend(p: Portfolio, name: str, bank: str, amount: str, maturity: str, **person: Any) -> str:
    app_id = await approve(p, name, bank, amount, "2026-06-01", **person)
    caller = p.icbc if bank == "ICBC" else p.abc
    made = await caller.post(
        "/loans",
        {
            "application_id": app_id,
            "loan_number": f"{bank}-{name}",
            "principal": amount,
            "annual_rate_pct": "4",
            "disbursed_on": "2026-06-01",
            "maturity_on": maturity,
        },
    )
    assert made.status_code == 201, made.text
    p.loans[name] = made.json()["id"]
    return str(made.json()["id"])


async def build(world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch) -> Portfolio:
    """Everything up to 2026-12-05; the steps of December are the test's."""
    on(monkeypatch, "2026-06-01")
    p = Portfolio(
        admin,
        manager,
        await world.caller("window", region="2301"),
        await world.caller("bank", bank="ICBC"),
        await world.caller("bank", bank="ABC"),
    )
    await make_fund(admin, edition="cn-2016")
    p1 = await make_allocation(manager, amount="3000000", received_on="2026-01-10", due="2026-12-31")
    p2 = await make_allocation(
        manager, amount="500000", received_on="2026-02-01", ratio="50", due="2026-12-31", reference="P-2"
    )
    p.allocations = {"P-1": p1["id"], "P-2": p2["id"]}
    for allocation, amount in ((p1, "1200000"), (p2, "250000")):
        made = await manager.post(
            "/funds/HRB/contributions",
            {
                "source": "local_match",
                "amount": amount,
                "received_on": "2026-05-01",
                "reference": f"M-{allocation['id'][-4:]}",
                "allocation_id": allocation["id"],
            },
        )
        assert made.status_code == 201, made.text
    for bank, deposit in (("ICBC", "1000000"), ("ABC", "20000")):
        agreement = await make_agreement(manager, bank=bank)
        p.agreements[bank] = agreement["id"]
        await make_deposit(manager, agreement["id"], deposit, on="2026-02-01", reference=f"D-{bank}")

    await lend(p, "L1", "ICBC", "50000", "2026-12-15")
    await lend(p, "L2", "ICBC", "40000", "2027-01-20", categories=("laid_off",), certificates=[LAID_OFF_CERT])
    await lend(p, "L3", "ICBC", "30000", "2027-06-01")
    await lend(p, "L4", "ICBC", "60000", "2028-06-01")
    await lend(p, "L5", "ICBC", "20000", "2026-12-20")
    await lend(p, "L6", "ABC", "95000", "2028-06-01")

    on(monkeypatch, "2026-09-01")
    repaid = await p.icbc.post(
        f"/loans/{p.loans['L3']}/repayments",
        {"principal": "30000", "interest": "300", "paid_on": "2026-09-01"},
    )
    assert repaid.status_code == 201 and repaid.json()["status"] == "repaid", repaid.text

    on(monkeypatch, "2026-10-05")
    missed = await p.icbc.post(
        f"/loans/{p.loans['L4']}/overdue", {"overdue_since": "2026-10-01", "overdue_principal": "5000"}
    )
    assert missed.status_code == 200, missed.text

    on(monkeypatch, "2026-12-05")
    await approve(p, "R1", "ICBC", "50000", "2026-12-05")
    return p


async def extend_l5(p: Portfolio) -> None:
    made = await p.icbc.post(
        f"/loans/{p.loans['L5']}/extensions", {"new_maturity_on": "2027-03-20", "guarantor_consent": True}
    )
    assert made.status_code == 200, made.text


async def approve_r2(p: Portfolio) -> None:
    await approve(p, "R2", "ICBC", "30000", "2026-12-20")


async def repay_abc(p: Portfolio) -> None:
    made = await p.abc.post(
        f"/loans/{p.loans['L6']}/repayments", {"principal": "10000", "interest": "0", "paid_on": "2026-12-22"}
    )
    assert made.status_code == 201, made.text


async def late_match(p: Portfolio) -> None:
    made = await p.manager.post(
        "/funds/HRB/contributions",
        {
            "source": "local_match",
            "amount": "1800000",
            "received_on": "2027-01-03",
            "reference": "M-late",
            "allocation_id": p.allocations["P-1"],
        },
    )
    assert made.status_code == 201, made.text

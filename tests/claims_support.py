"""Helpers for tests of defaults: a loan disbursed on a past day, then made overdue."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api, World, application_body, lending_setup, register_person

DISBURSED = "2026-07-01"
CLAIM_DAY = "2026-10-29"  # 120 interest days after DISBURSED


def at(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", day)


async def loan_on(
    world: World,
    manager: Api,
    bank: Api,
    monkeypatch: pytest.MonkeyPatch,
    *,
    seq: str = "01",
    principal: str = "60000",
    rate: str = "6",
    on: str = DISBURSED,
    maturity: str = "2028-07-01",
    window: Api | None = None,
    bank_code: str = "ICBC",
    fund: str = "HRB",
    person: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A loan applied for, approved and disbursed on `on` (the business date is left at `on`)."""
    at(monkeypatch, on)
    window = window or await world.caller("window", region="2301")
    borrower = await register_person(window, seq=seq, **(person or {}))
    body = application_body(borrower["id"], amount=principal, applied_on=on, bank=bank_code, fund=fund)
    app = (await window.post("/applications", body)).json()
    approved = await manager.post(f"/applications/{app['id']}/approve")
    assert approved.status_code == 200, approved.text
    response = await bank.post(
        "/loans",
        {
            "application_id": app["id"],
            "loan_number": f"LN-{seq}-{app['id'][-6:]}",
            "principal": principal,
            "annual_rate_pct": rate,
            "disbursed_on": on,
            "maturity_on": maturity,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def overdue(bank: Api, loan: dict[str, Any], since: str, principal: str = "0", **extra: Any) -> None:
    response = await bank.post(
        f"/loans/{loan['id']}/overdue", {"overdue_since": since, "overdue_principal": principal, **extra}
    )
    assert response.status_code == 200, response.text


def balances(tb: dict[str, Any]) -> dict[str, str]:
    return {line["account"]: line["balance"] for line in tb["accounts"] if line["balance"] != "0.00"}


async def ledger_state(manager: Api, fund: str = "HRB") -> tuple[dict[str, str], int]:
    """The fund's balances and how many journal entries it has."""
    tb = (await manager.get(f"/funds/{fund}/trial-balance")).json()
    entries = (await manager.get(f"/funds/{fund}/ledger", {"limit": 500})).json()["items"]
    return balances(tb), len(entries)


def position_holds(position: dict[str, Any]) -> bool:
    def fen(name: str) -> int:
        whole, _, cents = position[name].partition(".")
        return int(whole) * 100 + int(cents)

    return fen("cash") + fen("deposited") == (
        fen("contributed") - fen("compensation_paid") + fen("recovered")
    )


async def repay(bank: Api, loan: dict[str, Any], principal: str, interest: str, on: str) -> dict[str, Any]:
    """A repayment reported on `on`; the loan as the API returns it."""
    response = await bank.post(
        f"/loans/{loan['id']}/repayments", {"principal": principal, "interest": interest, "paid_on": on}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def bank_with_loan(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> tuple[Api, dict[str, Any]]:
    """ICBC lending at HRB from DISBURSED, and one loan of 60,000.00 it made that day."""
    at(monkeypatch, DISBURSED)
    await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    return bank, await loan_on(world, manager, bank, monkeypatch)

"""Concurrent claim decisions and recoveries on PostgreSQL: each is decided once, in turn."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from loanfund import ledger, uow
from loanfund.agreements import reservations
from loanfund.audit import Actor
from loanfund.claims import service as claims
from loanfund.errors import LoanfundError
from loanfund.ledger import accounts
from tests.claims_support import CLAIM_DAY, at, loan_on, overdue
from tests.support import Api, World, lending_setup

pytestmark = pytest.mark.postgres_only


async def test_concurrent_approvals_pay_once_and_recoveries_stop_at_what_was_paid(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    await lending_setup(admin, manager)
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    loans = [await loan_on(world, manager, bank, monkeypatch, seq=f"0{n}", window=window) for n in (1, 2)]
    at(monkeypatch, CLAIM_DAY)
    claim_ids = []
    for loan in loans:
        await overdue(bank, loan, "2026-07-27")
        filed = await bank.post("/compensation-claims", {"loan_id": loan["id"], "claimed_on": CLAIM_DAY})
        claim_ids.append(filed.json()["id"])

    async def approve(claim_id: str, n: int) -> str:
        try:
            async with uow.transaction(world.engine, Actor(f"manager-{n}")) as tx:
                await claims.approve_claim(tx, claim_id)
        except LoanfundError as refusal:
            return refusal.code
        return "paid"

    outcomes = await asyncio.gather(*(approve(claim_ids[n % 2], n) for n in range(12)))
    assert sorted(outcomes) == ["invalid_state"] * 10 + ["paid"] * 2
    async with world.engine.connect() as conn:
        deposit = await ledger.balance(conn, "HRB", accounts.deposit("ICBC"))
        live = await reservations.pair_capacity(conn, "HRB", "ICBC", today=at_day())
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=at_day())
    assert deposit == 100_000_000 - 2 * 4_896_000
    assert (live.outstanding_fen, rebuilt) == (0, live)

    # Ten recoveries of 10,000.00 at once: the fund's parts (8,000.00 each) fit six times in 48,960.00.
    async def recover(n: int) -> str:
        try:
            async with uow.transaction(world.engine, Actor(f"bank-{n}")) as tx:
                await claims.record_recovery(tx, loans[0]["id"], amount_fen=1_000_000, recovered_on=at_day())
        except LoanfundError as refusal:
            return refusal.code
        return "recovered"

    outcomes = await asyncio.gather(*(recover(n) for n in range(10)))
    assert sorted(outcomes) == ["invalid_state"] * 4 + ["recovered"] * 6
    async with world.engine.connect() as conn:
        recoverable = await ledger.balance(conn, "HRB", accounts.recoverable("ICBC"))
        tb = await ledger.trial_balance(conn, "HRB")
    assert recoverable == 2 * 4_896_000 - 6 * 800_000
    assert tb.total_debit_fen == tb.total_credit_fen


def at_day() -> date:
    return date.fromisoformat(CLAIM_DAY)

"""Concurrent capacity decisions never overrun a bank's multiple.

On PostgreSQL many connections race for the same fund × bank pair; the pair's row lock must let
exactly the decisions that fit through. On SQLite one process has one connection, so concurrent API
requests queue; the same figures must come out.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import ledger, uow
from loanfund.agreements import reservations, service
from loanfund.errors import InsufficientDeposit, LeverageExceeded
from tests.support import (
    SETUP,
    Api,
    World,
    library_pair,
    make_agreement,
    make_allocation,
    make_bank,
    make_fund,
)

TODAY = date(2026, 11, 27)
YUAN = 100


async def assert_rebuilds(engine: AsyncEngine) -> reservations.Capacity:
    async with engine.connect() as conn:
        now = await reservations.pair_capacity(conn, "HRB", "ICBC", today=TODAY)
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=TODAY)
        tb = await ledger.trial_balance(conn, "HRB")
    assert rebuilt == now
    assert tb.total_debit_fen == tb.total_credit_fen
    assert now.headroom_fen >= 0
    return now


@pytest.mark.postgres_only
async def test_250_concurrent_reservations_exactly_100_fit(engine: AsyncEngine) -> None:
    async with uow.transaction(engine, SETUP) as tx:
        # 200,000.00 × 5 = headroom 1,000,000.00: room for exactly 100 reservations of 10,000.00.
        await library_pair(tx, cash_fen=200_000 * YUAN, deposit_fen=200_000 * YUAN)
    headrooms_seen: list[int] = []

    async def one(n: int) -> bool:
        try:
            async with uow.transaction(engine, SETUP) as tx:
                await reservations.reserve(
                    tx,
                    fund_code="HRB",
                    bank_code="ICBC",
                    amount_fen=10_000 * YUAN,
                    approved_on=TODAY,
                    application_id=f"app-{n}",
                )
        except LeverageExceeded as refused:
            headrooms_seen.append(refused.facts["headroom"].fen)
            return False
        return True

    outcomes = await asyncio.gather(*(one(n) for n in range(250)))
    assert outcomes.count(True) == 100
    assert headrooms_seen == [0] * 150  # every refusal saw the last yuan already taken, never less
    now = await assert_rebuilds(engine)
    assert (now.reserved_fen, now.headroom_fen) == (1_000_000 * YUAN, 0)


@pytest.mark.postgres_only
async def test_mixed_concurrent_decisions_stay_within_capacity(engine: AsyncEngine) -> None:
    """Reservations of random sizes, conversions and withdrawals racing for one headroom."""
    async with uow.transaction(engine, SETUP) as tx:
        agreement = await library_pair(tx, cash_fen=300_000 * YUAN, deposit_fen=200_000 * YUAN)
    rng = random.Random(20261127)
    amounts = [rng.randint(1, 30_000 * YUAN) for _ in range(120)]
    withdrawals = [rng.randint(1, 20_000 * YUAN) for _ in range(30)]
    reserved: list[int] = []
    withdrawn: list[int] = []

    async def reserve_and_maybe_convert(n: int, amount: int) -> None:
        try:
            async with uow.transaction(engine, SETUP) as tx:
                held = await reservations.reserve(
                    tx, fund_code="HRB", bank_code="ICBC", amount_fen=amount, approved_on=TODAY
                )
                if n % 3 == 0:
                    await reservations.convert(tx, held.id, principal_fen=(amount + 1) // 2, on=TODAY)
                    amount = (amount + 1) // 2
            reserved.append(amount)
        except LeverageExceeded as refused:
            assert 0 <= refused.facts["headroom"].fen < amount

    async def withdraw(amount: int) -> None:
        try:
            async with uow.transaction(engine, SETUP) as tx:
                await service.withdraw(tx, agreement, amount_fen=amount, withdrawn_on=TODAY, reference="W")
            withdrawn.append(amount)
        except (LeverageExceeded, InsufficientDeposit):
            pass

    tasks = [reserve_and_maybe_convert(n, amount) for n, amount in enumerate(amounts)]
    tasks += [withdraw(amount) for amount in withdrawals]
    rng.shuffle(tasks)
    await asyncio.gather(*tasks)
    now = await assert_rebuilds(engine)
    deposit = 200_000 * YUAN - sum(withdrawn)
    assert now.deposit_fen == deposit
    assert now.outstanding_fen + now.reserved_fen == sum(reserved)
    assert now.headroom_fen == deposit * 5 - sum(reserved)
    assert reserved and len(reserved) < len(amounts)


async def test_concurrent_withdrawals_through_the_api(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_bank(admin)
    await make_allocation(manager, amount="1000000")
    agreement = await make_agreement(manager)
    path = f"/agreements/{agreement['id']}"
    await manager.post(
        f"{path}/deposits", {"amount": "1000000", "deposited_on": "2026-11-01", "reference": "D"}
    )
    async with uow.transaction(world.engine, SETUP) as tx:
        held = await reservations.reserve(
            tx, fund_code="HRB", bank_code="ICBC", amount_fen=4_500_000 * YUAN, approved_on=TODAY
        )
    # 4,500,000.00 reserved needs 900,000.00 at ×5: 100,000.00 may leave, i.e. ten of these.
    responses = await asyncio.gather(
        *(
            manager.post(
                f"{path}/withdrawals",
                {"amount": "10000", "withdrawn_on": "2026-11-27", "reference": f"W-{n}"},
            )
            for n in range(40)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [409] * 30
    assert all(r.json()["code"] == "leverage_exceeded" for r in responses if r.status_code == 409)
    view = (await manager.get(path)).json()["capacity"]
    assert (view["deposit"], view["headroom"], view["max_withdrawal"]) == ("900000.00", "0.00", "0.00")
    assert held.status == "reserved"
    await assert_rebuilds(world.engine)

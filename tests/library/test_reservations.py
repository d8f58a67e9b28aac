"""Guarantee reservations at library level: the interface applications and loans code against."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import ledger, uow
from loanfund.agreements import reservations, service
from loanfund.errors import (
    Duplicate,
    FutureDate,
    GuaranteeLapsed,
    InsufficientDeposit,
    InvalidState,
    LeverageExceeded,
    NotFound,
    PrincipalExceedsGuarantee,
    ValidationFailed,
)
from loanfund.ledger import accounts
from tests.support import SETUP, library_pair

TODAY = date(2026, 11, 27)
YUAN = 100


@pytest.fixture
async def agreement(engine: AsyncEngine) -> str:
    """Deposit 100,000.00 × 5 = capacity 500,000.00."""
    async with uow.transaction(engine, SETUP) as tx:
        return await library_pair(tx, cash_fen=200_000 * YUAN, deposit_fen=100_000 * YUAN)


async def reserve(
    engine: AsyncEngine, amount_fen: int, on: date = date(2026, 11, 20), **kw: str
) -> reservations.Reservation:
    async with uow.transaction(engine, SETUP) as tx:
        return await reservations.reserve(
            tx, fund_code="HRB", bank_code="ICBC", amount_fen=amount_fen, approved_on=on, **kw
        )


async def live(engine: AsyncEngine, today: date = TODAY) -> reservations.Capacity:
    async with engine.connect() as conn:
        return await reservations.pair_capacity(conn, "HRB", "ICBC", today=today)


async def test_partial_conversion_releases_the_rest(engine: AsyncEngine, agreement: str) -> None:
    held = await reserve(engine, 50_000 * YUAN, application_id="app-1")
    assert (held.status, held.agreement_id, held.expires_on) == ("reserved", agreement, date(2026, 12, 11))
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        done = await reservations.convert(tx, held.id, principal_fen=30_000 * YUAN, on=TODAY)
    assert (done.status, done.converted_fen, done.amount_fen) == ("converted", 30_000 * YUAN, 50_000 * YUAN)
    now = await live(engine)
    assert (now.outstanding_fen, now.reserved_fen, now.headroom_fen) == (30_000 * YUAN, 0, 470_000 * YUAN)
    async with engine.connect() as conn:
        balances = await ledger.signed_balances(conn, "HRB")
        assert await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=TODAY) == now
        # As of the approval day, only the reservation was there.
        then = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=date(2026, 11, 20))
    assert balances[accounts.commitments("ICBC")] == -30_000 * YUAN
    assert balances[accounts.reserved("ICBC")] == 0
    assert (then.reserved_fen, then.outstanding_fen) == (50_000 * YUAN, 0)

    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        with pytest.raises(InvalidState):
            await reservations.convert(tx, held.id, principal_fen=1, on=TODAY)
        with pytest.raises(InvalidState):
            await reservations.release(tx, held.id, on=TODAY, reason="too late")
    with pytest.raises(Duplicate):
        await reserve(engine, 1, application_id="app-1")


async def test_convert_refusals(engine: AsyncEngine, agreement: str) -> None:
    held = await reserve(engine, 10_000 * YUAN, on=date(2026, 11, 6))  # last day: today
    for kwargs, error in [
        ({"principal_fen": 10_000 * YUAN + 1, "on": TODAY}, PrincipalExceedsGuarantee),
        ({"principal_fen": 0, "on": TODAY}, ValidationFailed),
        ({"principal_fen": 1, "on": date(2026, 11, 5)}, ValidationFailed),
        ({"principal_fen": 1, "on": date(2026, 11, 28)}, FutureDate),
    ]:
        async with uow.transaction(engine, SETUP) as tx:
            conn = tx.conn
            with pytest.raises(error):
                await reservations.convert(tx, held.id, **kwargs)  # type: ignore[arg-type]
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        assert (await reservations.convert(tx, held.id, principal_fen=10_000 * YUAN, on=TODAY)).status == (
            "converted"
        )
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        with pytest.raises(NotFound):
            await reservations.get_reservation(conn, "gua_missing", TODAY)


async def test_expiry_is_judged_by_the_business_date(
    engine: AsyncEngine, agreement: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = await reserve(engine, 10_000 * YUAN, on=date(2026, 11, 6))
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-28")
    async with uow.transaction(engine, SETUP) as tx:
        with pytest.raises(GuaranteeLapsed) as caught:
            await reservations.convert(tx, held.id, principal_fen=1, on=date(2026, 11, 27))
    assert caught.value.facts["expires_on"] == "2026-11-27"
    # A reservation approved so long ago that it would be born lapsed is refused.
    with pytest.raises(ValidationFailed):
        await reserve(engine, 1, on=date(2026, 11, 6))
    with pytest.raises(FutureDate):
        await reserve(engine, 1, on=date(2026, 11, 29))


async def test_release_and_lapse(engine: AsyncEngine, agreement: str) -> None:
    rejected = await reserve(engine, 20_000 * YUAN)
    expiring = [await reserve(engine, 1_000 * YUAN, on=date(2026, 11, d)) for d in (6, 7, 8)]
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        with pytest.raises(ValidationFailed):
            await reservations.release(tx, rejected.id, on=TODAY, reason=" ")
        released = await reservations.release(tx, rejected.id, on=TODAY, reason="bank rejected")
    assert released.status == "released"
    assert (await live(engine)).reserved_fen == 3_000 * YUAN

    later = date(2026, 11, 29)  # the first two have lapsed (last days 27 and 28), the third has not
    assert (await live(engine, later)).reserved_fen == 1_000 * YUAN
    async with uow.transaction(engine, SETUP, later) as tx:
        assert await reservations.lapse_expired(tx) == 2
    async with uow.transaction(engine, SETUP, later) as tx:
        assert await reservations.lapse_expired(tx) == 0
    async with engine.connect() as conn:
        statuses = [(await reservations.get_reservation(conn, r.id, TODAY)).status for r in expiring]
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=later)
        lapse_dates = [
            entry.entry_date
            for entry in await ledger.queries.list_entries(conn, "HRB", account=accounts.reserved("ICBC"))
            if entry.kind == "reversal"
        ]
    assert statuses == ["lapsed", "lapsed", "reserved"]
    assert rebuilt == await live(engine, later)
    assert lapse_dates == [TODAY, date(2026, 11, 28), date(2026, 11, 29)]


@pytest.mark.postgres_only
async def test_two_lapse_jobs_at_once_lapse_each_reservation_once(
    engine: AsyncEngine, agreement: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-10")
    for day in range(1, 6):
        await reserve(engine, 1_000 * YUAN, on=date(2026, 11, day))
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", TODAY.isoformat())

    async def job() -> int:
        async with uow.transaction(engine, SETUP, TODAY) as tx:
            return await reservations.lapse_expired(tx)

    # The first to lock the pair lapses all five; the others find them lapsed already.
    assert sorted(await asyncio.gather(job(), job(), job())) == [0, 0, 5]
    async with engine.connect() as conn:
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=TODAY)
    assert rebuilt == await live(engine)
    assert (await live(engine)).reserved_fen == 0


async def test_reduce_outstanding(engine: AsyncEngine, agreement: str) -> None:
    held = await reserve(engine, 40_000 * YUAN)
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        await reservations.convert(tx, held.id, principal_fen=40_000 * YUAN, on=TODAY)
        await reservations.reduce_outstanding(
            tx,
            fund_code="HRB",
            bank_code="ICBC",
            amount_fen=15_000 * YUAN,
            on=TODAY,
            reason="repayment",
        )
    assert (await live(engine)).outstanding_fen == 25_000 * YUAN
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        with pytest.raises(InvalidState):
            await reservations.reduce_outstanding(
                tx,
                fund_code="HRB",
                bank_code="ICBC",
                amount_fen=25_000 * YUAN + 1,
                on=TODAY,
                reason="x",
            )
    async with engine.connect() as conn:
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=TODAY)
    assert rebuilt == await live(engine)


async def test_negative_headroom_refuses_approvals_and_withdrawals(
    engine: AsyncEngine, agreement: str
) -> None:
    held = await reserve(engine, 480_000 * YUAN)
    async with uow.transaction(engine, SETUP) as tx:
        await reservations.convert(tx, held.id, principal_fen=480_000 * YUAN, on=TODAY)
        # What compensation will do: pay from the deposit at the bank.
        await ledger.post(
            tx,
            fund_code="HRB",
            entry_date=TODAY,
            kind="compensation",
            description="compensation paid",
            lines=ledger.transfer(accounts.COMPENSATION, accounts.deposit("ICBC"), 8_000 * YUAN),
        )
    now = await live(engine)
    assert (now.capacity_fen, now.headroom_fen) == (460_000 * YUAN, -20_000 * YUAN)
    assert now.max_withdrawal_fen == 0
    with pytest.raises(LeverageExceeded) as caught:
        await reserve(engine, 1)
    assert caught.value.facts["headroom"].fen == -20_000 * YUAN
    async with uow.transaction(engine, SETUP) as tx:
        with pytest.raises(LeverageExceeded):
            await service.withdraw(tx, agreement, amount_fen=1, withdrawn_on=TODAY, reference="W")
        with pytest.raises(InsufficientDeposit):
            await service.withdraw(
                tx, agreement, amount_fen=92_000 * YUAN + 1, withdrawn_on=TODAY, reference="W"
            )
    # Repayment restores headroom; then a withdrawal fits again.
    async with uow.transaction(engine, SETUP) as tx:
        await reservations.reduce_outstanding(
            tx,
            fund_code="HRB",
            bank_code="ICBC",
            amount_fen=30_000 * YUAN,
            on=TODAY,
            reason="repaid",
        )
        await service.withdraw(tx, agreement, amount_fen=2_000 * YUAN, withdrawn_on=TODAY, reference="W")
    assert (await live(engine)).headroom_fen == 0


async def test_pair_capacity_for_update(engine: AsyncEngine, agreement: str) -> None:
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        locked = await reservations.pair_capacity(conn, "HRB", "ICBC", today=TODAY, for_update=True)
    assert locked == await live(engine)
    assert (locked.capacity_fen, locked.leverage_ratio) == (500_000 * YUAN, 0)

"""Random sequences of deposits, withdrawals, reservations, conversions, releases, repayments, lapses
and passing days, checked against a small model of the pair after every step.

Properties: each step succeeds exactly when the model says it fits; headroom never falls below zero;
capacity = deposit × multiple (half-up to the fen); the trial balance balances; and the capacity rebuilt
from the ledger alone equals the live view (once the lapse job has caught up; before, it differs by
exactly the expired reservations the job has not processed yet).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loanfund import ledger, uow
from loanfund.agreements import reservations, service
from loanfund.db import create_engine
from loanfund.errors import LoanfundError
from tests.support import SETUP, library_pair

START = date(2026, 1, 1)
CASH = 10_000_000  # fen
RESERVATION_DAYS = 21

amounts = st.integers(min_value=1, max_value=3_000_000)
index = st.integers(min_value=0, max_value=30)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), amounts),
        st.tuples(st.just("withdraw"), amounts),
        st.tuples(st.just("reserve"), amounts),
        st.tuples(st.just("reserve"), amounts),
        st.tuples(st.just("convert"), index, st.integers(min_value=1, max_value=100)),
        st.tuples(st.just("release"), index),
        st.tuples(st.just("repay"), amounts),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=15)),
        st.tuples(st.just("lapse")),
        # Right at the edge: the whole headroom, or all that may be withdrawn, give or take a fen.
        st.tuples(st.just("reserve_edge"), st.integers(min_value=-1, max_value=1)),
        st.tuples(st.just("withdraw_edge"), st.integers(min_value=-1, max_value=1)),
    ),
    min_size=5,
    max_size=40,
)
multiples = st.sampled_from(["1", "2.5", "3", "3.3333", "4.75", "5"])


def capacity_of(deposit_fen: int, multiple: Decimal) -> int:
    """Written apart from the library on purpose: fen × multiple, half-up to a whole fen."""
    return int((Decimal(deposit_fen) * multiple).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Held:
    id: str
    amount: int
    expires_on: date
    status: str = "reserved"  # as stored; effective status below


@dataclass
class Model:
    multiple: Decimal
    today: date = START
    cash: int = CASH
    deposit: int = 0
    outstanding: int = 0
    held: list[Held] = field(default_factory=list)

    def effective(self, h: Held) -> str:
        return "lapsed" if h.status == "reserved" and h.expires_on < self.today else h.status

    @property
    def reserved(self) -> int:
        return sum(h.amount for h in self.held if self.effective(h) == "reserved")

    @property
    def unprocessed(self) -> int:
        return sum(h.amount for h in self.held if h.status == "reserved" and h.expires_on < self.today)

    @property
    def headroom(self) -> int:
        return capacity_of(self.deposit, self.multiple) - self.outstanding - self.reserved

    @property
    def max_withdrawal(self) -> int:
        """The most that may leave, by bisection over the withdrawal (capacity falls as it grows)."""
        used = self.outstanding + self.reserved
        low, high = 0, self.deposit
        if capacity_of(self.deposit, self.multiple) < used:
            return 0
        while low < high:
            mid = (low + high + 1) // 2
            if capacity_of(self.deposit - mid, self.multiple) >= used:
                low = mid
            else:
                high = mid - 1
        return low


def concrete(model: Model, op: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """An edge operation with its amount worked out from the model now; None when it has none."""
    if op[0] == "reserve_edge":
        amount = model.headroom + op[1]
        return ("reserve", amount) if amount > 0 else None
    if op[0] == "withdraw_edge":
        amount = model.max_withdrawal + op[1]
        return ("withdraw", amount) if amount > 0 else None
    return op


def would_succeed(model: Model, op: tuple[Any, ...]) -> bool:
    kind = op[0]
    if kind == "deposit":
        return bool(op[1] <= model.cash)
    if kind == "withdraw":
        after = capacity_of(model.deposit - op[1], model.multiple)
        return bool(op[1] <= model.deposit and after >= model.outstanding + model.reserved)
    if kind == "reserve":
        return bool(op[1] <= model.headroom)
    if kind == "convert":
        return model.effective(model.held[op[1] % len(model.held)]) == "reserved"
    if kind == "release":  # releasing a lapsed reservation is a no-op, not a refusal
        return model.effective(model.held[op[1] % len(model.held)]) in ("reserved", "lapsed")
    if kind == "repay":
        return bool(op[1] <= model.outstanding)
    return True


async def step(tx: uow.Tx, model: Model, agreement_id: str, op: tuple[Any, ...]) -> Any:
    kind, today = op[0], model.today
    if kind == "deposit":
        return await service.deposit(tx, agreement_id, amount_fen=op[1], deposited_on=today, reference="D")
    if kind == "withdraw":
        return await service.withdraw(tx, agreement_id, amount_fen=op[1], withdrawn_on=today, reference="W")
    if kind == "reserve":
        return await reservations.reserve(
            tx, fund_code="HRB", bank_code="ICBC", amount_fen=op[1], approved_on=today
        )
    if kind == "convert":
        h = model.held[op[1] % len(model.held)]
        principal = max(1, h.amount * op[2] // 100)
        return await reservations.convert(tx, h.id, principal_fen=principal, on=today)
    if kind == "release":
        h = model.held[op[1] % len(model.held)]
        return await reservations.release(tx, h.id, on=today, reason="rejected")
    if kind == "repay":
        return await reservations.reduce_outstanding(
            tx, fund_code="HRB", bank_code="ICBC", amount_fen=op[1], on=today, reason="repaid"
        )
    if kind == "lapse":
        return await reservations.lapse_expired(tx)
    raise AssertionError(kind)


def apply(model: Model, op: tuple[Any, ...], result: Any) -> None:
    """The model's side of a step that succeeded, checking what the library returned."""
    kind = op[0]
    if kind == "deposit":
        model.cash -= op[1]
        model.deposit += op[1]
    elif kind == "withdraw":
        model.cash += op[1]
        model.deposit -= op[1]
    elif kind == "reserve":
        assert result.expires_on == model.today + timedelta(days=RESERVATION_DAYS)
        model.held.append(Held(result.id, op[1], result.expires_on))
    elif kind == "convert":
        h = model.held[op[1] % len(model.held)]
        principal = max(1, h.amount * op[2] // 100)
        assert (result.status, result.converted_fen) == ("converted", principal)
        model.outstanding += principal
        h.status = "converted"
    elif kind == "release":
        h = model.held[op[1] % len(model.held)]
        assert result.status == ("lapsed" if model.effective(h) == "lapsed" else "released")
        if result.status == "released":
            h.status = "released"
    elif kind == "repay":
        model.outstanding -= op[1]
    elif kind == "lapse":
        due = [h for h in model.held if h.status == "reserved" and h.expires_on < model.today]
        assert result == len(due)
        for h in due:
            h.status = "lapsed"


async def check(conn: Any, model: Model, after_lapse: bool) -> None:
    live = await reservations.pair_capacity(conn, "HRB", "ICBC", today=model.today)
    assert (live.deposit_fen, live.outstanding_fen, live.reserved_fen) == (
        model.deposit,
        model.outstanding,
        model.reserved,
    )
    assert live.capacity_fen == capacity_of(model.deposit, model.multiple)
    assert live.headroom_fen == model.headroom >= 0
    assert live.max_withdrawal_fen == model.max_withdrawal
    tb = await ledger.trial_balance(conn, "HRB", as_of=model.today)
    assert tb.total_debit_fen == tb.total_credit_fen
    rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=model.today)
    assert rebuilt.reserved_fen - model.unprocessed == live.reserved_fen
    if after_lapse:
        assert rebuilt == live
    for h in model.held:
        assert (await reservations.get_reservation(conn, h.id, model.today)).status == model.effective(h)


async def run(
    url: str,
    multiple: Decimal,
    first_deposit: int,
    ops: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(url)
    model = Model(multiple=multiple, cash=CASH - first_deposit, deposit=first_deposit)
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", START.isoformat())
    try:
        async with uow.transaction(engine, SETUP) as tx:
            conn = tx.conn
            agreement_id = await library_pair(
                tx, cash_fen=CASH, deposit_fen=first_deposit, multiple=multiple, effective_from=START
            )
        for generated in ops:
            op = concrete(model, generated)
            if op is None or (op[0] in ("convert", "release") and not model.held):
                continue
            if op[0] == "advance":
                model.today += timedelta(days=op[1])
                monkeypatch.setenv("LOANFUND_BUSINESS_DATE", model.today.isoformat())
            else:
                predicted = would_succeed(model, op)
                try:
                    async with uow.transaction(engine, SETUP) as tx:
                        conn = tx.conn
                        result = await step(tx, model, agreement_id, op)
                except LoanfundError as refusal:
                    assert not predicted, (op, refusal.code, refusal.facts)
                    event(f"{generated[0]} refused: {refusal.code}")
                else:
                    assert predicted, (op, "succeeded where the model expected a refusal")
                    apply(model, op, result)
                    event(f"{generated[0]} done")
            async with engine.connect() as conn:
                await check(conn, model, after_lapse=op[0] == "lapse")
    finally:
        await engine.dispose()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(multiple=multiples, first_deposit=st.integers(min_value=0, max_value=CASH // 2), ops=operations)
def test_capacity_invariants(
    sqlite_template: Path, multiple: str, first_deposit: int, ops: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        path = Path(tmp) / "property.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(run(f"sqlite+aiosqlite:///{path}", Decimal(multiple), first_deposit, ops, monkeypatch))

"""Random sequences of money in and out of a fund, driven through the library, against a simple model.

After every sequence: the trial balance balances; cash + deposited = contributed − compensation_paid +
recovered; matching counts exactly the local_match money not reversed; cash is never negative; and the
balances read from postings as of any date agree with the model replayed to that date (and, far in the
future, with the trigger-kept live balances).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import ledger, uow
from loanfund.audit import Actor
from loanfund.db import create_engine
from loanfund.errors import InsufficientFundCash, InvalidState, LoanfundError, ValidationFailed
from loanfund.funds import service
from loanfund.ledger import accounts
from loanfund.money import round_to_fen
from tests.conftest import reset_postgres

ACTOR = Actor(None, "property")
FUND = "PROP"
START = date(2025, 1, 1)
FAR_FUTURE = date(9999, 12, 31)
SOURCES = ("local_match", "central", "deposit_interest", "donation", "other")
BANKS = ("B1", "B2")

amounts = st.integers(min_value=1, max_value=5 * 10**10)  # up to 500 million yuan
days = st.integers(min_value=0, max_value=500)
picks = st.integers(min_value=0, max_value=10**6)

operations = st.one_of(
    st.tuples(st.just("allocate"), amounts, days, st.sampled_from(["0", "50", "100", "33.3333", "150"])),
    st.tuples(st.just("contribute"), st.sampled_from(SOURCES), amounts, days, picks),
    st.tuples(st.just("reverse_allocation"), picks, days),
    st.tuples(st.just("reverse_contribution"), picks, days),
    st.tuples(st.just("subsidy"), amounts, days),
    st.tuples(st.just("deposit"), st.sampled_from(BANKS), amounts, days),
    st.tuples(st.just("withdraw"), st.sampled_from(BANKS), amounts, days),
)


@dataclass
class Item:
    id: str
    amount: int
    on: date
    source: str = "provincial"
    allocation: str | None = None
    ratio: Decimal = Decimal(0)
    due: date = START
    reversed_on: date | None = None

    def live_on(self, day: date) -> bool:
        return self.on <= day and (self.reversed_on is None or self.reversed_on > day)


@dataclass
class Model:
    """What the fund should look like: every successful movement with its date."""

    moves: list[tuple[date, dict[str, int]]] = field(default_factory=list)
    allocations: list[Item] = field(default_factory=list)
    contributions: list[Item] = field(default_factory=list)

    def move(self, on: date, **deltas: int) -> None:
        self.moves.append((on, deltas))

    def totals(self, as_of: date = FAR_FUTURE) -> dict[str, int]:
        result = {"cash": 0, "deposited": 0, "contributed": 0, "subsidy": 0}
        for on, deltas in self.moves:
            if on <= as_of:
                for key in result:
                    result[key] += deltas.get(key, 0)
        return result

    def deposit(self, bank: str) -> int:
        return sum(d.get(bank, 0) for _, d in self.moves)


def pick(items: list[Item], index: int) -> Item | None:
    return items[index % len(items)] if items else None


async def run_operation(engine: AsyncEngine, model: Model, op: tuple[Any, ...]) -> None:
    kind = op[0]
    current = model.totals()
    async with uow.transaction(engine, ACTOR) as tx:
        if kind == "allocate":
            _, amount, day, ratio = op
            on = START + timedelta(days=day)
            allocation_id = await service.record_allocation(
                tx,
                fund_code=FUND,
                amount_fen=amount,
                received_on=on,
                reference=f"P-{len(model.allocations)}",
                match_ratio_pct=Decimal(ratio),
                match_due_on=on + timedelta(days=180),
            )
            model.allocations.append(
                Item(allocation_id, amount, on, ratio=Decimal(ratio), due=on + timedelta(days=180))
            )
            model.move(on, cash=amount, contributed=amount)
        elif kind == "contribute":
            _, source, amount, day, index = op
            target = pick(model.allocations, index) if source == "local_match" else None
            on = START + timedelta(days=day)
            if target is not None:
                on = max(on, target.on)
            call = service.record_contribution(
                tx,
                fund_code=FUND,
                source=source,
                amount_fen=amount,
                received_on=on,
                reference=f"C-{len(model.contributions)}",
                allocation_id=target.id if target else None,
            )
            if source == "local_match" and target is None:
                with pytest.raises(ValidationFailed):
                    await call
                return
            if target is not None and target.reversed_on is not None:
                with pytest.raises(InvalidState):
                    await call
                return
            contribution_id = await call
            model.contributions.append(
                Item(contribution_id, amount, on, source, target.id if target else None)
            )
            model.move(on, cash=amount, contributed=amount)
        elif kind in ("reverse_allocation", "reverse_contribution"):
            _, index, day = op
            items = model.allocations if kind == "reverse_allocation" else model.contributions
            item = pick(items, index)
            if item is None:
                return
            on = max(item.on, START + timedelta(days=day))
            if kind == "reverse_allocation":
                call = service.reverse_allocation(
                    tx, fund_code=FUND, allocation_id=item.id, reason="property", reversed_on=on
                )
            else:
                call = service.reverse_contribution(
                    tx, fund_code=FUND, contribution_id=item.id, reason="property", reversed_on=on
                )
            expected: type[LoanfundError] | None = None
            if item.reversed_on is not None:
                expected = InvalidState
            elif current["cash"] < item.amount:
                expected = InsufficientFundCash
            if expected is not None:
                with pytest.raises(expected):
                    await call
                return
            await call
            item.reversed_on = on
            model.move(on, cash=-item.amount, contributed=-item.amount)
        elif kind == "subsidy":
            _, amount, day = op
            on = START + timedelta(days=day)
            await service.add_subsidy_budget(
                tx, fund_code=FUND, amount_fen=amount, received_on=on, reference="S"
            )
            model.move(on, subsidy=amount)
        elif kind in ("deposit", "withdraw"):
            # Money placed at (or taken back from) a bank, as the agreements service will post it.
            _, bank, amount, day = op
            if kind == "withdraw":  # from a bank that holds money, if any does
                holding = [b for b in BANKS if model.deposit(b) > 0]
                bank = holding[BANKS.index(bank) % len(holding)] if holding else bank
            available = current["cash"] if kind == "deposit" else model.deposit(bank)
            amount = min(amount, available)
            if amount == 0:
                return
            on = START + timedelta(days=day)
            debit, credit = (
                (accounts.deposit(bank), accounts.CASH)
                if kind == "deposit"
                else (accounts.CASH, accounts.deposit(bank))
            )
            await ledger.post(
                tx,
                fund_code=FUND,
                entry_date=on,
                kind=kind,
                description=kind,
                lines=ledger.transfer(debit, credit, amount),
            )
            sign = 1 if kind == "deposit" else -1
            model.move(on, cash=-sign * amount, deposited=sign * amount, **{bank: sign * amount})


async def check_invariants(engine: AsyncEngine, model: Model) -> None:
    async with engine.connect() as conn:
        live = await ledger.signed_balances(conn, FUND)
        assert live.get(accounts.CASH, 0) >= 0
        assert live == await ledger.signed_balances(conn, FUND, as_of=FAR_FUTURE)
        dates = sorted({on for on, _ in model.moves} | {START, FAR_FUTURE})
        probes = [*dates[:: max(1, len(dates) // 4)], FAR_FUTURE, START - timedelta(days=1)]
        for as_of in probes:
            as_of_live = None if as_of == FAR_FUTURE else as_of
            tb = await ledger.trial_balance(conn, FUND, as_of=as_of_live)
            assert tb.total_debit_fen == tb.total_credit_fen
            position = await service.position(conn, FUND, as_of=as_of_live)
            expected = model.totals(as_of)
            assert position.cash_fen == expected["cash"]
            assert position.deposited_fen == expected["deposited"]
            assert position.contributed_fen == expected["contributed"]
            assert position.subsidy_budget_fen == expected["subsidy"]
            assert (
                position.cash_fen + position.deposited_fen
                == position.contributed_fen - position.compensation_paid_fen + position.recovered_fen
            )
            await check_matching(conn, model, as_of)


async def check_matching(conn: Any, model: Model, as_of: date) -> None:
    report = {m.allocation_id: m for m in await service.matching(conn, FUND, as_of)}
    expected_ids = [a.id for a in model.allocations if a.live_on(as_of)]
    assert sorted(report) == sorted(expected_ids)
    for allocation in model.allocations:
        if allocation.id not in report:
            continue
        m = report[allocation.id]
        matched = sum(
            c.amount for c in model.contributions if c.allocation == allocation.id and c.live_on(as_of)
        )
        required = round_to_fen(Decimal(allocation.amount) / 100 * allocation.ratio / 100)
        assert (m.matched_fen, m.required_fen) == (matched, required)
        assert m.shortfall_fen == max(required - matched, 0)
        if matched >= required:
            assert m.status == "met"
        else:
            assert m.status == ("pending" if as_of <= allocation.due else "overdue")


async def scenario(
    url: str, ops: list[tuple[Any, ...]], prepare: Callable[[AsyncEngine], Any] | None
) -> None:
    engine = create_engine(url)
    try:
        if prepare is not None:
            await prepare(engine)
        async with uow.transaction(engine, ACTOR) as tx:
            conn = tx.conn
            await service.create_fund(
                tx, code=FUND, name="Property", region_code="230100", policy_edition="cn-2008"
            )
        model = Model()
        for op in ops:
            await run_operation(engine, model, op)
            async with engine.connect() as conn:
                assert await ledger.balance(conn, FUND, accounts.CASH) >= 0
        await check_invariants(engine, model)
    finally:
        await engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=2, max_size=30))
def test_money_in_keeps_the_ledger_consistent_sqlite(
    sqlite_template: Path, ops: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "example.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(scenario(f"sqlite+aiosqlite:///{path}", ops, None))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=1, max_size=15))
def test_money_in_keeps_the_ledger_consistent_postgres(
    postgres_database: str | None, ops: list[tuple[Any, ...]]
) -> None:
    if postgres_database is None:
        pytest.skip("PostgreSQL not configured (set LOANFUND_TEST_DATABASE_URL)")
    asyncio.run(scenario(postgres_database, ops, reset_postgres))

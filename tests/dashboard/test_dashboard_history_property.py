"""Property: the leverage history summed per month by the database (a window function, written for
each dialect) equals the ledger's balances at every month end, whatever the dates and amounts."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanfund import uow
from loanfund.agreements import service as agreements_service
from loanfund.agreements.capacity import capacity_from_ledger
from loanfund.db import create_engine
from loanfund.reports import leverage
from tests.support import SETUP, TODAY, library_pair

START = date(2025, 10, 1)
DAYS = (date.fromisoformat(TODAY) - START).days
_funds = itertools.count()

moves = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=DAYS),  # day after START
        st.integers(min_value=1, max_value=5_000_000),  # fen
        st.booleans(),  # withdraw (when there is enough at the bank)
    ),
    min_size=1,
    max_size=12,
)


async def _check(url: str, fund: str, region: str, ops: list[tuple[int, int, bool]]) -> None:
    engine = create_engine(url)
    try:
        async with uow.transaction(engine, SETUP) as tx:
            conn = tx.conn
            agreement = await library_pair(
                tx, fund=fund, bank="PB", region=region, cash_fen=10**10, effective_from=START
            )
            at_bank = 0
            for offset, fen, withdraw in sorted(ops):
                day = START + timedelta(days=offset)
                if withdraw and fen <= at_bank:
                    await agreements_service.withdraw(
                        tx, agreement, amount_fen=fen, withdrawn_on=day, reference="w"
                    )
                    at_bank -= fen
                else:
                    await agreements_service.deposit(
                        tx, agreement, amount_fen=fen, deposited_on=day, reference="d"
                    )
                    at_bank += fen
        today = date.fromisoformat(TODAY)
        async with engine.connect() as conn:
            pairs = await leverage.pair_leverage(conn, region, today)
            [history] = await leverage.leverage_history(conn, region, today, pairs, months=14)
            for point in history.points:
                if point.on < START:
                    assert point.deposit_fen == 0
                    continue
                expected = await capacity_from_ledger(conn, fund, "PB", as_of=point.on)
                assert point.deposit_fen == expected.deposit_fen, point
            assert history.points[-1].deposit_fen == at_bank == pairs[0].capacity.deposit_fen
    finally:
        await engine.dispose()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=moves)
def test_month_end_history_equals_the_ledger(db_url: str, ops: list[tuple[int, int, bool]]) -> None:
    # A new fund in a region of its own per example: examples share the database.
    n = next(_funds)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LOANFUND_BUSINESS_DATE", TODAY)
        asyncio.run(_check(db_url, f"P{n}", f"9{n % 100000:05d}", ops))

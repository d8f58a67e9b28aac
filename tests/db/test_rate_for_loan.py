"""A disbursement prices its loan from two fixings (`rate_for_loan`), not the whole table: the same
rate, staleness flag and refusals as the table, on every band and date."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import uow
from loanfund.errors import LoanfundError
from loanfund.rates.store import add_fixing, rate_for_loan, rate_table
from tests.support import SETUP

TERMS = (1, 6, 12, 13, 24, 36, 37, 48, 60, 61, 120)


def _dates() -> list[date]:
    days = [date(1990, 1, 1), date(2014, 11, 21), date(2014, 11, 22), date(2019, 8, 19), date(2019, 8, 20)]
    day = date(1995, 1, 1)
    while day <= date(2026, 12, 31):
        days.append(day)
        day += timedelta(days=97)
    return days


def _outcome(call: Any) -> Any:
    try:
        return call()
    except LoanfundError as error:
        return (type(error).__name__, error.detail, error.facts)


async def test_two_fixings_price_a_loan_as_the_whole_table_does(engine: AsyncEngine) -> None:
    async with uow.transaction(engine, SETUP, date(2026, 12, 31)) as tx:
        # Recent months, one skipped: the flag must come out the same both ways.
        for day, pct in ((date(2026, 8, 20), "3.00"), (date(2026, 10, 20), "2.95")):
            await add_fixing(tx, kind="LPR1Y", effective_on=day, rate_pct=Decimal(pct))
    async with engine.connect() as conn:
        table = await rate_table(conn)
        checked = 0
        for term in TERMS:
            for day in _dates():
                expected = _outcome(lambda term=term, day=day: table.for_loan(term, day))
                try:
                    got: Any = await rate_for_loan(conn, term, day)
                except LoanfundError as error:
                    got = (type(error).__name__, error.detail, error.facts)
                assert got == expected, (term, day)
                checked += 1
    assert checked > 1000

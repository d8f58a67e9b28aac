"""The business date: the env pin for rehearsals, and the day a unit of work carries."""

from __future__ import annotations

from datetime import date

import pytest

from loanfund import uow
from loanfund.audit import Actor
from loanfund.clock import business_date, not_in_future
from loanfund.errors import FutureDate


def test_env_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-27")
    assert business_date() == date(2026, 11, 27)
    with pytest.raises(FutureDate):
        not_in_future(date(2026, 11, 28), "paid_on")
    assert not_in_future(date(2025, 1, 2), "paid_on", today=date(2025, 1, 2)) == date(2025, 1, 2)
    with pytest.raises(FutureDate):
        not_in_future(date(2025, 1, 3), "paid_on", today=date(2025, 1, 2))


async def test_a_unit_of_work_keeps_the_day_it_began_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-27")
    tx = uow.begin(None, Actor(None, "test"))  # type: ignore[arg-type]
    replayed = uow.begin(None, Actor(None, "test"), date(2024, 6, 1))  # type: ignore[arg-type]
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-28")
    assert (tx.today, replayed.today) == (date(2026, 11, 27), date(2024, 6, 1))

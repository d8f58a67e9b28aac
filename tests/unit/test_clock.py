"""The business date: env pin for rehearsals, task-local pin for replayed history."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from loanfund.clock import business_date, not_in_future, pinned_business_date
from loanfund.errors import FutureDate


def test_env_pin_and_task_local_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-27")
    assert business_date() == date(2026, 11, 27)
    with pinned_business_date(date(2025, 1, 2)):
        assert business_date() == date(2025, 1, 2)
        with pytest.raises(FutureDate):
            not_in_future(date(2025, 1, 3), "paid_on")
    assert business_date() == date(2026, 11, 27)


async def test_pin_does_not_leak_into_other_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", "2026-11-27")
    seen: dict[str, date] = {}
    pinned_inside = asyncio.Event()

    async def replaying() -> None:
        with pinned_business_date(date(2024, 6, 1)):
            pinned_inside.set()
            await asyncio.sleep(0.01)
            seen["replaying"] = business_date()

    async def serving() -> None:
        await pinned_inside.wait()
        seen["serving"] = business_date()

    await asyncio.gather(replaying(), serving())
    assert seen == {"replaying": date(2024, 6, 1), "serving": date(2026, 11, 27)}

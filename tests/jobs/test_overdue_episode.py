"""`loan_overdue` is announced once per overdue episode: paying the oldest missed instalment while a
later one is still missed moves the loan's overdue start forward, but it is the same episode (no
second announcement); once the arrears are cured, a new missed instalment is a new one."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from loanfund import jobs
from loanfund.db.tables import events
from tests.claims_support import at, bank_with_loan, overdue, repay
from tests.support import Api, World


async def announced(world: World) -> list[str]:
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(events.c.data).where(events.c.type == "loan_overdue").order_by(events.c.id)
        )
        return [row.data["overdue_since"] for row in rows]


async def run_on(world: World, monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    at(monkeypatch, day)
    result = await jobs.run_job(world.engine, jobs.get("overdue_loans"), date.fromisoformat(day))
    assert result.outcome == "ok", result.error


async def test_one_announcement_per_overdue_episode(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, loan = await bank_with_loan(world, admin, manager, monkeypatch)
    at(monkeypatch, "2026-08-02")
    await overdue(bank, loan, "2026-08-01", principal="1000")
    at(monkeypatch, "2026-09-02")
    await overdue(bank, loan, "2026-09-01", principal="1000")
    await run_on(world, monkeypatch, "2026-09-02")
    assert await announced(world) == ["2026-08-01"]
    at(monkeypatch, "2026-09-10")
    still = await repay(bank, loan, "1000", "0", "2026-09-10")
    assert still["overdue_since"] == "2026-09-01"  # the later instalment is still missed
    await run_on(world, monkeypatch, "2026-09-11")
    assert await announced(world) == ["2026-08-01"]  # the same episode
    at(monkeypatch, "2026-09-20")
    assert (await repay(bank, loan, "1000", "0", "2026-09-20"))["overdue_since"] is None  # cured
    at(monkeypatch, "2026-10-02")
    await overdue(bank, loan, "2026-10-01", principal="1000")
    await run_on(world, monkeypatch, "2026-10-02")
    assert await announced(world) == ["2026-08-01", "2026-10-01"]  # a new episode

"""`loanfund serve` runs the scheduler in-process: the app's lifespan starts it, it catches up."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from loanfund import jobs
from loanfund.config import Settings
from loanfund.db.tables import job_state
from scheduler.runner import SchedulerRunner
from tests.support import TODAY

FAST = {"scheduler_tick_seconds": 0.1, "scheduler_lock_retry_seconds": 0.1}


async def completed(engine: AsyncEngine) -> dict[str, date | None]:
    async with engine.connect() as conn:
        return {row.job: row.last_completed for row in await conn.execute(sa.select(job_state))}


async def wait_until_done(engine: AsyncEngine, today: date) -> dict[str, date | None]:
    expected = {job.name: job.cadence.latest_due(today) for job in jobs.JOBS}
    for _ in range(600):
        state = await completed(engine)
        if state == expected:
            break
        await asyncio.sleep(0.05)
    return state


async def test_the_app_runs_the_jobs(engine: AsyncEngine, settings: Settings) -> None:
    app = create_app(replace(settings, **FAST), run_scheduler=True)
    async with AsyncTestClient(app):
        today = date.fromisoformat(TODAY)
        assert await wait_until_done(engine, today) == {
            j.name: j.cadence.latest_due(today) for j in jobs.JOBS
        }
    runs = await jobs_runs(engine)
    assert runs == len(jobs.JOBS)


async def jobs_runs(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM job_runs")) or 0)


@pytest.mark.postgres_only
async def test_two_runners_in_one_database_one_leads_the_other_takes_over(
    engine: AsyncEngine, settings: Settings, db_url: str
) -> None:
    fast = replace(settings, **FAST)
    first, second = SchedulerRunner(engine, fast), SchedulerRunner(engine, fast)
    await first.start()
    await asyncio.sleep(0.3)
    await second.start()
    await asyncio.sleep(0.3)
    assert (first.is_leader, second.is_leader) == (True, False)
    await first.stop()  # its lock connection closes: the other takes over at its next try
    for _ in range(100):
        if second.is_leader:
            break
        await asyncio.sleep(0.05)
    assert second.is_leader
    today = date.fromisoformat(TODAY)
    assert await wait_until_done(engine, today) == {j.name: j.cadence.latest_due(today) for j in jobs.JOBS}
    await second.stop()
    assert today - timedelta(days=1) == jobs.get("capacity_alerts").cadence.latest_due(today)

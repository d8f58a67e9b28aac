"""The job framework, GET /jobs, GET /jobs/{name}/runs and the `loanfund jobs` commands."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import jobs
from loanfund.db.tables import events, job_runs, job_state
from loanfund.errors import FutureDate
from loanfund.jobs import DAILY, DAILY_AT_CLOSE, MONTH_END, Job
from loanfund.uow import Tx
from tests.support import TODAY, Api, World, assert_problem

DAY = date.fromisoformat(TODAY)
LOANFUND = Path(sys.executable).parent / "loanfund"


# ---- cadences ----------------------------------------------------------------------------------------


def test_cadences() -> None:
    assert DAILY.latest_due(DAY) == DAY
    assert DAILY_AT_CLOSE.latest_due(DAY) == DAY - timedelta(days=1)
    assert MONTH_END.latest_due(date(2026, 11, 30)) == date(2026, 10, 31)  # November not over yet
    assert MONTH_END.latest_due(date(2026, 12, 1)) == date(2026, 11, 30)
    assert MONTH_END.dates(date(2026, 11, 15), date(2027, 3, 1)) == [
        date(2026, 11, 30),
        date(2026, 12, 31),
        date(2027, 1, 31),
        date(2027, 2, 28),
    ]
    assert DAILY.dates(date(2026, 12, 30), date(2027, 1, 1)) == [
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 1),
    ]
    assert jobs.pending_dates(jobs.get("capacity_snapshots"), None, DAY) == [DAY - timedelta(days=1)]
    assert jobs.pending_dates(jobs.get("lapse_reservations"), DAY - timedelta(days=3), DAY) == [
        DAY - timedelta(days=2),
        DAY - timedelta(days=1),
        DAY,
    ]
    assert jobs.pending_dates(jobs.get("lapse_reservations"), DAY, DAY) == []


# ---- runner --------------------------------------------------------------------------------------------


async def _state(engine: AsyncEngine) -> dict[str, date | None]:
    async with engine.connect() as conn:
        return {row.job: row.last_completed for row in await conn.execute(sa.select(job_state))}


async def test_catch_up_runs_missed_dates_oldest_first_then_nothing(engine: AsyncEngine) -> None:
    first = await jobs.catch_up(engine, today=DAY - timedelta(days=3))
    assert {(r.job, r.business_date) for r in first} == {
        (job.name, job.cadence.latest_due(DAY - timedelta(days=3))) for job in jobs.JOBS
    }
    later = await jobs.catch_up(engine, today=DAY)
    assert [r.outcome for r in later] == ["ok"] * len(later)
    # Date by date, registry order within a date.
    order = [(r.business_date, r.job) for r in later]
    assert order == sorted(order, key=lambda x: (x[0], [j.name for j in jobs.JOBS].index(x[1])))
    assert len(later) == 3 * len(jobs.JOBS)
    state = await _state(engine)
    assert state == {job.name: job.cadence.latest_due(DAY) for job in jobs.JOBS}
    assert await jobs.catch_up(engine, today=DAY) == []


async def _boom(tx: Tx, day: date) -> dict[str, int]:
    tx.emit("should_not_stay", fund_code=None, region_code=None, bank_code=None, data={})
    await tx.flush()
    raise RuntimeError(f"boom on {day}")


async def test_a_failed_run_rolls_back_is_recorded_and_holds_later_dates(engine: AsyncEngine) -> None:
    boom = Job("boom", _boom, DAILY, "fails")
    after = Job(
        "after_boom", jobs.get("purge_idempotency_keys").run, DAILY, "waits for boom", after=("boom",)
    )
    await jobs.catch_up(engine, today=DAY - timedelta(days=3), jobs=[boom, after])
    results = await jobs.catch_up(engine, today=DAY, jobs=[boom, after])
    assert [(r.job, r.outcome) for r in results] == [("boom", "failed")]
    assert results[0].error == f"RuntimeError: boom on {DAY - timedelta(days=3)}"
    async with engine.connect() as conn:
        runs = (await conn.execute(sa.select(job_runs).order_by(job_runs.c.id))).all()
        assert await conn.scalar(sa.select(sa.func.count()).select_from(events)) == 0
    assert [(r.job, r.outcome, r.trigger) for r in runs] == [
        ("boom", "failed", "scheduler"),
        ("boom", "failed", "scheduler"),
    ]
    assert runs[0].error.startswith("RuntimeError: boom")
    # The first date stays owed: its history starts the day before it.
    assert await _state(engine) == {"boom": DAY - timedelta(days=4), "after_boom": DAY - timedelta(days=4)}


async def test_a_date_after_the_business_date_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(FutureDate):
        await jobs.run_job(engine, jobs.get("overdue_loans"), DAY + timedelta(days=1))


async def test_by_hand_a_closing_job_waits_for_the_close_and_for_the_jobs_it_reads(
    engine: AsyncEngine,
) -> None:
    """A job that runs at the close refuses a day not yet ended, and one that reads another job's
    figures refuses a day that job has not completed: neither is run, nor counted as done."""
    await jobs.catch_up(engine, today=DAY)
    before = await _state(engine)
    with pytest.raises(FutureDate, match="not closed yet"):
        await jobs.run_job(engine, jobs.get("capacity_snapshots"), DAY)
    early = await jobs.run_job(
        engine, jobs.get("capacity_alerts"), DAY - timedelta(days=1), today=DAY + timedelta(days=1)
    )
    assert early.outcome == "ok"  # the snapshots of that day were taken in the catch-up
    waiting = await jobs.run_job(engine, jobs.get("capacity_alerts"), DAY, today=DAY + timedelta(days=1))
    assert (waiting.outcome, waiting.error) == (
        "skipped",
        f"capacity_alerts runs after capacity_snapshots, which has not completed {DAY.isoformat()}",
    )
    assert await _state(engine) == before
    async with engine.connect() as conn:
        dated = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(job_runs)
            .where(job_runs.c.business_date == DAY, job_runs.c.job.like("capacity%"))
        )
    assert dated == 0


async def test_a_manual_run_of_an_old_date_does_not_move_progress(engine: AsyncEngine) -> None:
    assert (await jobs.run_job(engine, jobs.get("overdue_loans"), DAY - timedelta(days=30))).outcome == "ok"
    assert await _state(engine) == {"overdue_loans": None}  # the scheduler will start at its latest date
    await jobs.catch_up(engine, today=DAY)
    nxt = await jobs.run_job(engine, jobs.get("overdue_loans"), DAY)
    assert nxt.outcome == "ok" and (await _state(engine))["overdue_loans"] == DAY
    result = await jobs.run_job(engine, jobs.get("overdue_loans"), DAY - timedelta(days=10))
    assert result.outcome == "ok"
    assert (await _state(engine))["overdue_loans"] == DAY


# ---- API -----------------------------------------------------------------------------------------------


async def test_jobs_and_their_runs(world: World, manager: Api, engine: AsyncEngine) -> None:
    await jobs.catch_up(engine, today=DAY)
    await jobs.run_job(engine, jobs.get("lapse_reservations"), DAY)  # by hand, again
    listed = await manager.get("/jobs")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["business_date"] == TODAY
    assert [item["name"] for item in body["items"]] == [job.name for job in jobs.JOBS]
    by_name = {item["name"]: item for item in body["items"]}
    assert by_name["capacity_snapshots"]["last_completed"] == str(DAY - timedelta(days=1))
    assert by_name["capacity_alerts"]["after"] == ["capacity_snapshots"]
    assert by_name["overdue_loans"]["last_completed"] == TODAY and by_name["overdue_loans"]["owed"] == 0
    assert by_name["lapse_reservations"]["last_run"]["trigger"] == "manual"

    runs = await manager.get("/jobs/lapse_reservations/runs", {"limit": 1})
    assert runs.status_code == 200, runs.text
    page = runs.json()
    assert [(r["trigger"], r["outcome"], r["counts"], r["business_date"]) for r in page["items"]] == [
        ("manual", "ok", {"lapsed": 0}, TODAY)
    ]
    assert page["next_cursor"] is not None
    rest = (await manager.get("/jobs/lapse_reservations/runs", {"cursor": page["next_cursor"]})).json()
    assert [r["trigger"] for r in rest["items"]] == ["scheduler"] and rest["next_cursor"] is None
    none = await manager.get("/jobs/lapse_reservations/runs", {"outcome": "failed"})
    assert none.json()["items"] == []
    dated = await manager.get(
        "/jobs/capacity_snapshots/runs", {"business_date": str(DAY - timedelta(days=1))}
    )
    assert len(dated.json()["items"]) == 1


async def test_jobs_refusals(world: World, admin: Api) -> None:
    auditor = await world.caller("auditor")
    assert (await auditor.get("/jobs")).status_code == 200
    assert (await admin.get("/jobs/overdue_loans/runs")).status_code == 200
    for role, bank in (("window", None), ("bank", "ICBC")):
        caller = await world.caller(role, bank=bank)
        assert_problem(await caller.get("/jobs"), 403, "forbidden")
        assert_problem(await caller.get("/jobs/overdue_loans/runs"), 403, "forbidden")
    assert_problem(await world.http.get("/api/v1/jobs"), 401, "unauthenticated")
    assert_problem(await admin.get("/jobs/no_such_job/runs"), 404, "not_found")
    for params in ({"business_date": "2026-02-30"}, {"outcome": "maybe"}, {"limit": 0}, {"cursor": "@@"}):
        assert_problem(await admin.get("/jobs/overdue_loans/runs", params), 422, "validation_error")


# ---- CLI -----------------------------------------------------------------------------------------------


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOANFUND_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([str(LOANFUND), *args], env=env, capture_output=True, text=True, timeout=60)


def test_jobs_commands(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    listed = cli(db, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["name"] for line in lines] == [job.name for job in jobs.JOBS]
    assert all(line["last_completed"] is None and line["last_run"] is None for line in lines)

    week = cli(db, "jobs", "run", "overdue_loans", "--from", "2026-11-20", "--to", TODAY)
    assert week.returncode == 0, week.stderr
    summary = json.loads(week.stdout)
    assert summary == {
        "job": "overdue_loans",
        "from": "2026-11-20",
        "to": TODAY,
        "dates": 8,
        "ok": 8,
        "failed": 0,
        "counts": summary["counts"],
    }
    assert summary["counts"]["overdue"] == 0 and "newly_overdue" in summary["counts"]
    default = json.loads(cli(db, "jobs", "run", "capacity_snapshots", "--quiet").stdout)
    assert (default["from"], default["to"], default["ok"]) == ("2026-11-26", "2026-11-26", 1)
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT job, business_date, trigger FROM job_runs ORDER BY id").fetchall()
    assert len(runs) == 9 and {r[2] for r in runs} == {"manual"}
    assert runs[0] == ("overdue_loans", "2026-11-20", "manual")

    future = cli(db, "jobs", "run", "overdue_loans", "--date", "2026-11-28")
    assert future.returncode == 2 and json.loads(future.stderr)["error"] == "future_date"
    open_day = cli(db, "jobs", "run", "capacity_snapshots", "--date", TODAY)
    assert open_day.returncode == 2 and json.loads(open_day.stderr)["error"] == "future_date"
    waits = cli(db, "jobs", "run", "capacity_alerts", "--date", "2026-11-25")
    assert waits.returncode == 1, waits.stderr
    assert json.loads(waits.stdout)["error"].startswith("capacity_alerts runs after capacity_snapshots")
    unknown = cli(db, "jobs", "run", "no_such_job")
    assert unknown.returncode == 2 and json.loads(unknown.stderr)["error"] == "not_found"
    both = cli(db, "jobs", "run", "overdue_loans", "--date", TODAY, "--from", TODAY)
    assert both.returncode == 2 and json.loads(both.stderr)["error"] == "validation_error"
    backwards = cli(db, "jobs", "run", "overdue_loans", "--from", TODAY, "--to", "2026-11-01")
    assert backwards.returncode == 2 and json.loads(backwards.stderr)["error"] == "validation_error"

"""Running jobs for business dates: one date in one transaction, and catch-up oldest first.

A run's work, its `job_runs` row and the job's progress (`job_state.last_completed`) commit together,
under the lock of the job's `job_state` row: two processes that both try the same date run it one
after the other, and the second finds it done (`skipped`). A run that fails rolls back entirely and
leaves a `failed` row; the job's later dates wait until it succeeds, so no date is ever skipped.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import uow
from loanfund.audit import Actor
from loanfund.clock import business_date, utcnow
from loanfund.db.tables import job_runs, job_state
from loanfund.errors import FutureDate
from loanfund.jobs.framework import Job, Summary
from loanfund.jobs.queries import last_completed
from loanfund.jobs.registry import JOBS

log = logging.getLogger("loanfund.jobs")


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


@dataclass(frozen=True)
class RunResult:
    job: str
    business_date: date
    outcome: str  # ok | failed | skipped (done already, or waiting for an earlier date or another job)
    counts: Summary = field(default_factory=dict)
    error: str | None = None


async def _ensure_state(engine: AsyncEngine, name: str, *, starts_after: date | None = None) -> None:
    """Give the job its `job_state` row; with `starts_after`, a job without progress yet owes the
    dates after it (the scheduler's first date then stays owed until it succeeds, like any other)."""
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(job_state)
    async with engine.begin() as conn:
        await conn.execute(
            insert.values(job=name, last_completed=starts_after, updated_at=utcnow()).on_conflict_do_nothing()
        )
        if starts_after is not None:
            await conn.execute(
                job_state.update()
                .where(job_state.c.job == name, job_state.c.last_completed.is_(None))
                .values(last_completed=starts_after, updated_at=utcnow())
            )


def refuse_undue(job: Job, day: date, today: date) -> None:
    """A date the job may not run for yet on business date `today` (422 future_date): after today, or,
    for a job that runs at the close, a date that has not ended (its figures would not be final, and
    run as the next date it would count as done)."""
    latest = job.cadence.latest_due(today)
    if day > latest:
        when = "after the business date" if day > today else "not closed yet"
        raise FutureDate(
            f"{day.isoformat()} is {when} ({today.isoformat()}): {job.name} ({job.cadence.name}) runs"
            f" for dates up to {latest.isoformat()} now",
            field="date",
        )


async def run_job(
    engine: AsyncEngine,
    job: Job,
    day: date,
    *,
    trigger: str = "manual",
    in_order: bool = False,
    today: date | None = None,
) -> RunResult:
    """Run `job` for `day`, a date up to the job's latest due date (`refuse_undue`), once the jobs it
    comes after have completed it (else `skipped`, with the reason). `in_order` (the scheduler): only
    if `day` is the job's next date; by hand an earlier date runs again."""
    today = today if today is not None else business_date()
    refuse_undue(job, day, today)
    await _ensure_state(engine, job.name)
    started = utcnow()
    try:
        # The job's unit of work has the date it runs for as its business date: catching up, each
        # missed date is worked as that day would have been.
        async with uow.transaction(engine, Actor.system(job.name), day) as tx:
            state = (
                await tx.conn.execute(
                    sa.select(job_state.c.last_completed).where(job_state.c.job == job.name).with_for_update()
                )
            ).one()
            last = state.last_completed
            next_date = job.cadence.next_after(last) if last is not None else None
            if in_order and next_date is not None and day != next_date:
                return RunResult(job.name, day, "skipped")
            # By hand too: run before the jobs it reads, a job would judge the date on missing figures
            # (capacity alerts without the day's snapshots) and, as the next date, mark it done.
            for name in job.after:
                done = await tx.conn.scalar(
                    sa.select(job_state.c.last_completed).where(job_state.c.job == name)
                )
                if done is None or done < day:
                    waiting = f"{job.name} runs after {name}, which has not completed {day.isoformat()}"
                    return RunResult(job.name, day, "skipped", error=waiting)
            counts = await job.run(tx, day)
            await tx.conn.execute(
                job_runs.insert().values(
                    job=job.name,
                    business_date=day,
                    started_at=started,
                    ended_at=utcnow(),
                    outcome="ok",
                    counts=counts,
                    error=None,
                    trigger=trigger,
                    runner=runner_id(),
                )
            )
            # By hand, only the job's next date moves its progress: a manual run never makes the
            # scheduler skip a date, nor start a never-run job's history at an old date.
            if day == next_date or (last is None and in_order):
                await tx.conn.execute(
                    job_state.update()
                    .where(job_state.c.job == job.name)
                    .values(last_completed=day, updated_at=utcnow())
                )
    except Exception as exc:
        log.exception("job %s failed for %s", job.name, day)
        error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        async with engine.begin() as conn:
            await conn.execute(
                job_runs.insert().values(
                    job=job.name,
                    business_date=day,
                    started_at=started,
                    ended_at=utcnow(),
                    outcome="failed",
                    counts={},
                    error=error,
                    trigger=trigger,
                    runner=runner_id(),
                )
            )
        return RunResult(job.name, day, "failed", error=error)
    log.info("job %s ran for %s: %s", job.name, day, counts)
    return RunResult(job.name, day, "ok", counts)


def pending_dates(job: Job, last: date | None, today: date) -> list[date]:
    """The dates the scheduler owes `job` on business date `today`. A job that never ran starts at
    its latest due date (older dates only by hand: `loanfund jobs run NAME --from …`)."""
    latest = job.cadence.latest_due(today)
    if last is None:
        return [latest]
    return job.cadence.dates(job.cadence.next_after(last), latest)


async def catch_up(
    engine: AsyncEngine,
    *,
    today: date | None = None,
    jobs: Iterable[Job] = JOBS,
    keep_going: Callable[[], bool] = lambda: True,
) -> list[RunResult]:
    """Run every job's missed dates: date by date, oldest first, jobs in registry order within a date.
    A job that fails stops there (and so do the jobs that come after it) until the next catch-up."""
    today = today if today is not None else business_date()
    jobs = tuple(jobs)
    async with engine.connect() as conn:
        done = await last_completed(conn)
    for job in jobs:
        if done.get(job.name) is None:
            # The first time the scheduler sees a job, its history starts at the latest due date.
            start = job.cadence.previous(job.cadence.latest_due(today))
            await _ensure_state(engine, job.name, starts_after=start)
            done[job.name] = start
    owed = {job.name: set(pending_dates(job, done.get(job.name), today)) for job in jobs}
    stopped: set[str] = set()
    results = []
    for day in sorted(set().union(*owed.values())):
        for job in jobs:
            if day not in owed[job.name] or job.name in stopped:
                continue
            if any(name in stopped for name in job.after) or not keep_going():
                stopped.add(job.name)
                continue
            result = await run_job(engine, job, day, trigger="scheduler", in_order=True, today=today)
            results.append(result)
            if result.outcome != "ok":
                stopped.add(job.name)
    return results

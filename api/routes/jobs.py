"""GET /jobs and GET /jobs/{name}/runs (admin, fund_manager, auditor): what the back office did.

Jobs are the whole installation's, not a region's: their runs carry counts, never the entities (those
are in the events and the audit log, where the caller's scope applies).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import READERS, authorize
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from loanfund import jobs
from loanfund.clock import parse_date
from loanfund.errors import invalid
from loanfund.jobs import queries

Ctx = NamedDependency[RequestContext]
OUTCOMES = ("ok", "failed")


class RunOut(msgspec.Struct):
    id: str
    job: str
    business_date: date
    started_at: datetime
    ended_at: datetime
    outcome: str
    counts: dict[str, int]
    error: str | None
    trigger: str
    runner: str


class JobOut(msgspec.Struct):
    name: str
    cadence: str
    description: str
    after: list[str]
    last_completed: date | None
    # Dates the scheduler still owes the job as of the business date (0 when it is up to date).
    owed: int
    last_run: RunOut | None


class JobList(msgspec.Struct):
    business_date: date
    items: list[JobOut]


class RunPage(msgspec.Struct):
    items: list[RunOut]
    next_cursor: str | None


def _run(row: Any) -> RunOut:
    return RunOut(
        id=str(row.id),
        job=row.job,
        business_date=row.business_date,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        counts=dict(row.counts),
        error=row.error,
        trigger=row.trigger,
        runner=row.runner,
    )


@get("/jobs")
async def list_jobs(ctx: Ctx) -> JobList:
    """Every scheduled job in the order they run for a date, with its progress and latest run."""
    authorize(ctx, READERS)
    today = ctx.today
    done = await queries.last_completed(ctx.conn)
    latest = await queries.latest_runs(ctx.conn)
    items = []
    for job in jobs.JOBS:
        last = done.get(job.name)
        run = latest.get(job.name)
        items.append(
            JobOut(
                name=job.name,
                cadence=job.cadence.name,
                description=job.description,
                after=list(job.after),
                last_completed=last,
                owed=len(jobs.pending_dates(job, last, today)),
                last_run=_run(run) if run is not None else None,
            )
        )
    return JobList(today, items)


@get("/jobs/{name:str}/runs")
async def list_runs(
    ctx: Ctx,
    name: FromPath[str],
    business_date: FromQuery[str | None] = None,
    outcome: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> RunPage:
    """Runs of one job, newest first; filter by `business_date` or `outcome` (ok, failed)."""
    authorize(ctx, READERS)
    job = jobs.get(name)  # 404 for a job that does not exist
    size = check_limit(limit)
    day = parse_date(business_date, "business_date") if business_date is not None else None
    if outcome is not None and outcome not in OUTCOMES:
        raise invalid("outcome", f"must be one of {', '.join(OUTCOMES)}")
    before = decode_cursor(cursor)
    if before is not None and not before.isdigit():
        raise invalid("cursor", "is not a cursor this server gave out")
    rows = await queries.list_runs(
        ctx.conn,
        job.name,
        business_date=day,
        outcome=outcome,
        before_id=int(before) if before is not None else None,
        limit=size + 1,
    )
    items, next_cursor = page(rows, size, lambda row: row.id)
    return RunPage([_run(row) for row in items], next_cursor)


router = Router(path="/", route_handlers=[list_jobs, list_runs])

"""Reads of job progress and run history."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import capacity_snapshots, job_runs, job_state


async def last_completed(conn: AsyncConnection) -> dict[str, date | None]:
    return {row.job: row.last_completed for row in await conn.execute(sa.select(job_state))}


async def latest_runs(conn: AsyncConnection) -> dict[str, Row[Any]]:
    """The most recent run of each job."""
    newest = sa.select(sa.func.max(job_runs.c.id)).group_by(job_runs.c.job).scalar_subquery()
    query = sa.select(job_runs).where(job_runs.c.id.in_(newest))
    return {row.job: row for row in await conn.execute(query)}


async def list_runs(
    conn: AsyncConnection,
    job: str | None = None,
    *,
    business_date: date | None = None,
    outcome: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Runs of a job (or of every job), newest first."""
    query = sa.select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
    if job is not None:
        query = query.where(job_runs.c.job == job)
    if business_date is not None:
        query = query.where(job_runs.c.business_date == business_date)
    if outcome is not None:
        query = query.where(job_runs.c.outcome == outcome)
    if before_id is not None:
        query = query.where(job_runs.c.id < before_id)
    return list((await conn.execute(query)).all())


async def capacity_history(
    conn: AsyncConnection, agreement_id: str, *, date_from: date | None = None, date_to: date | None = None
) -> list[Row[Any]]:
    """An agreement's daily capacity snapshots (the `capacity_snapshots` job), oldest first: the series
    behind the managers' charts."""
    query = (
        sa.select(capacity_snapshots)
        .where(capacity_snapshots.c.agreement_id == agreement_id)
        .order_by(capacity_snapshots.c.business_date)
    )
    if date_from is not None:
        query = query.where(capacity_snapshots.c.business_date >= date_from)
    if date_to is not None:
        query = query.where(capacity_snapshots.c.business_date <= date_to)
    return list((await conn.execute(query)).all())

"""What the jobs announce: alerts recorded once in `job_alerts`, published as events and audit records.

Set-based: a job inserts the alerts it finds with one INSERT … SELECT that skips those already raised,
tagged with the run's token; `publish` then writes one event and one audit record per new alert with
INSERT … SELECT again. Running the job again for the same date finds every alert raised already, so it
publishes nothing: that is what makes the alerting jobs idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement, FromClause

from loanfund import events as event_feed
from loanfund.clock import utcnow
from loanfund.db.tables import audit_log, events, job_alerts
from loanfund.db.types import UTCDateTime
from loanfund.jobs.sql import pairs
from loanfund.uow import Tx


async def raise_new(
    tx: Tx,
    kind: str,
    found: sa.Select[Any],
    *,
    on: date,
    token: str,
) -> int:
    """Record as raised on `on` each row of `found` (columns subject_id, key, fund_code, bank_code,
    region_code) that has not been raised before under `kind`; returns how many were new."""
    rows = found.subquery("found")
    already = (
        sa.select(sa.literal(1))
        .select_from(job_alerts)
        .where(
            job_alerts.c.kind == kind,
            job_alerts.c.subject_id == rows.c.subject_id,
            job_alerts.c.key == rows.c.key,
        )
    )
    select = sa.select(
        sa.literal(kind, sa.String()),
        rows.c.subject_id,
        rows.c.key,
        sa.literal(on, sa.Date()),
        sa.literal(token, sa.String()),
        rows.c.fund_code,
        rows.c.bank_code,
        rows.c.region_code,
    ).where(~sa.exists(already))
    result = await tx.conn.execute(
        job_alerts.insert().from_select(
            ["kind", "subject_id", "key", "raised_on", "run_token", "fund_code", "bank_code", "region_code"],
            select,
        )
    )
    return int(result.rowcount or 0)


async def publish(
    tx: Tx,
    *,
    source: FromClause,
    where: ColumnElement[bool],
    event_type: str,
    action: str,
    entity_type: str,
    entity_id: ColumnElement[Any],
    data: Mapping[str, ColumnElement[Any] | str],
) -> int:
    """One event and one audit record per row of `source` matching `where`, written by the database.

    `source` must expose the columns fund_code, bank_code, region_code of `job_alerts` (join to it).
    """
    now = sa.literal(utcnow(), UTCDateTime())
    body = pairs(dict(data))
    event_rows = (
        sa.select(
            now,
            sa.literal(event_type, sa.String()),
            job_alerts.c.fund_code,
            job_alerts.c.region_code,
            job_alerts.c.bank_code,
            body,
            # The feed orders events by their transaction (loanfund/events.py): every writer sets it.
            event_feed.tx_id_column(tx.conn),
        )
        .select_from(source)
        .where(where)
    )
    result = await tx.conn.execute(
        events.insert().from_select(
            ["occurred_at", "type", "fund_code", "region_code", "bank_code", "data", "tx_id"], event_rows
        )
    )
    audit_rows = (
        sa.select(
            now,
            sa.literal(tx.actor.client_id, sa.String()),
            sa.literal(tx.actor.request_id, sa.String()),
            sa.literal(action, sa.String()),
            sa.literal(entity_type, sa.String()),
            entity_id,
            job_alerts.c.region_code,
            body,
        )
        .select_from(source)
        .where(where)
    )
    await tx.conn.execute(
        audit_log.insert().from_select(
            [
                "occurred_at",
                "client_id",
                "request_id",
                "action",
                "entity_type",
                "entity_id",
                "region_code",
                "changes",
            ],
            audit_rows,
        )
    )
    return int(result.rowcount or 0)


async def open_flags(tx: Tx, kind: str) -> dict[str, Any]:
    """Flags of `kind` raised and not cleared, by subject."""
    query = sa.select(job_alerts).where(job_alerts.c.kind == kind, job_alerts.c.cleared_on.is_(None))
    return {row.subject_id: row for row in await tx.conn.execute(query)}


async def raise_flag(
    tx: Tx,
    kind: str,
    subject_id: str,
    *,
    on: date,
    token: str,
    fund_code: str | None,
    bank_code: str | None,
    region_code: str | None,
) -> bool:
    """Raise a flag unless one is open or one was raised or cleared on or after `on` (a run for an
    earlier date must not undo a later one's decision). True when raised now."""
    later = await tx.conn.scalar(
        sa.select(sa.func.count())
        .select_from(job_alerts)
        .where(
            job_alerts.c.kind == kind,
            job_alerts.c.subject_id == subject_id,
            sa.or_(
                job_alerts.c.cleared_on.is_(None),
                job_alerts.c.raised_on >= on,
                job_alerts.c.cleared_on >= on,
            ),
        )
    )
    if later:
        return False
    await tx.conn.execute(
        job_alerts.insert().values(
            kind=kind,
            subject_id=subject_id,
            key=on.isoformat(),
            raised_on=on,
            run_token=token,
            fund_code=fund_code,
            bank_code=bank_code,
            region_code=region_code,
        )
    )
    return True


async def clear_flag(tx: Tx, kind: str, subject_id: str, *, on: date) -> bool:
    """Close the open flag raised before `on`; True when one was closed now."""
    result = await tx.conn.execute(
        job_alerts.update()
        .where(
            job_alerts.c.kind == kind,
            job_alerts.c.subject_id == subject_id,
            job_alerts.c.cleared_on.is_(None),
            job_alerts.c.raised_on < on,
        )
        .values(cleared_on=on)
    )
    return bool(result.rowcount)


async def raise_once(
    tx: Tx,
    kind: str,
    subject_id: str,
    key: str,
    *,
    on: date,
    token: str,
    fund_code: str | None,
    bank_code: str | None,
    region_code: str | None,
) -> bool:
    """Record a one-off alert unless raised before; True when raised now."""
    exists = await tx.conn.scalar(
        sa.select(sa.func.count())
        .select_from(job_alerts)
        .where(job_alerts.c.kind == kind, job_alerts.c.subject_id == subject_id, job_alerts.c.key == key)
    )
    if exists:
        return False
    await tx.conn.execute(
        job_alerts.insert().values(
            kind=kind,
            subject_id=subject_id,
            key=key,
            raised_on=on,
            run_token=token,
            fund_code=fund_code,
            bank_code=bank_code,
            region_code=region_code,
        )
    )
    return True

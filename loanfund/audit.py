"""Who did what: the actor of a change and the append-only audit log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import audit_log


@dataclass(frozen=True)
class Actor:
    """The client making a change, and the request it came in (for the audit log and entries)."""

    client_id: str | None
    request_id: str | None = None

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(client_id=None, request_id=f"job:{job}")


# Built once: a statement object keeps its compiled form cached, and the values go in as parameters.
_INSERT = audit_log.insert()


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    changes: Mapping[str, Any],
    *,
    region_code: str | None = None,
) -> None:
    await conn.execute(
        _INSERT, entry(actor, action, entity_type, entity_id, changes, region_code=region_code)
    )


def entry(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    changes: Mapping[str, Any],
    *,
    region_code: str | None = None,
) -> dict[str, Any]:
    """An audit record as `record` writes it, for `record_all` to write later with others."""
    return {
        "occurred_at": utcnow(),
        "client_id": actor.client_id,
        "request_id": actor.request_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "region_code": region_code,
        "changes": dict(changes),
    }


async def record_all(conn: AsyncConnection, entries: Sequence[dict[str, Any]]) -> None:
    """Write records made by `entry`, in their order, in one round trip."""
    if entries:
        await conn.execute(_INSERT, list(entries))


async def list_records(
    conn: AsyncConnection,
    *,
    region_prefix: str | None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    client_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    after_id: int | None = None,
    limit: int = 50,
    newest_first: bool = False,
) -> list[Row[Any]]:
    """Audit records in order (`newest_first`: the latest `limit` of them, as a person reading them
    wants); `region_prefix` limits them to an auditor's scope; dates are UTC days."""
    order = audit_log.c.id.desc() if newest_first else audit_log.c.id
    query = sa.select(audit_log).order_by(order).limit(limit)
    if region_prefix is not None:
        query = query.where(audit_log.c.region_code.startswith(region_prefix, autoescape=True))
    if entity_type:
        query = query.where(audit_log.c.entity_type == entity_type)
    if entity_id:
        query = query.where(audit_log.c.entity_id == entity_id)
    if client_id:
        query = query.where(audit_log.c.client_id == client_id)
    if date_from:
        query = query.where(audit_log.c.occurred_at >= datetime.combine(date_from, time.min, UTC))
    if date_to:
        query = query.where(
            audit_log.c.occurred_at < datetime.combine(date_to + timedelta(days=1), time.min, UTC)
        )
    if after_id is not None:
        query = query.where(audit_log.c.id > after_id)
    return list((await conn.execute(query)).all())

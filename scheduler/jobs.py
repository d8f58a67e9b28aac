"""Two jobs as the first scheduler ran them, for scripts written against it: each runs the library job
(`loanfund.jobs`) for today's business date in its own transaction, outside the job history."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import uow
from loanfund.audit import Actor
from loanfund.clock import utcnow
from loanfund.config import Settings
from loanfund.jobs import housekeeping


async def purge_idempotency_keys(engine: AsyncEngine, settings: Settings) -> int:
    async with uow.transaction(engine, Actor.system("purge_idempotency_keys")) as tx:
        counts = await housekeeping.purge_keys(
            tx, tx.today, retention_days=settings.idempotency_retention_days, reference=utcnow()
        )
    return counts["purged"]


async def lapse_reservations(engine: AsyncEngine, settings: Settings) -> int:
    async with uow.transaction(engine, Actor.system("lapse_reservations")) as tx:
        counts = await housekeeping.lapse_reservations(tx, tx.today)
    return counts["lapsed"]

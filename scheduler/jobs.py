"""Scheduled jobs. Each is idempotent: running it twice, or in two processes, changes nothing more."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import idempotency, uow
from loanfund.agreements import reservations
from loanfund.audit import Actor
from loanfund.clock import utcnow
from loanfund.config import Settings

log = logging.getLogger("loanfund.scheduler")


async def purge_idempotency_keys(engine: AsyncEngine, settings: Settings) -> int:
    """Forget idempotency keys older than the retention (the contract promises at least 7 days)."""
    cutoff = utcnow() - timedelta(days=max(settings.idempotency_retention_days, 7))
    async with engine.begin() as conn:
        removed = await idempotency.purge(conn, older_than=cutoff)
    log.info("purged %d idempotency keys claimed before %s", removed, cutoff.isoformat())
    return removed


async def lapse_reservations(engine: AsyncEngine, settings: Settings) -> int:
    """Let guarantee reservations past their last day lapse: status and ledger catch up with the reads."""
    async with uow.transaction(engine, Actor.system("lapse_reservations")) as tx:
        lapsed = await reservations.lapse_expired(tx)
    log.info("lapsed %d guarantee reservations that expired before %s", lapsed, tx.today.isoformat())
    return lapsed

"""Reservations that lapsed and idempotency keys past their retention."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from loanfund import idempotency
from loanfund.agreements import reservations
from loanfund.clock import SHANGHAI, utcnow
from loanfund.config import Settings
from loanfund.jobs.framework import Summary
from loanfund.uow import Tx

MIN_RETENTION_DAYS = 7  # the API contract keeps keys at least this long


async def lapse_reservations(tx: Tx, business_date: date) -> Summary:
    """Reservations whose last day is before the date lapse: status and ledger catch up with the reads
    (which already count them as lapsed). Each row is claimed by a conditional update: a second run
    finds nothing left."""
    # The unit of work runs for the job's date (loanfund.jobs.runner), so `tx.today == business_date`.
    lapsed = await reservations.lapse_expired(tx)
    return {"lapsed": lapsed}


async def purge_idempotency_keys(tx: Tx, business_date: date) -> Summary:
    return await purge_keys(tx, business_date, retention_days=Settings.from_env().idempotency_retention_days)


async def purge_keys(
    tx: Tx, business_date: date, *, retention_days: int, reference: datetime | None = None
) -> Summary:
    """Forget keys claimed more than the retention (never under 7 days) before the end of the date in
    Asia/Shanghai, or before now while the date has not ended: keys age by the clock, and for a past
    date the cut-off is fixed, so a second run finds nothing more to purge. `reference` replaces that
    moment (the first scheduler purged by the clock alone)."""
    if reference is None:
        reference = min(datetime.combine(business_date + timedelta(days=1), time.min, SHANGHAI), utcnow())
    cutoff = reference - timedelta(days=max(retention_days, MIN_RETENTION_DAYS))
    return {"purged": await idempotency.purge(tx.conn, older_than=cutoff)}

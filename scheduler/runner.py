"""Runs the jobs in exactly one process.

APScheduler 3 keeps its jobs in memory here (they are defined in code, so no job store is shared).
With PostgreSQL, the process that holds an advisory lock on a dedicated connection is the one that
runs jobs; the others retry the lock every minute and take over if the holder dies. With SQLite
there is one process by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund.config import Settings
from scheduler import jobs

log = logging.getLogger("loanfund.scheduler")

# Arbitrary but fixed: "loanfund" as a 64-bit advisory lock key.
ADVISORY_LOCK_KEY = 0x6C6F616E66756E64
LOCK_RETRY_SECONDS = 60

Job = Callable[[AsyncEngine, Settings], Awaitable[object]]
JOBS: list[tuple[str, Job, dict[str, object]]] = [
    ("purge_idempotency_keys", jobs.purge_idempotency_keys, {"trigger": "cron", "hour": 3, "minute": 17}),
    ("lapse_reservations", jobs.lapse_reservations, {"trigger": "interval", "minutes": 15}),
]


class SchedulerRunner:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.scheduler: AsyncIOScheduler | None = None
        self._lock_conn: AsyncConnection | None = None
        self._waiter: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    async def start(self) -> None:
        if await self._try_lead():
            self._start_jobs()
        else:
            self._waiter = asyncio.create_task(self._wait_for_lead())

    async def _try_lead(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        conn = await self.engine.connect()
        got = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        await (
            conn.commit()
        )  # session-level lock: it outlives the transaction, held while the connection lives
        if got:
            self._lock_conn = conn
            return True
        await conn.close()
        return False

    async def _wait_for_lead(self) -> None:
        while True:
            await asyncio.sleep(LOCK_RETRY_SECONDS)
            try:
                if await self._try_lead():
                    self._start_jobs()
                    return
            except Exception:
                log.exception("could not try the scheduler lock")

    def _start_jobs(self) -> None:
        scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
        for job_id, job, trigger in JOBS:
            scheduler.add_job(
                job,
                id=job_id,
                args=[self.engine, self.settings],
                coalesce=True,
                max_instances=1,
                replace_existing=True,
                **trigger,  # type: ignore[arg-type]
            )
        scheduler.start()
        self.scheduler = scheduler
        log.info("this process runs the scheduled jobs")

    async def stop(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiter
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._lock_conn is not None:
            await self._lock_conn.close()
            self._lock_conn = None

"""Runs the jobs in exactly one process at a time.

APScheduler 3 is the trigger engine, with two interval jobs kept in memory (nothing is shared between
schedulers): `lead` tries to take (or checks it still holds) the leadership every
`scheduler_lock_retry_seconds`, and `tick` runs `loanfund.jobs.catch_up` every `scheduler_tick_seconds`
while this process leads. With PostgreSQL the leader is the process that holds a session-level advisory
lock on a dedicated connection; when it dies, PostgreSQL drops its session and the lock with it, and
the next `lead` attempt of another process takes over (docs/operations.md gives the bound). With SQLite
there is one process by design, and it leads.

Leadership only decides who tries; correctness does not rest on it: each date of each job runs under
the lock of the job's row in `job_state` and only if it is the job's next date (loanfund.jobs.runner).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from loanfund.config import Settings
from loanfund.jobs import catch_up

log = logging.getLogger("loanfund.scheduler")

# Arbitrary but fixed: "loanfund" as a 64-bit advisory lock key.
ADVISORY_LOCK_KEY = 0x6C6F616E66756E64
# The server notices a lost machine (no FIN, no RST) after idle + interval × count seconds of silence.
KEEPALIVE = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}


class SchedulerRunner:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.scheduler: AsyncIOScheduler | None = None
        self._lock_engine: AsyncEngine | None = None
        self._lock_conn: AsyncConnection | None = None
        self._leading = False
        self._tick_lock = asyncio.Lock()
        self._lead_lock = asyncio.Lock()  # the lock connection is used by one coroutine at a time

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
        now = datetime.now(UTC)
        common = {"trigger": "interval", "coalesce": True, "max_instances": 1, "next_run_time": now}
        scheduler.add_job(self._lead, id="lead", seconds=self.settings.scheduler_lock_retry_seconds, **common)
        scheduler.add_job(self._tick, id="tick", seconds=self.settings.scheduler_tick_seconds, **common)
        scheduler.start()
        self.scheduler = scheduler

    async def _lead(self) -> None:
        if self.scheduler is None:  # stopping
            return
        try:
            was_leading = self._leading
            async with self._lead_lock:
                if self.scheduler is None:  # stopped while waiting: take nothing any more
                    return
                self._leading = await self._hold_or_take_lock()
            if self._leading and not was_leading:
                log.info("this process runs the scheduled jobs")
                if self.scheduler is not None:  # catch up now, not at the next tick
                    self.scheduler.modify_job("tick", next_run_time=datetime.now(UTC))
            elif was_leading and not self._leading:
                log.warning("lost the scheduler lock; another process may run the jobs now")
        except Exception:
            log.exception("could not try the scheduler lock")
            self._leading = False

    async def _hold_or_take_lock(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self._lock_conn is not None:
            try:
                await self._lock_conn.execute(sa.text("SELECT 1"))
                await self._lock_conn.commit()
                return True
            except Exception:
                await self._drop_lock_conn()
        if self._lock_engine is None:
            self._lock_engine = create_async_engine(
                self.engine.url, poolclass=NullPool, connect_args={"server_settings": KEEPALIVE}
            )
        conn = await self._lock_engine.connect()
        try:
            got = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            await conn.commit()  # a session-level lock outlives the transaction: held while the session lives
        except Exception:
            await conn.close()
            raise
        if got:
            self._lock_conn = conn
            return True
        await conn.close()
        return False

    async def _drop_lock_conn(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _tick(self) -> None:
        if not self._leading:
            return
        async with self._tick_lock:
            try:
                await catch_up(self.engine, keep_going=lambda: self._leading)
            except Exception:
                log.exception("scheduled jobs: catch-up failed; retrying at the next tick")

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        self._leading = False  # a catch-up in progress stops after its current date…
        async with self._tick_lock:  # …which finishes (or rolls back) before the lock goes
            pass
        async with self._lead_lock:
            await self._drop_lock_conn()
        if self._lock_engine is not None:
            await self._lock_engine.dispose()
            self._lock_engine = None

"""Settings read from the environment (see docs/operations.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///loanfund.db"


def normalise_database_url(url: str) -> str:
    """Map plain `sqlite://` and `postgresql://` URLs to the async drivers loanfund runs on."""
    for plain, async_prefix in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return async_prefix + url[len(plain) :]
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str
    pool_size: int
    idempotency_claim_timeout_seconds: int
    idempotency_retention_days: int
    # Requests larger than this are refused while they stream in (413), before they are held whole.
    max_body_bytes: int = 1_000_000
    # Per-client request budget, e.g. "600/minute" (units: second, minute, hour, day); None is off.
    rate_limit: str | None = None
    # Scheduler (docs/operations.md): how often the leader looks for due dates, and how often the other
    # processes try to take the lead; a dead leader is replaced within the second.
    scheduler_tick_seconds: float = 60.0
    scheduler_lock_retry_seconds: float = 15.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=normalise_database_url(
                os.environ.get("LOANFUND_DATABASE_URL", DEFAULT_DATABASE_URL)
            ),
            pool_size=int(os.environ.get("LOANFUND_DB_POOL_SIZE", "5")),
            idempotency_claim_timeout_seconds=int(os.environ.get("LOANFUND_IDEMPOTENCY_TIMEOUT", "60")),
            idempotency_retention_days=int(os.environ.get("LOANFUND_IDEMPOTENCY_RETENTION_DAYS", "8")),
            max_body_bytes=int(os.environ.get("LOANFUND_MAX_BODY_BYTES", "1000000")),
            rate_limit=os.environ.get("LOANFUND_RATE_LIMIT") or None,
            scheduler_tick_seconds=float(os.environ.get("LOANFUND_SCHEDULER_TICK_SECONDS", "60")),
            scheduler_lock_retry_seconds=float(os.environ.get("LOANFUND_SCHEDULER_LOCK_RETRY_SECONDS", "15")),
        )

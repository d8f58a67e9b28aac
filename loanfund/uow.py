"""One unit of work: the transaction every change of loanfund is made in.

A `Tx` carries the connection, the actor, the business date, and what must be written last. Services
take a `Tx` and never commit; whoever opens the transaction (the API per request, a scheduled job, the
demo, a script through `transaction`) commits it with `Tx.commit`, which writes the deferred parts
in this order and then commits:

1. audit records and events, in the order they were recorded (one round trip each);
2. the postings of entries marked `last=True` (`loanfund.ledger.post`): they update balance rows
   that many requests share (`memo:commitments:{bank}`), and a row updated in a transaction stays
   locked until its commit, so they are written as late as possible.

Because of (2) a balance read in the same transaction does not include a deferred entry until
`Tx.flush` has run; the capacity reads call it first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import audit as audit_log
from loanfund import events as event_feed
from loanfund.audit import Actor
from loanfund.clock import business_date


@dataclass(frozen=True)
class OpenEntry:
    """A journal entry whose row is written and whose postings wait for the commit
    (`loanfund.ledger.post(last=True)`)."""

    entry_id: str
    fund_code: str
    rows: tuple[dict[str, object], ...]


@dataclass
class Tx:
    conn: AsyncConnection
    actor: Actor
    today: date
    _audit: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _last_postings: list[OpenEntry] = field(default_factory=list, repr=False)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    def audit(
        self,
        action: str,
        entity_type: str,
        entity_id: str,
        changes: Mapping[str, Any],
        *,
        region_code: str | None = None,
    ) -> None:
        """Record a change for the audit log (written at commit, in order)."""
        self._audit.append(
            audit_log.entry(self.actor, action, entity_type, entity_id, changes, region_code=region_code)
        )

    def emit(
        self,
        type: str,
        *,
        fund_code: str | None,
        region_code: str | None,
        bank_code: str | None,
        data: Mapping[str, Any],
    ) -> None:
        """Publish an event to the feed (written at commit, with the change it reports)."""
        self._events.append(
            event_feed.row(type, fund_code=fund_code, region_code=region_code, bank_code=bank_code, data=data)
        )

    def post_last(self, entry: OpenEntry) -> None:
        self._last_postings.append(entry)

    async def settle(self) -> None:
        """Write the deferred postings now, so that the balances read next include them. Services that
        read balances call it first; in a transaction of one hot change there is nothing to write."""
        entries, self._last_postings = self._last_postings, []
        for entry in entries:
            await _write_postings(self.conn, entry)

    async def flush(self) -> None:
        """Write everything deferred so far: audit records, events, then the last postings."""
        records, self._audit = self._audit, []
        await audit_log.record_all(self.conn, records)
        rows, self._events = self._events, []
        await event_feed.write_all(self.conn, rows)
        await self.settle()

    async def commit(self) -> None:
        await self.flush()
        await self.conn.commit()

    async def rollback(self) -> None:
        self._audit.clear()
        self._events.clear()
        self._last_postings.clear()
        await self.conn.rollback()


async def _write_postings(conn: AsyncConnection, entry: OpenEntry) -> None:
    from loanfund.ledger.entries import write_postings  # the ledger builds on this module

    await write_postings(conn, entry)


def begin(conn: AsyncConnection, actor: Actor, today: date | None = None) -> Tx:
    """A `Tx` over a connection whose transaction the caller has begun (or will, on first use)."""
    return Tx(conn, actor, today if today is not None else business_date())


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine, actor: Actor, today: date | None = None) -> AsyncIterator[Tx]:
    """Open a connection and a transaction; commit when the block ends, roll back if it raises."""
    async with engine.connect() as conn:
        tx = begin(conn, actor, today)
        try:
            yield tx
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()

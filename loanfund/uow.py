"""One unit of work: the transaction every change of loanfund is made in.

A `Tx` carries the connection, the actor, the business date, and what must be written last. Services
take a `Tx` and never commit; whoever opens the transaction (the API per request, a scheduled job, the
demo, a script through `transaction`) commits it with `Tx.commit`, which writes the deferred parts
and then commits:

1. audit records and events, in the order they were recorded;
2. the postings of entries marked `last=True` (`loanfund.ledger.post`): they update balance rows
   that many requests share (`memo:commitments:{bank}`), and a row updated in a transaction stays
   locked until its commit, so they are written as late as possible;
3. with `commit(key=…)`, the response stored for the request's idempotency key (the API's), or
   nothing at all when a retry has taken the key over.

On PostgreSQL all of it goes in one statement (one round trip: every statement of a request costs
about a quarter of a millisecond of the API's CPU, see docs/performance.md), whose parts run in no
fixed order among themselves — each part keeps its own rows' order, and all of it is the last write
before COMMIT; on SQLite one statement per table, in the order above.

Because of (2) a balance read in the same transaction does not include a deferred entry until
`Tx.settle` (or `Tx.flush`) has run; the capacity and cash reads call `settle` first.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import audit as audit_log
from loanfund import events as event_feed
from loanfund import idempotency
from loanfund.audit import Actor
from loanfund.clock import business_date, utcnow


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
        await self._write_deferred(None)

    async def _write_deferred(self, key: KeyCompletion | None) -> bool:
        records, self._audit = self._audit, []
        rows, self._events = self._events, []
        entries, self._last_postings = self._last_postings, []
        if self.dialect == "postgresql":
            return await _write_in_one_statement(self.conn, records, rows, entries, key)
        await audit_log.record_all(self.conn, records)
        await event_feed.write_all(self.conn, rows)
        for entry in entries:
            await _write_postings(self.conn, entry)
        return key is None or await idempotency.complete(self.conn, key.claim, key.response)

    async def commit(self, *, key: KeyCompletion | None = None) -> bool:
        """Write the deferred parts and commit. With `key`, the response is stored for the request's
        idempotency key in the same transaction; if a retry has taken the key over, everything rolls
        back and the result is False (the retry's effect is the one that counts)."""
        if not await self._write_deferred(key):
            await self.rollback()
            return False
        await self.conn.commit()
        return True

    async def rollback(self) -> None:
        self._audit.clear()
        self._events.clear()
        self._last_postings.clear()
        await self.conn.rollback()


@dataclass(frozen=True)
class KeyCompletion:
    """The response to store for a claimed idempotency key when the request's transaction commits."""

    claim: idempotency.Claim
    response: idempotency.StoredResponse


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # as `UTCDateTime` stores it


# Each part of the statement: a data-modifying CTE over `unnest` of one array per column (PostgreSQL
# keeps the arrays' order, so ids follow the order of recording, and postings lock balance rows in
# the order `ledger.post` sorted them).
_AUDIT_PART = """audit AS (INSERT INTO audit_log
    (occurred_at, client_id, request_id, action, entity_type, entity_id, region_code, changes)
    SELECT * FROM unnest(CAST(:a_occurred_at AS timestamp[]), CAST(:a_client_id AS varchar[]),
        CAST(:a_request_id AS varchar[]), CAST(:a_action AS varchar[]), CAST(:a_entity_type AS varchar[]),
        CAST(:a_entity_id AS varchar[]), CAST(:a_region_code AS varchar[]), CAST(:a_changes AS json[])))"""
_EVENTS_PART = """feed AS (INSERT INTO events
    (occurred_at, type, fund_code, region_code, bank_code, data, tx_id)
    SELECT e.*, pg_current_xact_id()::text::bigint FROM unnest(CAST(:e_occurred_at AS timestamp[]),
        CAST(:e_type AS varchar[]), CAST(:e_fund_code AS varchar[]), CAST(:e_region_code AS varchar[]),
        CAST(:e_bank_code AS varchar[]), CAST(:e_data AS json[])) AS e)"""
_POSTINGS_PART = """posted AS (INSERT INTO postings (entry_id, account_id, amount_fen)
    SELECT * FROM unnest(CAST(:p_entry_id AS varchar[]), CAST(:p_account_id AS bigint[]),
        CAST(:p_amount_fen AS bigint[])))"""
_KEY_PART = """completed AS (UPDATE idempotency_keys SET completed_at = :k_completed_at,
        response_status = :k_status, response_headers = CAST(:k_headers AS json), response_body = :k_body
    WHERE client_id = :k_client_id AND key = :k_key AND claim_token = :k_claim_token
        AND completed_at IS NULL
    RETURNING 1)"""
_STATEMENTS: dict[tuple[bool, bool, bool, bool], sa.TextClause] = {}


def _statement(audit: bool, feed: bool, posted: bool, key: bool) -> sa.TextClause:
    shape = (audit, feed, posted, key)
    statement = _STATEMENTS.get(shape)
    if statement is None:
        parts = [
            part
            for part, present in zip(
                (_AUDIT_PART, _EVENTS_PART, _POSTINGS_PART, _KEY_PART), shape, strict=True
            )
            if present
        ]
        result = "SELECT count(*) FROM completed" if key else "SELECT 1"
        statement = _STATEMENTS[shape] = sa.text(f"WITH {', '.join(parts)} {result}")
    return statement


async def _write_in_one_statement(
    conn: AsyncConnection,
    records: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    entries: Sequence[OpenEntry],
    key: KeyCompletion | None,
) -> bool:
    postings = [posting for entry in entries for posting in entry.rows]
    if not (records or rows or postings or key):
        return True
    params: dict[str, Any] = {}
    if records:
        params["a_occurred_at"] = [_naive_utc(r["occurred_at"]) for r in records]
        for column in ("client_id", "request_id", "action", "entity_type", "entity_id", "region_code"):
            params[f"a_{column}"] = [r[column] for r in records]
        params["a_changes"] = [json.dumps(r["changes"]) for r in records]  # as sa.JSON serialises
    if rows:
        params["e_occurred_at"] = [_naive_utc(r["occurred_at"]) for r in rows]
        for column in ("type", "fund_code", "region_code", "bank_code"):
            params[f"e_{column}"] = [r[column] for r in rows]
        params["e_data"] = [json.dumps(r["data"]) for r in rows]
    if postings:
        for column in ("entry_id", "account_id", "amount_fen"):
            params[f"p_{column}"] = [p[column] for p in postings]
    if key is not None:
        params.update(
            k_completed_at=_naive_utc(utcnow()),
            k_status=key.response.status,
            k_headers=json.dumps(key.response.headers),
            k_body=key.response.body,
            k_client_id=key.claim.client_id,
            k_key=key.claim.key,
            k_claim_token=key.claim.token,
        )
    statement = _statement(bool(records), bool(rows), bool(postings), key is not None)
    completed = await conn.scalar(statement, params)
    return key is None or completed == 1


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

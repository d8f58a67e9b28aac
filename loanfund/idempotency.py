"""Idempotency keys: a request's effect happens once, whatever the retries, across processes.

A key is a row unique per (client, key). It is claimed in its own short transaction before the work
starts; the stored response is written in the same transaction as the work, by compare-and-set on
the claim token, so only one claimant can ever complete it. A claim left by a crashed request is
taken over after a timeout; if the original then tries to finish, its completion fails and its
transaction rolls back.

On PostgreSQL a claim also names the database session that made it (its backend pid, in the claim
token), and that session runs the request to its end. A claimant whose session is gone (its process
crashed or was killed: PostgreSQL ends the session and rolls its transaction back) can never finish,
so its claim is taken over at once instead of after the timeout. A live session keeps the timeout.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import idempotency_keys as keys
from loanfund.errors import IdempotencyKeyReused, RequestInProgress
from loanfund.ids import new_id


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Method + path + canonical JSON body (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        material = canonical.encode()
    except (ValueError, RecursionError):  # not JSON, or too deep to canonicalise: the bytes as sent
        material = body
    return hashlib.sha256(method.upper().encode() + b"\n" + path.encode() + b"\n" + material).hexdigest()


@dataclass(frozen=True)
class Claim:
    client_id: str
    key: str
    token: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


# Built once (every keyed request runs them): compiled forms stay cached, values go in as parameters.
_CLAIM = {
    dialect: insert(keys).on_conflict_do_nothing().returning(keys.c.claim_token)
    for dialect, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_COMPLETE = keys.update().where(
    keys.c.client_id == sa.bindparam("b_client_id"),
    keys.c.key == sa.bindparam("b_key"),
    keys.c.claim_token == sa.bindparam("b_claim_token"),
    keys.c.completed_at.is_(None),
)


async def new_claim_token(conn: AsyncConnection) -> str:
    """A random claim token; on PostgreSQL it ends with `@<backend pid>` of the claiming session."""
    token = new_id("c")  # 28 characters: with `@` and a pid it fits the 40 of the column
    if conn.dialect.name != "postgresql":
        return token
    driver = (await conn.get_raw_connection()).driver_connection
    get_pid = getattr(driver, "get_server_pid", None)  # asyncpg knows it without a round trip
    pid = get_pid() if get_pid is not None else await conn.scalar(sa.text("SELECT pg_backend_pid()"))
    return f"{token}@{int(pid)}"


async def _claimant_gone(conn: AsyncConnection, claim_token: str) -> bool:
    """True when the session that claimed has ended (PostgreSQL only; pids of other roles' sessions
    are visible in pg_stat_activity to everyone). A pid reused by a new session only means waiting
    for the timeout, as before."""
    _, at, pid = claim_token.partition("@")
    if conn.dialect.name != "postgresql" or not at or not pid.isdigit():
        return False
    alive = await conn.scalar(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)"), {"pid": int(pid)}
    )
    return not alive


async def claim(
    conn: AsyncConnection, *, client_id: str, key: str, fingerprint: str, timeout: timedelta
) -> Claim | StoredResponse:
    """Claim a key, or return the stored response of its completed request. Commits its own work."""
    now = utcnow()
    token = await new_claim_token(conn)
    try:
        inserted = await conn.scalar(
            _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"],
            {
                "client_id": client_id,
                "key": key,
                "fingerprint": fingerprint,
                "claim_token": token,
                "claimed_at": now,
            },
        )
        if inserted == token:  # a new key (the common case): it is ours, nothing more to read
            outcome: Claim | StoredResponse = Claim(client_id, key, token)
        else:
            row = (
                await conn.execute(
                    sa.select(keys).where(keys.c.client_id == client_id, keys.c.key == key).with_for_update()
                )
            ).one()
            outcome = await _decide(conn, row, token, fingerprint, now, timeout)
    except BaseException:
        await conn.rollback()
        raise
    await conn.commit()
    return outcome


async def claim_new(conn: AsyncConnection, *, client_id: str, key: str, fingerprint: str) -> Claim | None:
    """Claim a key never used before, in one statement: run it on a connection in autocommit mode, so
    that the claim is committed at once (as `claim` commits it). None when the key exists: then
    `claim` decides (the stored response, a reused key, a request still running, or a takeover)."""
    token = await new_claim_token(conn)
    inserted = await conn.scalar(
        _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"],
        {
            "client_id": client_id,
            "key": key,
            "fingerprint": fingerprint,
            "claim_token": token,
            "claimed_at": utcnow(),
        },
    )
    return Claim(client_id, key, token) if inserted == token else None


async def _decide(
    conn: AsyncConnection, row: Any, token: str, fingerprint: str, now: datetime, timeout: timedelta
) -> Claim | StoredResponse:
    if row.claim_token == token:
        return Claim(row.client_id, row.key, token)
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    if row.completed_at is not None:
        return StoredResponse(row.response_status, dict(row.response_headers or {}), bytes(row.response_body))
    if row.claimed_at < now - timeout or await _claimant_gone(conn, row.claim_token):
        taken = await conn.execute(
            keys.update()
            .where(
                keys.c.client_id == row.client_id,
                keys.c.key == row.key,
                keys.c.claim_token == row.claim_token,
                keys.c.completed_at.is_(None),
            )
            .values(claim_token=token, claimed_at=now)
        )
        if taken.rowcount == 1:
            return Claim(row.client_id, row.key, token)
    raise RequestInProgress("a request with this Idempotency-Key is still running; retry later")


async def complete(conn: AsyncConnection, claim_: Claim, response: StoredResponse) -> bool:
    """Store the response inside the caller's transaction. False: the claim was taken over."""
    result = await conn.execute(
        _COMPLETE,
        {
            "b_client_id": claim_.client_id,
            "b_key": claim_.key,
            "b_claim_token": claim_.token,
            "completed_at": utcnow(),
            "response_status": response.status,
            "response_headers": response.headers,
            "response_body": response.body,
        },
    )
    return bool(result.rowcount == 1)


async def release(conn: AsyncConnection, claim_: Claim) -> None:
    """Give a claim up (the request failed with a server error) so that a retry runs it again."""
    await conn.execute(
        keys.delete().where(
            keys.c.client_id == claim_.client_id,
            keys.c.key == claim_.key,
            keys.c.claim_token == claim_.token,
            keys.c.completed_at.is_(None),
        )
    )


async def purge(conn: AsyncConnection, *, older_than: datetime) -> int:
    result = await conn.execute(keys.delete().where(keys.c.claimed_at < older_than))
    return int(result.rowcount or 0)

"""API clients: who may call, with which role and scope. Tokens are stored only as SHA-256 hashes.

Tokens carry 256 random bits, so a fast hash is enough: nobody can guess one to brute-force it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import idempotency
from loanfund.audit import Actor
from loanfund.clock import utcnow
from loanfund.db.tables import banks, clients, idempotency_keys
from loanfund.errors import InvalidState, NotFound, invalid
from loanfund.ids import new_id
from loanfund.uow import Tx


class Role(StrEnum):
    ADMIN = "admin"
    FUND_MANAGER = "fund_manager"
    WINDOW = "window"
    BANK = "bank"
    AUDITOR = "auditor"


ROLES = tuple(Role)
REGION_ROLES = (Role.FUND_MANAGER, Role.WINDOW, Role.AUDITOR)


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    role: str
    region_prefix: str | None
    bank_code: str | None

    def sees_region(self, region_code: str) -> bool:
        """Whether a region-scoped resource is inside this client's scope (banks: never by region)."""
        if self.role == "admin":
            return True
        if self.role in REGION_ROLES:
            return region_code.startswith(self.region_prefix or "")
        return False

    @property
    def actor(self) -> Actor:
        return Actor(self.id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _client(row: Any) -> Client:
    return Client(
        id=row.id, name=row.name, role=row.role, region_prefix=row.region_prefix, bank_code=row.bank_code
    )


async def add_client(
    tx: Tx,
    *,
    role: str,
    name: str,
    region_prefix: str | None = None,
    bank_code: str | None = None,
) -> tuple[Client, str]:
    """Create a client; returns it and its token, which is never stored or shown again."""
    conn = tx.conn
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if not name.strip():
        raise invalid("name", "must not be empty")
    if role in REGION_ROLES:
        if region_prefix is None or not re.fullmatch(r"[0-9]{1,6}", region_prefix):
            raise invalid("region_prefix", f"a {role} needs a region-code prefix of 1–6 digits")
    elif region_prefix is not None:
        raise invalid("region_prefix", f"a {role} has no region scope")
    if role == "bank":
        if bank_code is None:
            raise invalid("bank_code", "a bank client needs the code of its bank")
        if await conn.scalar(sa.select(banks.c.code).where(banks.c.code == bank_code)) is None:
            raise invalid("bank_code", f"no bank with code {bank_code}")
    elif bank_code is not None:
        raise invalid("bank_code", f"a {role} is not tied to a bank")
    token = "lf_" + secrets.token_urlsafe(32)
    client = Client(new_id("cli"), name, role, region_prefix, bank_code)
    await conn.execute(
        clients.insert().values(
            id=client.id,
            name=name,
            role=role,
            region_prefix=region_prefix,
            bank_code=bank_code,
            token_hash=hash_token(token),
            created_at=utcnow(),
        )
    )
    tx.audit(
        "client.added",
        "client",
        client.id,
        {"name": name, "role": role, "region_prefix": region_prefix, "bank_code": bank_code},
    )
    return client, token


# Built once (every API request runs it): the compiled form stays cached, the hash is a parameter.
_BY_TOKEN = sa.select(clients).where(
    clients.c.token_hash == sa.bindparam("token_hash"), clients.c.revoked_at.is_(None)
)


async def authenticate(conn: AsyncConnection, token: str) -> Client | None:
    row = (await conn.execute(_BY_TOKEN, {"token_hash": hash_token(token)})).first()
    return None if row is None else _client(row)


def _authenticate_and_claim() -> sa.Select[Any]:
    client = _BY_TOKEN.cte("client")
    claimed = (
        postgresql.insert(idempotency_keys)
        .from_select(
            ["client_id", "key", "fingerprint", "claim_token", "claimed_at"],
            sa.select(
                client.c.id,
                sa.bindparam("key", type_=sa.String()),
                sa.bindparam("fingerprint", type_=sa.String()),
                sa.bindparam("claim_token", type_=sa.String()),
                sa.bindparam("claimed_at", type_=idempotency_keys.c.claimed_at.type),
            ),
        )
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.claim_token)
        .cte("claimed")
    )
    return sa.select(client, sa.select(claimed.c.claim_token).scalar_subquery().label("claimed_token"))


_AUTHENTICATE_AND_CLAIM = _authenticate_and_claim()


async def authenticate_and_claim(
    conn: AsyncConnection, token: str, *, key: str, fingerprint: str
) -> tuple[Client | None, idempotency.Claim | None]:
    """`authenticate` and `idempotency.claim_new` in one statement (PostgreSQL, autocommit): the
    client of the token, and the claim of `key` if it was never used. A key seen before gives no claim
    (`idempotency.claim` decides); an unknown token claims nothing."""
    claim_token = await idempotency.new_claim_token(conn)
    params = {
        "token_hash": hash_token(token),
        "key": key,
        "fingerprint": fingerprint,
        "claim_token": claim_token,
        "claimed_at": utcnow(),
    }
    row = (await conn.execute(_AUTHENTICATE_AND_CLAIM, params)).first()
    if row is None:
        return None, None
    client = _client(row)
    claimed = row.claimed_token == claim_token
    return client, idempotency.Claim(client.id, key, claim_token) if claimed else None


async def list_clients(
    conn: AsyncConnection, *, after: str | None = None, limit: int | None = None
) -> list[tuple[Client, Any]]:
    """Clients in id order (ids are time-ordered), optionally a page: those after id `after`."""
    query = sa.select(clients).order_by(clients.c.id)
    if after is not None:
        query = query.where(clients.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    rows = (await conn.execute(query)).all()
    return [(_client(row), row) for row in rows]


async def revoke_client(tx: Tx, client_id: str) -> None:
    conn = tx.conn
    if client_id == tx.actor.client_id:
        # The last admin would lock everyone out; another admin (or the CLI) revokes this one.
        raise InvalidState("a client cannot revoke its own token", client_id=client_id)
    result = await conn.execute(
        clients.update()
        .where(clients.c.id == client_id, clients.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount != 1:
        exists = await conn.scalar(sa.select(clients.c.id).where(clients.c.id == client_id))
        if exists is None:
            raise NotFound(f"client {client_id} not found")
        return
    tx.audit("client.revoked", "client", client_id, {})

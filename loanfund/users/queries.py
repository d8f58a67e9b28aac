"""Every read of dashboard users and their sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.audit import Actor
from loanfund.db.tables import user_sessions, users


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: str  # fund_manager | auditor
    region_prefix: str

    def sees_region(self, region_code: str) -> bool:
        """The same scope as an API client of the role: a region-code prefix."""
        return region_code.startswith(self.region_prefix)

    @property
    def may_decide(self) -> bool:
        return self.role == "fund_manager"

    def actor(self, request_id: str | None) -> Actor:
        # A user acts under their own id, so the audit log and maker-checker tell people apart from
        # API clients and from each other.
        return Actor(self.id, request_id)


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def user_from_row(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, region_prefix=row.region_prefix)


async def find_by_name(conn: AsyncConnection, name: str, *, for_update: bool = False) -> Any:
    query = sa.select(users).where(users.c.name == name)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).first()


# Built once: every dashboard request runs it.
_SESSION = (
    sa.select(users, user_sessions.c.csrf_token, user_sessions.c.expires_at)
    .select_from(user_sessions.join(users, users.c.id == user_sessions.c.user_id))
    .where(
        user_sessions.c.token_hash == sa.bindparam("token_hash"),
        user_sessions.c.expires_at > sa.bindparam("now"),
        users.c.disabled_at.is_(None),
    )
)


async def session_by_hash(conn: AsyncConnection, token_hash: str, now: datetime) -> Session | None:
    row = (await conn.execute(_SESSION, {"token_hash": token_hash, "now": now})).first()
    if row is None:
        return None
    return Session(user_from_row(row), row.csrf_token, row.expires_at)


async def list_users(conn: AsyncConnection) -> list[Any]:
    return list((await conn.execute(sa.select(users).order_by(users.c.id))).all())

"""Adding users, signing in and out. Commands take a `Tx` and never commit.

Passwords are hashed with argon2id (argon2-cffi's defaults). Session and CSRF tokens carry 256
random bits, so, like API tokens, only a SHA-256 of the session token is stored.

Failed sign-ins are limited per user, in the database so that every process counts the same:
after `MAX_FAILED` failures in a row the user is locked for `LOCK_MINUTES`. An unknown name costs
the same argon2 work as a known one, so timing does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clients import hash_token
from loanfund.clock import utcnow
from loanfund.db.tables import user_sessions, users
from loanfund.errors import Duplicate, SignInFailed, SignInLocked, invalid
from loanfund.ids import new_id
from loanfund.uow import Tx
from loanfund.users.queries import Session, User, find_by_name, session_by_hash, user_from_row

ROLES = ("fund_manager", "auditor")
MIN_PASSWORD_LENGTH = 10
MAX_FAILED = 5
LOCK_MINUTES = 15
SESSION_HOURS = 10  # a working day; signing in again next morning is expected

_hasher = PasswordHasher()
# Verified against when the name is unknown, so that the answer takes as long as for a known name.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 200:
        raise invalid("password", "must have at most 200 characters")
    return password


async def add_user(tx: Tx, *, name: str, role: str, region_prefix: str, password: str) -> User:
    name = name.strip()
    if not name or len(name) > 64:
        raise invalid("name", "must have 1–64 characters")
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[0-9]{1,6}", region_prefix or ""):
        raise invalid("region_prefix", "must be a region-code prefix of 1–6 digits")
    check_password(password)
    if await find_by_name(tx.conn, name) is not None:
        raise Duplicate(f"a user named {name} exists")
    user = User(new_id("usr"), name, role, region_prefix)
    await tx.conn.execute(
        users.insert().values(
            id=user.id,
            name=name,
            role=role,
            region_prefix=region_prefix,
            password_hash=_hasher.hash(password),
            created_at=utcnow(),
        )
    )
    tx.audit(
        "user.added",
        "user",
        user.id,
        {"name": name, "role": role, "region_prefix": region_prefix},
        region_code=region_prefix,
    )
    return user


async def sign_in(tx: Tx, name: str, password: str, *, now: datetime | None = None) -> tuple[Session, str]:
    """Check the password and open a session; returns it and its token (for the cookie).

    Commit after a refusal too: the failure count must stay counted. The caller's transaction
    holds the user's row lock, so concurrent guesses are counted one after another. The audit
    records' actor is the Tx's (whoever typed the password is not known to be the user).
    """
    now = now or utcnow()
    conn = tx.conn
    row = await find_by_name(conn, name.strip(), for_update=True)
    if row is None or row.disabled_at is not None:
        await _verify_off_loop(_DUMMY_HASH, password)
        raise SignInFailed()
    correct = await _verify_off_loop(row.password_hash, password)
    if row.locked_until is not None and row.locked_until > now:
        # Only the right password learns of the lock: to a guesser a locked name answers as an unknown
        # one does (same refusal, same work), so the lock does not tell which names exist.
        if correct:
            raise SignInLocked(retry_after_seconds=int((row.locked_until - now).total_seconds()) + 1)
        raise SignInFailed()
    if not correct:
        failed = row.failed_attempts + 1
        values: dict[str, object] = {"failed_attempts": failed}
        if failed >= MAX_FAILED:
            values = {"failed_attempts": 0, "locked_until": now + timedelta(minutes=LOCK_MINUTES)}
        await conn.execute(users.update().where(users.c.id == row.id).values(**values))
        tx.audit(
            "user.sign_in_failed",
            "user",
            row.id,
            {"locked": failed >= MAX_FAILED},
            region_code=row.region_prefix,
        )
        raise SignInFailed()
    values = {"failed_attempts": 0, "locked_until": None}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    await conn.execute(users.update().where(users.c.id == row.id).values(**values))
    token = secrets.token_urlsafe(32)
    session = Session(user_from_row(row), secrets.token_urlsafe(32), now + timedelta(hours=SESSION_HOURS))
    await conn.execute(
        user_sessions.insert().values(
            token_hash=hash_token(token),
            user_id=row.id,
            csrf_token=session.csrf_token,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
    # Expired sessions of this user go when they next sign in; nothing else needs to sweep them.
    await conn.execute(
        user_sessions.delete().where(user_sessions.c.user_id == row.id, user_sessions.c.expires_at <= now)
    )
    tx.audit("user.signed_in", "user", row.id, {}, region_code=row.region_prefix)
    return session, token


async def _verify_off_loop(password_hash: str, password: str) -> bool:
    # Argon2 is meant to be slow (tens of milliseconds): in a thread, so that a burst of sign-ins does
    # not stall every other request of the process.
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def session(conn: AsyncConnection, token: str, *, now: datetime | None = None) -> Session | None:
    return await session_by_hash(conn, hash_token(token), now or utcnow())


async def sign_out(tx: Tx, token: str) -> None:
    await tx.conn.execute(user_sessions.delete().where(user_sessions.c.token_hash == hash_token(token)))


async def set_password(tx: Tx, name: str, password: str) -> None:
    """A new password; ends the user's sessions and any lock."""
    check_password(password)
    conn = tx.conn
    row = await find_by_name(conn, name, for_update=True)
    if row is None:
        raise invalid("name", f"no user named {name}")
    await conn.execute(
        users.update()
        .where(users.c.id == row.id)
        .values(password_hash=_hasher.hash(password), failed_attempts=0, locked_until=None)
    )
    await conn.execute(user_sessions.delete().where(user_sessions.c.user_id == row.id))
    tx.audit("user.password_set", "user", row.id, {}, region_code=row.region_prefix)


async def disable(tx: Tx, name: str) -> None:
    conn = tx.conn
    row = await find_by_name(conn, name, for_update=True)
    if row is None:
        raise invalid("name", f"no user named {name}")
    await conn.execute(
        users.update()
        .where(users.c.id == row.id)
        .values(disabled_at=sa.func.coalesce(users.c.disabled_at, utcnow()))
    )
    await conn.execute(user_sessions.delete().where(user_sessions.c.user_id == row.id))
    tx.audit("user.disabled", "user", row.id, {}, region_code=row.region_prefix)

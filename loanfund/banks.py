"""Partner banks (natural key: the bank's code)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import banks
from loanfund.errors import Duplicate, NotFound, invalid
from loanfund.uow import Tx

BANK_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


async def create_bank(tx: Tx, *, code: str, name: str) -> None:
    conn = tx.conn
    if not BANK_CODE_RE.fullmatch(code):
        raise invalid("code", "1–32 letters, digits, '-' or '_'")
    if not name.strip():
        raise invalid("name", "must not be empty")
    if await conn.scalar(sa.select(banks.c.code).where(banks.c.code == code)) is not None:
        raise Duplicate(f"bank {code} already exists", code=code)
    await conn.execute(banks.insert().values(code=code, name=name, created_at=utcnow()))
    tx.audit("bank.created", "bank", code, {"name": name})


async def get_bank(conn: AsyncConnection, code: str) -> Row[Any]:
    row = (await conn.execute(sa.select(banks).where(banks.c.code == code))).first()
    if row is None:
        raise NotFound(f"bank {code} not found")
    return row


async def list_banks(conn: AsyncConnection, *, after: str | None, limit: int) -> list[Row[Any]]:
    query = sa.select(banks).order_by(banks.c.code).limit(limit)
    if after is not None:
        query = query.where(banks.c.code > after)
    return list((await conn.execute(query)).all())

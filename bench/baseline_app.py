"""The baseline for bench/run.py: a minimal Litestar endpoint doing one transaction of
`SELECT … FOR UPDATE` + `UPDATE` + `INSERT` with raw asyncpg — the least a guarded write can cost.

Run: BENCH_DSN=postgresql://postgres@127.0.0.1/loanfund_bench uvicorn bench.baseline_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Request, post
from litestar.params import FromPath

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_accounts (id integer PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE IF NOT EXISTS baseline_moves (id bigserial PRIMARY KEY, account_id integer NOT NULL,
                                           amount bigint NOT NULL,
                                           created_at timestamptz NOT NULL DEFAULT now());
"""


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app.state.pool = pool
    yield
    await pool.close()


@post("/baseline/{account_id:int}", status_code=201)
async def move(request: Request[Any, Any, Any], account_id: FromPath[int]) -> dict[str, int]:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        balance = await conn.fetchval(
            "SELECT balance FROM baseline_accounts WHERE id = $1 FOR UPDATE", account_id
        )
        if balance is None:
            await conn.execute(
                "INSERT INTO baseline_accounts (id, balance) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                account_id,
            )
            balance = 0
        await conn.execute("UPDATE baseline_accounts SET balance = balance + 1 WHERE id = $1", account_id)
        move_id = await conn.fetchval(
            "INSERT INTO baseline_moves (account_id, amount) VALUES ($1, 1) RETURNING id", account_id
        )
    return {"id": move_id, "balance": balance + 1}


app = Litestar([move], lifespan=[lifespan])

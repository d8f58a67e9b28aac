"""Crash recovery (issue 8): a server on PostgreSQL is killed with SIGKILL at random moments under a
mixed write load and restarted; clients retry with their keys. Afterwards every operation took
effect exactly once, the ledger balances and capacity equals its definition.

A claim whose session died with the server is taken over at once (no waiting for
LOANFUND_IDEMPOTENCY_TIMEOUT): each operation must finish within a few seconds of the restart.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import clients, idempotency, uow
from tests.servers import Server
from tests.support import SETUP, Api, World, assert_problem

CLIENTS = 6
OPS_PER_CLIENT = 12
KILLS = 3
GIVE_UP_AFTER = 120.0  # seconds per operation: a restart takes seconds on a loaded machine


def operations(client: int) -> list[tuple[str, str, dict[str, str], int]]:
    """(key, path, body, fen of the effect) per operation; every reference is unique."""
    ops = []
    for i in range(OPS_PER_CLIENT):
        ref = f"c{client}-{i}"
        fen = (client * 100 + i + 1) * 100
        yuan = str(Decimal(fen) / 100)
        kind = i % 4
        if kind == 0:
            body = {
                "amount": yuan,
                "received_on": "2026-02-01",
                "reference": ref,
                "match_ratio_pct": "0",
                "match_due_on": "2026-12-31",
            }
            ops.append((ref, "/funds/HRB/allocations", body, fen))
        elif kind == 1:
            body = {"source": "central", "amount": yuan, "received_on": "2026-02-01", "reference": ref}
            ops.append((ref, "/funds/HRB/contributions", body, fen))
        elif kind == 2:
            body = {"amount": yuan, "received_on": "2026-02-01", "reference": ref}
            ops.append((ref, "/funds/HRB/subsidy-budget", body, fen))
        else:
            body = {"amount": yuan, "deposited_on": "2026-02-02", "reference": ref}
            ops.append((ref, "/agreements/{agreement}/deposits", body, fen))
    return ops


async def run_client(
    http: httpx.AsyncClient, server: Server, token: str, ops: list[Any], agreement: str, log: dict[str, Any]
) -> None:
    for key, path, body, _ in ops:
        url = f"/api/v1{path.format(agreement=agreement)}"
        started = time.monotonic()
        last: Any = None
        while True:
            assert time.monotonic() - started < GIVE_UP_AFTER, f"{key} still not done: {log} {last}"
            try:
                response = await http.post(
                    server.url + url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
            except httpx.HTTPError as exc:
                last = repr(exc)
                await asyncio.sleep(0.05)  # the server is down: retry with the same key
                continue
            last = (response.status_code, response.text[:200])
            if response.status_code == 409 and response.json().get("code") == "request_in_progress":
                log["in_progress"] += 1
                await asyncio.sleep(0.05)
                continue
            if response.status_code >= 500:
                log["server_errors"] += 1
                await asyncio.sleep(0.05)
                continue
            assert response.status_code == 201, (key, response.text)
            log["done"][key] = response.json()["id"]
            break


async def killer(server: Server, stop: asyncio.Event, log: dict[str, Any]) -> None:
    rng = random.Random(8)
    for _ in range(KILLS):
        await asyncio.sleep(rng.uniform(0.3, 0.9))
        if stop.is_set():
            return
        server.kill()
        log["kills"] += 1
        await asyncio.sleep(rng.uniform(0.0, 0.3))  # clients fail against a closed port meanwhile
        await asyncio.to_thread(server.start)


@pytest.mark.postgres_only
async def test_sigkill_under_load_then_retries_have_each_effect_exactly_once(
    engine: AsyncEngine, db_url: str
) -> None:
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        _, admin_token = await clients.add_client(tx, role="admin", name="a", region_prefix=None)
        tokens = [
            (await clients.add_client(tx, role="fund_manager", name=f"m{i}", region_prefix="2301"))[1]
            for i in range(CLIENTS)
        ]
    server = Server(db_url)
    server.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            admin = {"Authorization": f"Bearer {admin_token}"}
            setup = [
                (
                    "/funds",
                    {
                        "code": "HRB",
                        "name": "HRB",
                        "region_code": "230100",
                        "policy_edition": "cn-2016",
                        "currency": "CNY",
                    },
                ),
                ("/banks", {"code": "ICBC", "name": "ICBC"}),
                (
                    "/funds/HRB/allocations",
                    {
                        "amount": "10000000",
                        "received_on": "2026-01-10",
                        "reference": "seed",
                        "match_ratio_pct": "0",
                        "match_due_on": "2026-12-31",
                    },
                ),
                (
                    "/funds/HRB/agreements",
                    {
                        "bank_code": "ICBC",
                        "leverage_multiple": "5",
                        "fund_loss_share_pct": "80",
                        "claim_after_days": 90,
                        "claim_covers_interest": True,
                        "effective_from": "2026-01-01",
                    },
                ),
            ]
            for path, body in setup:
                made = await http.post(f"{server.url}/api/v1{path}", json=body, headers=admin)
                assert made.status_code == 201, made.text
            agreement = made.json()["id"]

            log: dict[str, Any] = {"done": {}, "in_progress": 0, "server_errors": 0, "kills": 0}
            stop = asyncio.Event()
            all_ops = [operations(i) for i in range(CLIENTS)]
            await asyncio.gather(
                killer(server, stop, log),
                *(run_client(http, server, tokens[i], all_ops[i], agreement, log) for i in range(CLIENTS)),
            )
            assert log["kills"] == KILLS
            # Each key is sent by one client at a time, so a 409 could only come from a claim left
            # by a killed server: none, because a claim dies with its database session.
            assert log["in_progress"] == 0, log

            # Every retry of a done operation replays its one effect.
            for ops in all_ops:
                key, path, body, _ = ops[-1]
                again = await http.post(
                    server.url + f"/api/v1{path.format(agreement=agreement)}",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[all_ops.index(ops)]}", "Idempotency-Key": key},
                )
                assert again.headers.get("idempotent-replayed") == "true", again.text
                assert again.json()["id"] == log["done"][key]

            fund = (await http.get(f"{server.url}/api/v1/funds/HRB", headers=admin)).json()
            trial = (await http.get(f"{server.url}/api/v1/funds/HRB/trial-balance", headers=admin)).json()
            capacity = (await http.get(f"{server.url}/api/v1/agreements/{agreement}", headers=admin)).json()
    finally:
        server.stop()

    ops = [op for client_ops in all_ops for op in client_ops]
    assert len(log["done"]) == len(ops)
    by_path: dict[str, int] = {}
    for _, path, _, fen in ops:
        by_path[path] = by_path.get(path, 0) + fen
    async with engine.connect() as conn:
        for table in ("allocations", "contributions"):
            counts = (
                await conn.execute(sa.text(f"SELECT reference, count(*) FROM {table} GROUP BY reference"))
            ).all()
            assert all(n == 1 for _, n in counts), counts
        refs = {row.reference for row in await conn.execute(sa.text("SELECT reference FROM journal_entries"))}
        entries = (
            await conn.execute(sa.text("SELECT reference, count(*) FROM journal_entries GROUP BY reference"))
        ).all()
        assert all(n == 1 for ref, n in entries if ref), [e for e in entries if e[1] != 1]
        assert {key for key, *_ in ops} <= refs
        unposted = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM journal_entries j WHERE (SELECT count(*) FROM postings p "
                "WHERE p.entry_id = j.id) < 2"
            )
        )
        assert unposted == 0

    def fen(text: str) -> int:
        return int(Decimal(text) * 100)

    allocated = 1_000_000_000 + by_path["/funds/HRB/allocations"]
    deposited = by_path["/agreements/{agreement}/deposits"]
    position = fund["position"]
    assert fen(position["cash"]) == allocated + by_path["/funds/HRB/contributions"] - deposited
    assert fen(position["deposited"]) == deposited
    assert fen(position["subsidy_budget"]) == by_path["/funds/HRB/subsidy-budget"]
    assert trial["total_debit"] == trial["total_credit"]
    cap = capacity["capacity"]
    assert fen(cap["deposit"]) == deposited
    assert fen(cap["capacity"]) == deposited * 5
    assert fen(cap["headroom"]) == fen(cap["capacity"]) - fen(cap["outstanding"]) - fen(cap["reserved"])


@pytest.mark.postgres_only
async def test_a_claim_whose_session_died_is_taken_over_at_once(world: World) -> None:
    """The claim is made by a session that then dies (its connection is closed, as a SIGKILL does);
    with the claim timeout at 60 s, a retry proceeds at once on PostgreSQL."""
    admin = await world.caller("admin")
    manager: Api = await world.caller("fund_manager", region="2301")
    assert (
        await admin.post(
            "/funds",
            {
                "code": "HRB",
                "name": "HRB",
                "region_code": "230100",
                "policy_edition": "cn-2008",
                "currency": "CNY",
            },
        )
    ).status_code == 201
    body = b'{"amount": "5", "received_on": "2026-02-01", "reference": "S-1"}'
    path = "/api/v1/funds/HRB/subsidy-budget"
    client_id = await _client_id(world.engine, manager.token)
    async with world.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        claimed = await idempotency.claim_new(
            conn, client_id=client_id, key="crashed", fingerprint=idempotency.fingerprint("POST", path, body)
        )
        assert claimed is not None
        await conn.invalidate()  # the session ends, as when the server process is killed
    retry = await manager.post("/funds/HRB/subsidy-budget", content=body, key="crashed")
    assert retry.status_code == 201, retry.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_still_waits_for_the_timeout(world: World) -> None:
    """Without sessions to check, SQLite keeps the timeout."""
    admin = await world.caller("admin")
    manager: Api = await world.caller("fund_manager", region="2301")
    assert (
        await admin.post(
            "/funds",
            {
                "code": "HRB",
                "name": "HRB",
                "region_code": "230100",
                "policy_edition": "cn-2008",
                "currency": "CNY",
            },
        )
    ).status_code == 201
    body = b'{"amount": "5", "received_on": "2026-02-01", "reference": "S-1"}'
    path = "/api/v1/funds/HRB/subsidy-budget"
    client_id = await _client_id(world.engine, manager.token)
    async with world.engine.connect() as conn:
        await idempotency.claim(
            conn,
            client_id=client_id,
            key="crashed",
            fingerprint=idempotency.fingerprint("POST", path, body),
            timeout=timedelta(seconds=60),
        )
    assert_problem(
        await manager.post("/funds/HRB/subsidy-budget", content=body, key="crashed"),
        409,
        "request_in_progress",
    )


async def _client_id(engine: AsyncEngine, token: str) -> str:
    async with engine.connect() as conn:
        client = await clients.authenticate(conn, token)
        assert client is not None
        return client.id

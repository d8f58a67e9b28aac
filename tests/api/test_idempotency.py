"""Idempotency keys (api.md "Idempotency"): the effect of a request happens exactly once, whatever the
retries, across connections and server processes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.auth import ALL_ROLES, MANAGERS, authorize
from api.context import RequestContext
from loanfund import clients, idempotency, uow
from loanfund.clock import utcnow
from loanfund.config import Settings
from loanfund.db.tables import allocations, audit_log, journal_entries, postings
from loanfund.db.tables import clients as clients_table
from loanfund.db.tables import idempotency_keys as keys_table
from loanfund.errors import Forbidden, IdempotencyKeyRequired, MalformedRequest, NotFound
from scheduler.jobs import purge_idempotency_keys
from tests.support import SETUP, TODAY, Api, World, assert_problem, make_fund

ALLOCATIONS = "/funds/HRB/allocations"


def allocation(reference: str = "P-1", amount: str = "1000.00") -> dict[str, str]:
    return {
        "amount": amount,
        "received_on": "2026-01-10",
        "reference": reference,
        "match_ratio_pct": "100",
        "match_due_on": "2026-12-31",
    }


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in (allocations, journal_entries, postings, audit_log)
        }


async def client_id(engine: AsyncEngine, api: Api) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(
            sa.select(clients_table.c.id).where(clients_table.c.token_hash == clients.hash_token(api.token))
        )
    assert value is not None
    return str(value)


async def insert_claim(
    engine: AsyncEngine, client: str, key: str, body: bytes, *, age: timedelta, path: str = ALLOCATIONS
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            keys_table.insert().values(
                client_id=client,
                key=key,
                fingerprint=idempotency.fingerprint("POST", f"/api/v1{path}", body),
                claim_token="claim_someone_else",
                claimed_at=utcnow() - age,
            )
        )


# ---- the basic promise -----------------------------------------------------------------------------


async def test_replay_returns_the_stored_response_and_the_effect_happens_once(
    world: World, admin: Api, manager: Api
) -> None:
    await make_fund(admin)
    before = await counts(world.engine)
    first = await manager.post(ALLOCATIONS, allocation(), key="alloc-2026-001")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = await counts(world.engine)

    # The same request again: key order and whitespace of the JSON body do not matter.
    reordered = json.dumps(dict(reversed(list(allocation().items()))), indent=3).encode()
    for attempt in (allocation(), None):
        if attempt is None:
            again = await manager.post(
                ALLOCATIONS, content=b"\n " + reordered + b"\t\n", key="alloc-2026-001"
            )
        else:
            again = await manager.post(ALLOCATIONS, attempt, key="alloc-2026-001")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]

    assert await counts(world.engine) == after_first
    assert after_first["allocations"] == before["allocations"] + 1
    assert after_first["journal_entries"] == before["journal_entries"] + 1
    assert after_first["audit_log"] == before["audit_log"] + 1
    fund = (await manager.get("/funds/HRB")).json()
    assert fund["position"]["cash"] == "1000.00"
    ledger = (await manager.get("/funds/HRB/ledger")).json()["items"]
    assert len(ledger) == 1
    audit = (await admin.get("/audit", {"entity": "allocation"})).json()["items"]
    assert [record["entity_id"] for record in audit] == [first.json()["id"]]


async def test_same_key_for_a_different_request_is_refused(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    await make_fund(admin, code="HRB2")
    first = await manager.post(ALLOCATIONS, allocation(), key="k-1")
    assert first.status_code == 201
    before = await counts(world.engine)
    different_body = await manager.post(ALLOCATIONS, allocation(amount="1000.01"), key="k-1")
    assert_problem(different_body, 422, "idempotency_key_reused")
    different_path = await manager.post("/funds/HRB2/allocations", allocation(), key="k-1")
    assert_problem(different_path, 422, "idempotency_key_reused")
    # The number is the same but written differently: a different request ("1000" is not "1000.00").
    written_differently = await manager.post(ALLOCATIONS, allocation(amount="1000"), key="k-1")
    assert_problem(written_differently, 422, "idempotency_key_reused")
    assert await counts(world.engine) == before
    # The original is still replayed afterwards.
    again = await manager.post(ALLOCATIONS, allocation(), key="k-1")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


async def test_the_first_request_still_running_gives_409(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    body = json.dumps(allocation()).encode()
    await insert_claim(world.engine, await client_id(world.engine, manager), "busy", body, age=timedelta(0))
    before = await counts(world.engine)
    for _ in range(2):
        assert_problem(await manager.post(ALLOCATIONS, allocation(), key="busy"), 409, "request_in_progress")
    # A different request under that key is still a reused key, running or not.
    response = await manager.post(ALLOCATIONS, allocation(amount="5"), key="busy")
    assert_problem(response, 422, "idempotency_key_reused")
    assert await counts(world.engine) == before


async def test_a_stale_claim_is_taken_over(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    me = await client_id(world.engine, manager)
    body = json.dumps(allocation()).encode()
    await insert_claim(world.engine, me, "crashed", body, age=timedelta(seconds=61))
    response = await manager.post(ALLOCATIONS, allocation(), key="crashed")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    again = await manager.post(ALLOCATIONS, allocation(), key="crashed")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == response.content
    assert (await counts(world.engine))["allocations"] == 1

    # Just inside the timeout it is still running.
    await insert_claim(world.engine, me, "slow", body, age=timedelta(seconds=50))
    assert_problem(await manager.post(ALLOCATIONS, allocation(), key="slow"), 409, "request_in_progress")
    # A stale claim of a different request is not taken over by this one.
    await insert_claim(world.engine, me, "other", body, age=timedelta(hours=1))
    response = await manager.post(ALLOCATIONS, allocation(amount="7"), key="other")
    assert_problem(response, 422, "idempotency_key_reused")
    assert (await counts(world.engine))["allocations"] == 1


async def test_the_timeout_comes_from_settings(engine: AsyncEngine, settings: Settings) -> None:
    from litestar.testing import AsyncTestClient

    app = create_app(replace(settings, idempotency_claim_timeout_seconds=2))
    async with AsyncTestClient(app) as http:
        world = World(http, engine)
        admin = await world.caller("admin")
        manager = await world.caller("fund_manager", region="2301")
        await make_fund(admin)
        body = json.dumps(allocation()).encode()
        await insert_claim(engine, await client_id(engine, manager), "k", body, age=timedelta(seconds=3))
        assert (await manager.post(ALLOCATIONS, allocation(), key="k")).status_code == 201


async def test_a_refused_request_is_stored_replayed_and_changes_nothing(
    world: World, admin: Api, manager: Api
) -> None:
    await make_fund(admin)
    before = await counts(world.engine)
    future = allocation() | {"received_on": "2026-11-28"}
    refused = await manager.post(ALLOCATIONS, future, key="late")
    assert_problem(refused, 422, "future_date")
    assert "idempotent-replayed" not in refused.headers
    # Tomorrow the same request would pass; the key still answers with what happened the first time.
    replayed = await manager.post(ALLOCATIONS, future, key="late")
    assert replayed.status_code == 422
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["content-type"].startswith("application/problem+json")
    assert replayed.content == refused.content

    hidden = await manager.post("/funds/NOPE/allocations", allocation(), key="nope")
    assert_problem(hidden, 404, "not_found")
    assert (await manager.post("/funds/NOPE/allocations", allocation(), key="nope")).content == hidden.content

    allocation_id = (await manager.post(ALLOCATIONS, allocation(), key="ok")).json()["id"]
    first = await manager.post(f"/funds/HRB/allocations/{allocation_id}/reverse", {"reason": "x"}, key="r1")
    assert first.status_code == 201
    twice = await manager.post(f"/funds/HRB/allocations/{allocation_id}/reverse", {"reason": "x"}, key="r2")
    assert_problem(twice, 409, "invalid_state")
    again = await manager.post(f"/funds/HRB/allocations/{allocation_id}/reverse", {"reason": "x"}, key="r2")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == twice.content
    # The refusals left no trace: only the allocation and its reversal were written.
    after = await counts(world.engine)
    assert after["allocations"] == before["allocations"] + 1
    assert after["journal_entries"] == before["journal_entries"] + 2
    assert after["audit_log"] == before["audit_log"] + 2


async def test_a_server_error_is_not_stored_and_a_retry_runs_again(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loanfund.funds import service

    await make_fund(admin)
    real = service.record_allocation
    calls = 0

    async def failing_once(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        result = await real(*args, **kwargs)  # the effect is written, then the request fails
        if calls == 1:
            raise RuntimeError("disk on fire")
        return result

    monkeypatch.setattr(service, "record_allocation", failing_once)
    failed = await manager.post(ALLOCATIONS, allocation(), key="retry-me")
    assert_problem(failed, 500, "internal_error")
    assert (await counts(world.engine))["allocations"] == 0
    retried = await manager.post(ALLOCATIONS, allocation(), key="retry-me")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert (await counts(world.engine))["allocations"] == 1
    assert calls == 2


@pytest.mark.postgres_only
async def test_a_commit_refused_by_the_database_is_a_500_and_releases_the_key(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL checks entries at COMMIT: if that fails, nothing is kept and the key is free again."""
    from loanfund.funds import service

    await make_fund(admin)
    real = service.record_allocation
    broken = True

    async def with_a_stray_posting(conn: Any, *args: Any, **kwargs: Any) -> str:
        allocation_id = await real(conn, *args, **kwargs)
        if broken:  # a bug that slips an unbalanced posting past the library
            entry = await conn.scalar(
                sa.select(allocations.c.entry_id).where(allocations.c.id == allocation_id)
            )
            account = await conn.scalar(sa.select(postings.c.account_id).where(postings.c.entry_id == entry))
            await conn.execute(postings.insert().values(entry_id=entry, account_id=account, amount_fen=1))
        return allocation_id

    monkeypatch.setattr(service, "record_allocation", with_a_stray_posting)
    before = await counts(world.engine)
    failed = await manager.post(ALLOCATIONS, allocation(), key="deferred")
    assert_problem(failed, 500, "internal_error")
    assert await counts(world.engine) == before
    broken = False
    retried = await manager.post(ALLOCATIONS, allocation(), key="deferred")
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert (await counts(world.engine))["allocations"] == before["allocations"] + 1


async def test_one_key_two_clients_are_independent(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    colleague = await world.caller("fund_manager", region="2301")
    one = await manager.post(ALLOCATIONS, allocation(), key="shared-key")
    two = await colleague.post(ALLOCATIONS, allocation(), key="shared-key")
    assert one.status_code == two.status_code == 201
    assert "idempotent-replayed" not in two.headers
    assert one.json()["id"] != two.json()["id"]
    # ... and a different body under the same key is no conflict across clients either.
    three = await (await world.caller("fund_manager", region="23")).post(
        ALLOCATIONS, allocation(amount="9"), key="shared-key"
    )
    assert three.status_code == 201
    assert (await counts(world.engine))["allocations"] == 3


async def test_key_format(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    before = await counts(world.engine)
    bad_keys: list[Any] = ["x" * 129, "has space", " lead", "tab\tkey", "", "caf\xe9".encode("latin-1")]
    for bad in bad_keys:
        response = await manager.post(ALLOCATIONS, allocation(), headers={"Idempotency-Key": bad})
        body = assert_problem(response, 400, "malformed_request")
        assert "Idempotency-Key" in body["detail"], (bad, body)
    assert await counts(world.engine) == before
    for good in ("x" * 128, "a", "~!#$%&'()*+,-./:;<=>?@[\\]^_`{|}", str(uuid.uuid4())):
        response = await manager.post(ALLOCATIONS, allocation(reference=good[:200]), key=good)
        assert response.status_code == 201, (good, response.text)
        again = await manager.post(ALLOCATIONS, allocation(reference=good[:200]), key=good)
        assert again.headers["idempotent-replayed"] == "true"
    assert (await counts(world.engine))["allocations"] == before["allocations"] + 4


async def test_an_unknown_or_revoked_token_claims_no_key(world: World, admin: Api, manager: Api) -> None:
    """On PostgreSQL the token and a new key's claim are one statement: a refused token claims nothing,
    and the key stays free for the client that owns it."""
    await make_fund(admin)
    revoked = await world.caller("fund_manager")
    revoked_id = await client_id(world.engine, revoked)
    async with uow.transaction(world.engine, SETUP) as tx:
        await clients.revoke_client(tx, revoked_id)
    before = await counts(world.engine)
    stranger = Api(manager.http, "not-a-token", "fund_manager")
    assert_problem(await stranger.post(ALLOCATIONS, allocation(), key="shared-key"), 401, "unauthenticated")
    assert_problem(await revoked.post(ALLOCATIONS, allocation(), key="shared-key"), 401, "unauthenticated")
    # Refusals keep their order: a bad request line with a bad token is still a 401.
    response = await stranger.post(ALLOCATIONS + "?x=%00", allocation(), key="other-key")
    assert_problem(response, 401, "unauthenticated")
    async with world.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(keys_table)) == 0
    assert await counts(world.engine) == before
    created = await manager.post(ALLOCATIONS, allocation(), key="shared-key")
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers


async def test_keys_on_reads_are_ignored(world: World, admin: Api, manager: Api) -> None:
    await make_fund(admin)
    for _ in range(2):
        response = await manager.http.get(
            "/api/v1/funds/HRB", headers={"Authorization": f"Bearer {manager.token}", "Idempotency-Key": "g"}
        )
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
    bad = await manager.http.get(
        "/api/v1/funds/HRB", headers={"Authorization": f"Bearer {manager.token}", "Idempotency-Key": "a b"}
    )
    assert bad.status_code == 200


async def test_a_bank_out_of_scope_gets_404_with_or_without_a_key(world: World, admin: Api) -> None:
    await make_fund(admin)
    bank = await world.caller("bank", bank="B1")
    no_key = await bank.http.post(
        f"/api/v1{ALLOCATIONS}", json=allocation(), headers={"Authorization": f"Bearer {bank.token}"}
    )
    assert_problem(no_key, 404, "not_found")
    with_key = await bank.post(ALLOCATIONS, allocation(), key="bank-1")
    assert_problem(with_key, 404, "not_found")
    replay = await bank.post(ALLOCATIONS, allocation(), key="bank-1")
    assert replay.headers["idempotent-replayed"] == "true"
    no_key_admin_only = await bank.http.post(
        "/api/v1/banks", json={"code": "B2", "name": "x"}, headers={"Authorization": f"Bearer {bank.token}"}
    )
    assert_problem(no_key_admin_only, 403, "forbidden")


def _context(role: str, *, method: str = "POST", key: bool = False, invalid: bool = False) -> RequestContext:
    client = clients.Client(
        id="cli_x",
        name="x",
        role=role,
        region_prefix="2301" if role in clients.REGION_ROLES else None,
        bank_code="B1" if role == "bank" else None,
    )
    return RequestContext(
        conn=None,  # type: ignore[arg-type]
        client=client,
        tx=None,  # type: ignore[arg-type]
        request_id="req",
        method=method,
        has_idempotency_key=key,
        idempotency_key_invalid=invalid,
    )


def test_a_bank_must_send_a_key_on_every_post_in_its_scope() -> None:
    # No endpoint of this issue lets a bank POST inside its scope, so the rule is proven on `authorize`.
    with pytest.raises(IdempotencyKeyRequired):
        authorize(_context("bank"), ALL_ROLES, bank_code="B1")
    authorize(_context("bank", key=True), ALL_ROLES, bank_code="B1")
    authorize(_context("bank", method="GET"), ALL_ROLES, bank_code="B1")
    # The refusal order holds: scope (404), role (403), then the key (400).
    with pytest.raises(NotFound):
        authorize(_context("bank"), ALL_ROLES, bank_code="B2")
    with pytest.raises(NotFound):
        authorize(_context("bank"), ALL_ROLES, region_code="230100")
    with pytest.raises(Forbidden):
        authorize(_context("bank"), MANAGERS, bank_code="B1")
    with pytest.raises(Forbidden):
        authorize(_context("bank"), MANAGERS)
    # Other roles may leave the key out.
    for role in ("admin", "fund_manager"):
        authorize(_context(role), MANAGERS, region_code="230100")
    # A malformed key is a 400 that comes after scope and role.
    with pytest.raises(MalformedRequest):
        authorize(_context("fund_manager", key=True, invalid=True), MANAGERS, region_code="230100")
    with pytest.raises(NotFound):
        authorize(_context("fund_manager", key=True, invalid=True), MANAGERS, region_code="310100")
    with pytest.raises(Forbidden):
        authorize(_context("auditor", key=True, invalid=True), MANAGERS, region_code="230100")


async def test_completion_after_a_takeover_fails(engine: AsyncEngine) -> None:
    """The library's compare-and-set: of two claimants, only the current one can complete."""
    fingerprint = idempotency.fingerprint("POST", "/x", b"{}")
    async with engine.connect() as conn:
        first = await idempotency.claim(
            conn, client_id="c", key="k", fingerprint=fingerprint, timeout=timedelta(seconds=60)
        )
        assert isinstance(first, idempotency.Claim)
        with pytest.raises(Exception, match="still running"):
            await idempotency.claim(
                conn, client_id="c", key="k", fingerprint=fingerprint, timeout=timedelta(seconds=60)
            )
        second = await idempotency.claim(
            conn, client_id="c", key="k", fingerprint=fingerprint, timeout=timedelta(seconds=-1)
        )
        assert isinstance(second, idempotency.Claim) and second.token != first.token
        stored = idempotency.StoredResponse(201, {"content-type": "application/json"}, b"{}")
        await conn.begin()
        assert not await idempotency.complete(conn, first, stored)
        assert await idempotency.complete(conn, second, stored)
        await conn.commit()
        replay = await idempotency.claim(
            conn, client_id="c", key="k", fingerprint=fingerprint, timeout=timedelta(seconds=-1)
        )
        assert replay == stored
        # A released claim (server error) lets a retry run again.
        third = await idempotency.claim(
            conn, client_id="c", key="k2", fingerprint=fingerprint, timeout=timedelta(seconds=60)
        )
        assert isinstance(third, idempotency.Claim)
        await conn.begin()
        await idempotency.release(conn, third)
        await conn.commit()
        again = await idempotency.claim(
            conn, client_id="c", key="k2", fingerprint=fingerprint, timeout=timedelta(seconds=60)
        )
        assert isinstance(again, idempotency.Claim)
        await conn.commit()


def test_fingerprint_is_method_path_and_canonical_body() -> None:
    fp = idempotency.fingerprint
    assert fp("POST", "/a", b'{"x": 1, "y": [1, 2]}') == fp("post", "/a", b'{"y":[1,2],"x":1}')
    assert fp("POST", "/a", '{"n": "é"}'.encode()) == fp("POST", "/a", b'{"n": "\\u00e9"}')
    assert fp("POST", "/a", b"{}") != fp("POST", "/b", b"{}")
    assert fp("POST", "/a", b"{}") != fp("PUT", "/a", b"{}")
    assert fp("POST", "/a", b'{"x": "1"}') != fp("POST", "/a", b'{"x": 1}')
    assert fp("POST", "/a", b'{"x": [1, 2]}') != fp("POST", "/a", b'{"x": [2, 1]}')
    assert fp("POST", "/a", b"{not json") == fp("POST", "/a", b"{not json")
    assert fp("POST", "/a", b"{not json") != fp("POST", "/a", b"{not json ")


async def test_keys_are_kept_at_least_seven_days(engine: AsyncEngine, settings: Settings) -> None:
    async with engine.begin() as conn:
        for key, age in (("six-days", timedelta(days=6, hours=23)), ("eight-days", timedelta(days=8))):
            await conn.execute(
                keys_table.insert().values(
                    client_id="c", key=key, fingerprint="f", claim_token=key, claimed_at=utcnow() - age
                )
            )
    removed = await purge_idempotency_keys(engine, replace(settings, idempotency_retention_days=1))
    assert removed == 1
    async with engine.connect() as conn:
        assert list(await conn.scalars(sa.select(keys_table.c.key))) == ["six-days"]


# ---- truly concurrent requests: one process (PostgreSQL), two processes (both databases) ----------


@asynccontextmanager
async def in_process(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this event loop (the Litestar test client runs requests one at a time)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, from_app.put)  # type: ignore[arg-type]
    )
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            yield http
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan


async def _setup_manager(engine: AsyncEngine, settings: Settings) -> tuple[str, str]:
    """A fund HRB and a manager of it, made through the library; returns (token, client id)."""
    from loanfund.audit import Actor
    from loanfund.funds import service

    async with uow.transaction(engine, Actor(None, "setup")) as tx:
        await service.create_fund(
            tx,
            code="HRB",
            name="Harbin",
            region_code="230100",
            policy_edition="cn-2008",
        )
        client, token = await clients.add_client(tx, role="fund_manager", name="m", region_prefix="2301")
    return token, client.id


def _assert_one_effect(responses: list[tuple[int, dict[str, str], bytes]]) -> None:
    originals = [r for r in responses if r[0] == 201 and r[1].get("idempotent-replayed") != "true"]
    assert len(originals) == 1, [(status, body[:120]) for status, _, body in responses]
    for status, _headers, body in responses:
        if status == 201:
            assert body == originals[0][2]
        else:
            assert status == 409, body
            assert json.loads(body)["code"] == "request_in_progress"


async def _assert_one_row_each(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(allocations)) == 1
        assert await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)) == 1
        actions = list(await conn.scalars(sa.select(audit_log.c.action).order_by(audit_log.c.id)))
    assert actions.count("allocation.recorded") == 1


@pytest.mark.postgres_only
async def test_concurrent_requests_with_one_key_have_one_effect(
    engine: AsyncEngine, settings: Settings
) -> None:
    token, _ = await _setup_manager(engine, settings)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race"}
    async with in_process(create_app(settings)) as http:
        results = await asyncio.gather(
            *(http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers) for _ in range(12))
        )
        _assert_one_effect([(r.status_code, dict(r.headers), r.content) for r in results])
        # Once it is done, every retry gets the stored response.
        late = await asyncio.gather(
            *(http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers) for _ in range(5))
        )
        assert {(r.status_code, r.headers["idempotent-replayed"]) for r in late} == {(201, "true")}
    await _assert_one_row_each(engine)


@pytest.mark.postgres_only
async def test_a_request_overtaken_by_its_retry_changes_nothing(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request stalls past the claim timeout; its retry takes over and completes; when the
    first one wakes up and finishes, its completion fails and its transaction is rolled back."""
    from loanfund.funds import service

    token, _ = await _setup_manager(engine, settings)
    real = service.record_allocation
    gate = asyncio.Event()
    stalled = asyncio.Event()
    calls = 0

    async def stalling(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            stalled.set()
            await gate.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "record_allocation", stalling)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "stall"}
    async with in_process(create_app(replace(settings, idempotency_claim_timeout_seconds=1))) as http:
        first = asyncio.create_task(http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers))
        await asyncio.wait_for(stalled.wait(), 10)
        busy = await http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers)
        assert_problem(busy, 409, "request_in_progress")
        await asyncio.sleep(1.2)
        retry = await http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers)
        assert retry.status_code == 201, retry.text
        gate.set()
        original = await first
        assert_problem(original, 409, "request_in_progress")
        replay = await http.post(f"/api/v1{ALLOCATIONS}", json=allocation(), headers=headers)
        assert replay.content == retry.content
    await _assert_one_row_each(engine)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def servers(database_url: str, count: int) -> Iterator[list[str]]:
    """`count` real uvicorn processes serving `--factory api.app:create_app` on one database."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LOANFUND_DATABASE_URL": database_url, "LOANFUND_BUSINESS_DATE": TODAY}
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(count):
            port = _free_port()
            procs.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"),
                        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                    ],
                    cwd=root,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for url, proc in zip(urls, procs, strict=True):
            while True:
                if proc.poll() is not None:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    raise AssertionError(f"server exited with {proc.returncode}:\n{output}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).json() == {"status": "ok", "database": "ok"}:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_one_key_sent_to_two_server_processes_has_one_effect(
    engine: AsyncEngine, settings: Settings, db_url: str
) -> None:
    """Two real servers (`uvicorn --factory api.app:create_app`, settings from the environment) on one
    database: SQLite serialises writers across processes, PostgreSQL runs them in parallel."""
    token, _ = await _setup_manager(engine, settings)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "two-processes"}
    with servers(db_url, 2) as urls:
        async with httpx.AsyncClient(timeout=30) as http:
            results = await asyncio.gather(
                *(
                    http.post(f"{urls[i % 2]}/api/v1{ALLOCATIONS}", json=allocation(), headers=headers)
                    for i in range(16)
                )
            )
            _assert_one_effect([(r.status_code, dict(r.headers), r.content) for r in results])
            final = await http.post(f"{urls[1]}/api/v1{ALLOCATIONS}", json=allocation(), headers=headers)
            assert final.headers["idempotent-replayed"] == "true"
            fund = (await http.get(f"{urls[0]}/api/v1/funds/HRB", headers=headers)).json()
            assert fund["position"]["cash"] == "1000.00"
    await _assert_one_row_each(engine)

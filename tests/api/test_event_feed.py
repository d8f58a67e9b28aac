"""The event feed is read exactly once and in order, even when writers commit out of id order."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import events
from loanfund.db.tables import events as events_table
from tests.support import Api, World

pytestmark = pytest.mark.postgres_only


async def emit(conn: AsyncConnection, label: str) -> None:
    await events.emit(
        conn, "test_event", fund_code="HRB", region_code="230100", bank_code="ICBC", data={"label": label}
    )


async def take_xid(conn: AsyncConnection) -> int:
    """Give the transaction its id now, as a first write would."""
    return int(await conn.scalar(sa.text("SELECT pg_current_xact_id()::text::bigint")))


async def read_all(bank: Api, cursor: str | None) -> tuple[list[str], str | None]:
    params: dict[str, Any] = {"limit": 500}
    if cursor is not None:
        params["after"] = cursor
    items = (await bank.get("/events", params)).json()["items"]
    return [item["data"]["label"] for item in items], (items[-1]["id"] if items else cursor)


async def read_some(bank: Api, cursor: str | None) -> tuple[list[str], str | None]:
    """`read_all` until it finds something: a write transaction of this database that has not ended
    yet (this suite's other tests do not run at the same time, but a pool may be slow to let go)
    holds the feed back until it ends."""
    for _ in range(600):
        seen, cursor = await read_all(bank, cursor)
        if seen:
            return seen, cursor
        await asyncio.sleep(0.05)
    raise AssertionError("the feed showed nothing for 30 seconds")


async def test_a_smaller_id_committed_later_is_not_skipped(world: World, is_postgres: bool) -> None:
    bank = await world.caller("bank", bank="ICBC")
    async with world.engine.connect() as first, world.engine.connect() as second:
        # 1. The first writer starts first and takes the smaller id; the second commits first.
        await take_xid(first)
        await emit(first, "a")
        await take_xid(second)
        await emit(second, "b")
        await second.commit()
        seen, cursor = await read_all(bank, None)
        assert seen == []  # "b" must wait: "a" may still commit before it
        await first.commit()
        seen, cursor = await read_some(bank, cursor)
        assert seen == ["a", "b"]

        # 2. The second writer has the older transaction but writes its event after the first.
        await take_xid(second)
        await take_xid(first)
        await emit(first, "c")  # smaller event id, younger transaction
        await emit(second, "d")
        await second.commit()
        more, cursor = await read_some(bank, cursor)
        assert more == ["d"]  # its transaction is older than every one still running
        await first.commit()
        more, cursor = await read_some(bank, cursor)
        assert more == ["c"]  # after "d" in the feed's order, though its id is smaller
        assert (await read_all(bank, cursor))[0] == []
    async with world.engine.connect() as conn:
        ids = dict(
            (await conn.execute(sa.select(events_table.c.data["label"].as_string(), events_table.c.id))).all()
        )
    assert ids["c"] < ids["d"]


async def test_concurrent_writers_are_read_exactly_once_in_order(world: World, is_postgres: bool) -> None:
    rng = random.Random(11)
    committed: list[str] = []
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for round_ in range(4):
            async with world.engine.connect() as conn:
                if rng.random() < 0.5:
                    await take_xid(conn)
                await asyncio.sleep(rng.random() * 0.02)
                labels = [f"w{n}-r{round_}-e{i}" for i in range(rng.randint(1, 3))]
                for label in labels:
                    await emit(conn, label)
                    await asyncio.sleep(rng.random() * 0.01)
                if rng.random() < 0.2:
                    await conn.rollback()
                else:
                    await conn.commit()
                    committed.extend(labels)

    read: list[str] = []
    positions: list[tuple[int, int]] = []

    async def reader() -> None:
        cursor: int | None = None
        idle_after_done = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while idle_after_done < 20:
            async with world.engine.connect() as conn:
                rows = await events.list_events(conn, bank_code="ICBC", after_id=cursor, limit=7)
            for row in rows:
                read.append(row.data["label"])
                positions.append((row.tx_id, row.id))
            if rows:
                cursor = rows[-1].id
            elif done.is_set():
                if len(read) >= len(committed):
                    idle_after_done += 1
                assert loop.time() < deadline, "the feed stopped before every event was read"
                await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.003)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(8)))
    done.set()
    await asyncio.wait_for(reading, timeout=90)
    assert len(read) == len(set(read))  # never twice
    assert sorted(read) == sorted(committed)  # never skipped, nothing rolled back
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert any(a[1] > b[1] for a, b in itertools.pairwise(positions)) or len(committed) < 2

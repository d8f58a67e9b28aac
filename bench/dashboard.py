"""Render times of the dashboard's pages on the demo province, on PostgreSQL (docs/performance.md).

    .venv/bin/python -m bench.dashboard [--database-url postgresql://postgres@127.0.0.1:5432/test] [--runs 30]

1. Recreates the database `loanfund_bench_dashboard` next to the given one and migrates it.
2. Fills the demo province (`loanfund demo`, business date pinned to 2026-11-27; not measured) and adds
   a province-wide fund manager.
3. Signs in and requests every page (all funds, then one fund) and a few exports through the ASGI app
   in this process (no network between client and server: the figure is the server's work), `--runs`
   times each after two warm-up requests, counting the SQL statements each request sends.
4. Prints a Markdown table (p50, p95, max in ms; statements per request) and writes
   bench/results/dashboard.json. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TODAY = "2026-11-27"
PASSWORD = "bench-password-123"
NAME = "loanfund_bench_dashboard"

TARGETS = [
    *(f"/dashboard/{page}" for page in ("overview", "leverage", "matching", "portfolio", "queues", "audit")),
    *(f"/dashboard/{page}?fund=HRB" for page in ("overview", "leverage", "matching", "portfolio", "queues")),
    "/dashboard/audit?entity_type=fund&entity_id=HRB",
    "/dashboard/export/leverage/banks/csv",
    "/dashboard/export/leverage/history/xlsx",
    "/dashboard/export/queues/applications/xlsx",
]


async def _admin(base: str, statement: str) -> None:
    from loanfund.db import create_engine

    engine = create_engine(base)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(statement))
    await engine.dispose()


async def main(database_url: str, runs: int) -> dict[str, Any]:
    from api.app import create_app
    from loanfund import uow
    from loanfund.audit import Actor
    from loanfund.config import Settings, normalise_database_url
    from loanfund.db import create_engine
    from loanfund.db.migrate import upgrade
    from loanfund.demo import fill_demo
    from loanfund.users import service as users

    os.environ["LOANFUND_BUSINESS_DATE"] = TODAY
    base = normalise_database_url(database_url)
    await _admin(base, f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await _admin(base, f'CREATE DATABASE "{NAME}"')
    url = make_url(base).set(database=NAME).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url, pool_size=5)
        started = time.perf_counter()
        await fill_demo(engine)
        fill_seconds = time.perf_counter() - started
        async with uow.transaction(engine, Actor(None, "bench")) as tx:
            await users.add_user(
                tx,
                name="bench",
                role="fund_manager",
                region_prefix="23",
                password=PASSWORD,
            )
        await engine.dispose()
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        settings = Settings(
            url, pool_size=5, idempotency_claim_timeout_seconds=60, idempotency_retention_days=8
        )
        results: dict[str, Any] = {}
        # The app makes its own engine: the test client runs it on an event loop of its own.
        async with AsyncTestClient(create_app(settings)) as http:
            event.listen(http.app.state.engine.sync_engine, "before_cursor_execute", count)
            form = await http.get("/dashboard/login")
            token = re.search(r'name="_csrf" value="([^"]+)"', form.text)
            assert token is not None
            signed = await http.post(
                "/dashboard/login",
                data={"_csrf": token.group(1), "name": "bench", "password": PASSWORD},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            for target in TARGETS:
                for _ in range(2):
                    assert (await http.get(target)).status_code == 200, target
                times, counts, size = [], [], 0
                for _ in range(runs):
                    statements = 0
                    started = time.perf_counter()
                    response = await http.get(target)
                    times.append((time.perf_counter() - started) * 1000)
                    counts.append(statements)
                    assert response.status_code == 200, target
                    size = len(response.content)
                times.sort()
                results[target] = {
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                    "max_ms": round(times[-1], 1),
                    "statements": max(counts),
                    "bytes": size,
                }
    finally:
        await _admin(base, f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    return {"runs": runs, "demo_fill_seconds": round(fill_seconds, 1), "pages": results}


def _print(result: dict[str, Any]) -> None:
    print(f"demo filled in {result['demo_fill_seconds']} s; {result['runs']} requests per line\n")
    print("| request | p50 ms | p95 ms | max ms | SQL statements | bytes |")
    print("|---|---|---|---|---|---|")
    for target, r in result["pages"].items():
        figures = (r["p50_ms"], r["p95_ms"], r["max_ms"], r["statements"], f"{r['bytes']:,}")
        print(f"| `{target}` | " + " | ".join(str(f) for f in figures) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOANFUND_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    outcome = asyncio.run(main(args.database_url, args.runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(outcome, indent=2))
    _print(outcome)

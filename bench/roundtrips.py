"""Count the SQL round trips of one approval, one disbursement and one repayment (docs/performance.md).

    .venv/bin/python -m bench.roundtrips [--verbose]

Runs the app in-process on a fresh database `loanfund_bench_rt`, seeded as bench/run.py seeds, and
counts what the driver (asyncpg) sends and waits for, request by request: each prepared statement
executed, each simple query (BEGIN, COMMIT, ROLLBACK), each ping and each statement prepared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections import Counter
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from litestar.testing import AsyncTestClient

from bench.run import LOAN_YUAN, MATURITY, TODAY, database_urls, recreate_database, seed


def _label(statement: str) -> str:
    words = " ".join(statement.split())
    return words[:110]


def _count_driver_round_trips(trips: list[str]) -> None:
    """Record every asyncpg call that waits for the server (this process only: a measuring tool)."""

    def wrap(cls: Any, name: str, kind: str, text: Any) -> None:
        original = getattr(cls, name)

        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            trips.append(f"{kind}: {_label(str(text(self, args)))}")
            return await original(self, *args, **kwargs)

        setattr(cls, name, counted)

    wrap(PreparedStatement, "fetch", "statement", lambda self, args: self.get_query())
    wrap(asyncpg.Connection, "execute", "simple", lambda self, args: args[0] if args else "")
    wrap(asyncpg.Connection, "executemany", "statement", lambda self, args: args[0] if args else "")
    wrap(asyncpg.Connection, "fetchrow", "ping", lambda self, args: args[0] if args else "")
    wrap(asyncpg.Connection, "prepare", "prepare", lambda self, args: args[0] if args else "")


async def run(verbose: bool) -> None:
    from api.app import create_app
    from loanfund.config import Settings
    from loanfund.db import create_engine
    from loanfund.db.migrate import upgrade_async

    os.environ["LOANFUND_BUSINESS_DATE"] = TODAY
    name = "loanfund_bench_rt"
    _, url = database_urls("127.0.0.1:5432", name)
    await recreate_database("127.0.0.1:5432", name)
    await upgrade_async(url)
    engine = create_engine(url)
    seeded = await seed(engine, 9)  # applications 0 and 8 are at the same bank
    await engine.dispose()
    trips: list[str] = []
    _count_driver_round_trips(trips)

    # The test client runs the app on another event loop, so the app makes its own engine.
    settings = Settings(url, pool_size=5, idempotency_claim_timeout_seconds=60, idempotency_retention_days=8)
    app = create_app(settings)
    manager = {"Authorization": f"Bearer {seeded.manager_token}"}

    def bank(application_id: str) -> dict[str, str]:
        token = seeded.bank_tokens[seeded.application_bank[application_id]]
        return {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}

    async with AsyncTestClient(app) as http:
        for round_ in range(2):  # the second round is the one that counts (caches warm)
            application_id = seeded.application_ids[8 * round_]
            results = []
            trips.clear()
            headers = {**manager, "Idempotency-Key": uuid.uuid4().hex}
            response = await http.post(f"/api/v1/applications/{application_id}/approve", headers=headers)
            assert response.status_code == 200, response.text
            results.append(("approve", list(trips)))
            trips.clear()
            body = {
                "application_id": application_id,
                "loan_number": f"LN-{application_id}",
                "principal": str(LOAN_YUAN),
                "annual_rate_pct": "3",
                "disbursed_on": TODAY,
                "maturity_on": MATURITY,
            }
            response = await http.post("/api/v1/loans", json=body, headers=bank(application_id))
            assert response.status_code == 201, response.text
            results.append(("disburse", list(trips)))
            loan_id = response.json()["id"]
            trips.clear()
            response = await http.post(
                f"/api/v1/loans/{loan_id}/repayments",
                json={"principal": "100", "interest": "10.50", "paid_on": TODAY},
                headers=bank(application_id),
            )
            assert response.status_code == 201, response.text
            results.append(("repay", list(trips)))
        for label, statements in results:
            counted = Counter(s.split(":")[0] for s in statements)
            print(f"{label}: {len(statements)} round trips {dict(counted)}")
            if verbose:
                for statement in statements:
                    print(f"    {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verbose", action="store_true")
    asyncio.run(run(parser.parse_args().verbose))


if __name__ == "__main__":
    main()

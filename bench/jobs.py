"""The daily jobs over 1,000,000 loans on PostgreSQL: time and peak memory (docs/performance.md).

    .venv/bin/python -m bench.jobs [--loans 1000000] [--database-url postgresql://postgres@127.0.0.1/loanfund_bench_jobs]

1. Recreates the database and migrates it.
2. Seeds a fund with 20 partner banks through the library, then bulk-builds the portfolio in SQL
   (INSERT … SELECT over generate_series; not measured): one borrower and one disbursed application
   per loan; loans disbursed over the last 1,000 days, maturing from 60 days ago to 3 years ahead,
   10% repaid (with their repayment), 5% with a reported missed instalment, 10% of borrowers laid
   off with a re-employment certificate (half of them inspected last year only); each bank's
   outstanding posted to the ledger in one entry and a deposit that puts two banks above 90% of their
   capacity.
3. Runs the scheduler's catch-up for the business date (every job, its first date: every alert is new)
   and for the next day (a usual day), and reads each job's time from `job_runs`.
4. Prints a table and writes bench/results/jobs-latest.json. Peak memory is this process's maximum
   resident set (the jobs run here; the database server's memory is its own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DAY = date(2026, 11, 27)
os.environ["LOANFUND_BUSINESS_DATE"] = DAY.isoformat()  # before loanfund reads it

from loanfund import banks, jobs, ledger, uow  # noqa: E402
from loanfund.agreements import service as agreements_service  # noqa: E402
from loanfund.audit import Actor  # noqa: E402
from loanfund.db import create_engine  # noqa: E402
from loanfund.db.migrate import upgrade  # noqa: E402
from loanfund.db.tables import job_runs  # noqa: E402
from loanfund.funds import service as funds_service  # noqa: E402
from loanfund.ledger import accounts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FUND, REGION, BANKS = "BENCH", "230100", 20
SEED = Actor(client_id=None, request_id="bench-seed")

BORROWERS = """
INSERT INTO borrowers (id, kind, id_number, name, categories, certificates, credit_community, syb_trained,
                       region_code, created_at)
SELECT 'bor_' || i, 'individual', lpad(i::text, 17, '0') || 'X', 'Borrower ' || i,
       CASE WHEN i % 10 = 3 THEN '["laid_off"]' ELSE '["registered_unemployed"]' END::json,
       CASE WHEN i % 10 = 3 THEN json_build_array(json_build_object(
                'kind', 'reemployment', 'number', 'RE' || i, 'issued_on', '2015-01-01',
                'inspected_year', CASE WHEN i % 20 = 3 THEN 2025 ELSE 2026 END))
            ELSE '[]'::json END,
       false, false, :region, now()
FROM generate_series(1, :n) AS i
"""
APPLICATIONS = """
INSERT INTO applications (id, fund_code, bank_code, borrower_id, region_code, amount_fen, term_months,
                          purpose, micro_profit, guarantee_kind, joint_borrower_ids, jobs_created, applied_on,
                          policy_edition, is_4050, eligibility, status, submitted_at)
SELECT 'app_' || i, :fund, 'BK' || ((i / 10) % :banks), 'bor_' || i, :region, 10000000, 24, 'shop', false,
       'collateral', '[]'::json, 1, CAST(:day AS date) - 1000 + (i % 1000) - 5, 'cn-2016', false, '{}'::json,
       'disbursed', now()
FROM generate_series(1, :n) AS i
"""
LOANS = """
INSERT INTO loans (id, application_id, fund_code, bank_code, borrower_id, borrower_kind, region_code,
                   guarantee_id, loan_number, principal_fen, outstanding_fen, annual_rate_pct, disbursed_on,
                   contracted_on, maturity_on, original_maturity_on, term_months, reference_rate_kind,
                   reference_rate_pct, reference_rate_date, reference_rate_stale, rate_ceiling_pct,
                   policy_edition, status, overdue_since, overdue_principal_fen, extension_count, repaid_on,
                   created_at)
SELECT 'loan_' || i, 'app_' || i, :fund, 'BK' || ((i / 10) % :banks), 'bor_' || i, 'individual', :region,
       'gua_' || i, 'LN' || i, p, CASE WHEN i % 10 = 0 THEN 0 ELSE p END, '4', d, d, m, m, 24, 'LPR1Y', '3',
       DATE '2025-05-20', false, '6', 'cn-2016',
       CASE WHEN i % 10 = 0 THEN 'repaid' ELSE 'active' END,
       CASE WHEN i % 20 = 1 AND d + 200 < CAST(:day AS date) THEN d + 200 END,
       0, 0, CASE WHEN i % 10 = 0 THEN CAST(:day AS date) - 1 END, now()
FROM (SELECT i, (1000000 + (i::bigint * 37) % 9000001) AS p, CAST(:day AS date) - 1000 + (i % 1000) AS d,
             CAST(:day AS date) - 60 + ((i::bigint * 7919) % 1156)::int AS m
      FROM generate_series(1, :n) AS i) AS g
"""

# The repaid loans' one repayment, the day before: a loan's outstanding is its principal less its
# repayments, which the subsidy batch relies on.
REPAYMENTS = """
INSERT INTO loan_repayments (id, loan_id, principal_fen, interest_fen, paid_on, outstanding_after_fen,
                             created_at)
SELECT 'rep_' || id, id, principal_fen, 0, repaid_on, 0, now() FROM loans WHERE status = 'repaid'
"""


async def recreate(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        await conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def seed(url: str, n: int) -> dict[str, float]:
    engine = create_engine(url)
    timings = {}
    async with uow.transaction(engine, SEED) as tx:
        await funds_service.create_fund(
            tx, code=FUND, name="Bench fund", region_code=REGION, policy_edition="cn-2016"
        )
        agreement_ids = {}
        for b in range(BANKS):
            code = f"BK{b}"
            await banks.create_bank(tx, code=code, name=f"Bank {code}")
            agreement_ids[code] = await agreements_service.create_agreement(
                tx,
                fund_code=FUND,
                bank_code=code,
                leverage_multiple=Decimal(5),
                fund_loss_share_pct=Decimal(80),
                claim_after_days=90,
                claim_covers_interest=True,
                effective_from=date(2023, 1, 1),
            )
    params = {"n": n, "fund": FUND, "region": REGION, "banks": BANKS, "day": DAY}
    for name, statement in (
        ("borrowers", BORROWERS),
        ("applications", APPLICATIONS),
        ("loans", LOANS),
        ("repayments", REPAYMENTS),
    ):
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement), params)
        timings[f"build_{name}_s"] = round(time.perf_counter() - started, 1)
    async with uow.transaction(engine, SEED) as tx:
        conn = tx.conn
        outstanding = {
            row.bank_code: int(row.fen)
            for row in await conn.execute(
                sa.text("SELECT bank_code, sum(outstanding_fen) AS fen FROM loans GROUP BY bank_code")
            )
        }
        total_deposit = 0
        deposits = {}
        for code, fen in outstanding.items():
            # Banks BK0 and BK1 at 95% of capacity, the others at 60%.
            used_share = Decimal("0.95") if code in ("BK0", "BK1") else Decimal("0.60")
            deposits[code] = int(Decimal(fen) / (5 * used_share)) + 1
            total_deposit += deposits[code]
        await funds_service.record_contribution(
            tx,
            fund_code=FUND,
            source="central",
            amount_fen=total_deposit,
            received_on=date(2023, 1, 1),
            reference="bench cash",
        )
        for code, fen in outstanding.items():
            await agreements_service.deposit(
                tx,
                agreement_ids[code],
                amount_fen=deposits[code],
                deposited_on=date(2023, 1, 2),
                reference=f"bench deposit {code}",
            )
            await ledger.post(
                tx,
                fund_code=FUND,
                entry_date=date(2023, 1, 3),
                kind="bench_outstanding",
                description=f"bulk-built portfolio at {code}",
                lines=ledger.transfer(accounts.outstanding(code), accounts.commitments(code), fen),
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE"))
    await engine.dispose()
    return timings


async def measure(url: str, today: date) -> dict[str, object]:
    engine = create_engine(url)
    started = time.perf_counter()
    results = await jobs.catch_up(engine, today=today)
    wall = time.perf_counter() - started
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(job_runs).where(job_runs.c.business_date >= today - timedelta(days=1))
            )
        ).all()
    await engine.dispose()
    assert all(r.outcome == "ok" for r in results), results
    per_job = {
        row.job: {
            "date": row.business_date.isoformat(),
            "seconds": round((row.ended_at - row.started_at).total_seconds(), 2),
            "counts": row.counts,
        }
        for row in rows
        if (row.job, row.business_date) in {(r.job, r.business_date) for r in results}
    }
    return {"business_date": today.isoformat(), "wall_seconds": round(wall, 2), "jobs": per_job}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LOANFUND_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/loanfund_bench_jobs"
        ),
    )
    args = parser.parse_args()
    url = args.database_url
    asyncio.run(recreate(url))
    upgrade(url)
    built = asyncio.run(seed(url, args.loans))
    first = asyncio.run(measure(url, DAY))
    os.environ["LOANFUND_BUSINESS_DATE"] = (DAY + timedelta(days=1)).isoformat()
    second = asyncio.run(measure(url, DAY + timedelta(days=1)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "loans": args.loans,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "build": built,
        "first_day": first,
        "next_day": second,
        "peak_rss_mb": round(peak_mb, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jobs-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'job':<26}{'first day s':>12}{'next day s':>12}  first-day counts")
    for job in jobs.JOBS:
        a, b = first["jobs"].get(job.name, {}), second["jobs"].get(job.name, {})  # type: ignore[union-attr]
        print(f"{job.name:<26}{a.get('seconds', '-'):>12}{b.get('seconds', '-'):>12}  {a.get('counts')}")
    print(f"{'all (wall)':<26}{first['wall_seconds']:>12}{second['wall_seconds']:>12}")
    print(f"peak RSS of this process: {peak_mb:.0f} MB; build: {built}")


if __name__ == "__main__":
    main()

"""One quarter's subsidy lines for 1,000,000 active loans on PostgreSQL (docs/performance.md).

    .venv/bin/python -m bench.subsidies [--loans 1000000] [--runs 3]

1. Recreates the database `loanfund_bench_subsidies`, migrates it, and builds the portfolio with
   INSERT … SELECT over generate_series (not measured): one fund whose policy changes edition by
   contract date (cn-2016, then cn-2018 from 2021-07-01, then cn-2020 from 2022-07-01), 8 banks,
   firms and individuals, loans disbursed 2021-07-01 … 2023-06-30 at reference + 0.5/1.5/2.5 pp;
   a third with a part repayment, a seventh with one inside the quarter, a twentieth extended, a
   seventeenth with an overdue spell in the quarter (half of them cured). Then ANALYZE.
2. Times, alternately, `--runs` times each: the set-based lines (`loanfund.subsidies.batch`, every
   rule and exclusion: its temporary table of moved loans, then `INSERT INTO … SELECT`), and a
   hand-written `INSERT … SELECT` of the plain case (one principal per loan, no exclusions, one
   rate). Reports the medians, their ratio, the
   lines and totals of both, and the peak RSS of this Python process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.db import create_engine
from loanfund.db.migrate import upgrade
from loanfund.subsidies import batch
from loanfund.subsidies.periods import Period, parse_period

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATABASE = "loanfund_bench_subsidies"
PERIOD = "2023Q3"

BUILD = [
    "INSERT INTO funds (code, name, region_code, currency, created_at)"
    " VALUES ('SUBS', 'Bench fund', '230100', 'CNY', now())",
    "INSERT INTO fund_policies (id, fund_code, effective_from, edition, overrides, created_at) VALUES"
    " ('p0', 'SUBS', '2000-01-01', 'cn-2016', '{}', now()),"
    " ('p1', 'SUBS', '2021-07-01', 'cn-2018', '{}', now()),"
    " ('p2', 'SUBS', '2022-07-01', 'cn-2020', '{\"rate_tier_default\": 3}', now())",
    "INSERT INTO banks (code, name, created_at)"
    " SELECT 'B' || g, 'Bank ' || g, now() FROM generate_series(0, 7) g",
    "INSERT INTO fund_banks (fund_code, bank_code, created_at) SELECT 'SUBS', code, now() FROM banks",
    "INSERT INTO borrowers (id, kind, id_number, name, categories, certificates, region_code, created_at)"
    " SELECT 'b' || g, CASE WHEN g % 5 = 0 THEN 'enterprise' ELSE 'individual' END, lpad(g::text, 18, '0'),"
    " 'B' || g, '[]', '[]', '230100', now() FROM generate_series(0, 9999) g",
    # One row per loan: its dates and amounts, from which applications and loans are made.
    "CREATE UNLOGGED TABLE seed AS SELECT g,"
    " (DATE '2021-07-01' + (g * 7919 % 730)::int) AS d,"
    " CASE WHEN g % 3 = 0 THEN 36 ELSE 24 END AS term,"
    " (1000000 + (g * 104729 % 29000000))::bigint AS principal,"
    " (ARRAY['0.5', '1.5', '2.5'])[1 + g % 3] AS spread"
    " FROM generate_series(1::bigint, :loans) g",
    "INSERT INTO applications (id, fund_code, bank_code, borrower_id, region_code, amount_fen, term_months,"
    " purpose, micro_profit, guarantee_kind, joint_borrower_ids, jobs_created, applied_on, policy_edition,"
    " eligibility, status, submitted_at)"
    " SELECT 'a' || g, 'SUBS', 'B' || (g % 8), 'b' || (g % 10000), '230100', principal, term, 'shop',"
    " g % 2 = 0, 'collateral', '[]', 1, d, 'x', '{}', 'disbursed', now() FROM seed",
    "INSERT INTO loans (id, application_id, fund_code, bank_code, borrower_id, borrower_kind, region_code,"
    " guarantee_id,"
    " loan_number, principal_fen, outstanding_fen, annual_rate_pct, disbursed_on, contracted_on, maturity_on,"
    " original_maturity_on, term_months, reference_rate_kind, reference_rate_pct, reference_rate_date,"
    " rate_ceiling_pct, policy_edition, status, created_at)"
    # Its borrower's kind: borrower b<k> is a firm when k is a multiple of 5, and so is g then.
    " SELECT 'l' || g, 'a' || g, 'SUBS', 'B' || (g % 8), 'b' || (g % 10000),"
    " CASE WHEN g % 5 = 0 THEN 'enterprise' ELSE 'individual' END, '230100', 'g' || g, 'N' || g,"
    # The outstanding is the principal less the repayments below, as the library keeps it.
    " principal, principal - CASE WHEN g % 3 = 0 THEN principal / 10 ELSE 0 END"
    " - CASE WHEN g % 7 = 0 AND g % 3 <> 0 AND d < DATE '2023-08-15' THEN principal / 5 ELSE 0 END,"
    " ((ref)::numeric + spread::numeric)::text, d, d,"
    " (d + make_interval(months => term + CASE WHEN g % 20 = 0 THEN 6 ELSE 0 END))::date,"
    " (d + make_interval(months => term))::date, term, 'LPR1Y', ref, d, '9', 'x', 'active', now()"
    " FROM (SELECT *, CASE WHEN d < DATE '2021-12-20' THEN '3.85' WHEN d < DATE '2022-08-22' THEN '3.70'"
    " ELSE '3.65' END AS ref FROM seed) s",
    "INSERT INTO loan_repayments (id, loan_id, principal_fen, interest_fen, paid_on, outstanding_after_fen,"
    " created_at)"
    " SELECT 'r' || g, 'l' || g, principal / 10, 0, LEAST(d + 200, DATE '2023-09-30'),"
    " principal - principal / 10, now() FROM seed WHERE g % 3 = 0",
    "INSERT INTO loan_repayments (id, loan_id, principal_fen, interest_fen, paid_on, outstanding_after_fen,"
    " created_at)"
    " SELECT 'q' || g, 'l' || g, principal / 5, 0, DATE '2023-08-15', principal - principal / 5, now()"
    " FROM seed"
    " WHERE g % 7 = 0 AND g % 3 <> 0 AND d < DATE '2023-08-15'",
    "INSERT INTO loan_overdue_spells (loan_id, overdue_since, cured_on)"
    " SELECT 'l' || g, DATE '2023-08-01', CASE WHEN g % 34 = 0 THEN DATE '2023-09-10' END FROM seed"
    " WHERE g % 17 = 0 AND d < DATE '2023-07-01'",
    "DROP TABLE seed",
]

PLAIN = """
INSERT INTO bench_plain (loan_id, days, interest_fen, subsidy_fen)
SELECT id, days,
       div(2 * principal_fen::numeric * rc * days + 360000000, 720000000)::bigint,
       div(2 * principal_fen::numeric * rc * days + 360000000, 720000000)::bigint
FROM (
    SELECT id, principal_fen, (annual_rate_pct::numeric * 10000)::bigint AS rc,
           LEAST(CAST(:pe AS date), COALESCE(repaid_on, CAST(:pe AS date)))
             - GREATEST(CAST(:ps AS date), disbursed_on) AS days
    FROM loans
    WHERE fund_code = 'SUBS' AND disbursed_on < :pe AND (repaid_on IS NULL OR repaid_on > :ps)
) plain
"""


async def recreate(base_url: str, database: str) -> str:
    engine = create_engine(base_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    await engine.dispose()
    url = sa.make_url(base_url).set(database=database).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    return url


async def build(engine: AsyncEngine, loans: int) -> float:
    started = time.perf_counter()
    async with engine.begin() as conn:
        for statement in BUILD:
            await conn.execute(sa.text(statement), {"loans": loans} if ":loans" in statement else {})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


async def timed(engine: AsyncEngine, statement: str, params: dict[str, object], table: str) -> float:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {table}"))
    async with engine.begin() as conn:
        await batch.batch_settings(conn)  # as the batch runs under
        started = time.perf_counter()
        await conn.execute(sa.text(statement), params)
        return time.perf_counter() - started


async def timed_batch(engine: AsyncEngine, columns: str, period: Period) -> float:
    """The batch's every statement: the temporary table of moved loans, then the lines."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE bench_lines"))
    async with engine.begin() as conn:
        started = time.perf_counter()
        select, params = await batch.lines_select(conn, "SUBS", period)
        await conn.execute(sa.text(f"INSERT INTO bench_lines ({columns}) {select}"), params)
        return time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = await recreate(args.database_url, args.database)
    engine = create_engine(url)
    build_s = await build(engine, args.loans)
    period = parse_period(PERIOD)
    async with engine.begin() as conn:
        columns = "loan_id, opening_fen, closing_fen, disbursed_fen, repaid_fen, days, excluded_days,"
        columns += " interest_fen, subsidy_fen, subsidy_rate_pct"
        await conn.execute(
            sa.text(
                "CREATE UNLOGGED TABLE bench_lines (loan_id text, opening_fen bigint, closing_fen bigint,"
                " disbursed_fen bigint, repaid_fen bigint, days int, excluded_days int, interest_fen bigint,"
                " subsidy_fen bigint, subsidy_rate_pct numeric)"
            )
        )
        await conn.execute(
            sa.text(
                "CREATE UNLOGGED TABLE bench_plain"
                " (loan_id text, days int, interest_fen bigint, subsidy_fen bigint)"
            )
        )
    plain_params = {"ps": period.start, "pe": period.end}
    batch_s: list[float] = []
    plain_s: list[float] = []
    for _ in range(args.runs):
        plain_s.append(await timed(engine, PLAIN, plain_params, "bench_plain"))
        batch_s.append(await timed_batch(engine, columns, period))
    async with engine.connect() as conn:
        lines = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) AS n, sum(subsidy_fen) AS subsidy, sum(interest_fen) AS interest,"
                    " count(*) FILTER (WHERE excluded_days > 0) AS with_exclusions FROM bench_lines"
                )
            )
        ).one()
        plain = (
            await conn.execute(
                sa.text("SELECT count(*) AS n, sum(interest_fen) AS interest FROM bench_plain")
            )
        ).one()
        server = await conn.scalar(sa.text("SHOW server_version"))
    await engine.dispose()
    batch_median, plain_median = statistics.median(batch_s), statistics.median(plain_s)
    result: dict[str, object] = {
        "loans": args.loans,
        "period": PERIOD,
        "build_seconds": round(build_s, 1),
        "batch_seconds": [round(s, 2) for s in batch_s],
        "plain_seconds": [round(s, 2) for s in plain_s],
        "batch_median": round(batch_median, 2),
        "plain_median": round(plain_median, 2),
        "ratio": round(batch_median / plain_median, 2),
        "lines": lines.n,
        "lines_with_exclusions": lines.with_exclusions,
        "subsidy_total_fen": int(lines.subsidy),
        "interest_total_fen": int(lines.interest),
        "plain_lines": plain.n,
        "plain_interest_total_fen": int(plain.interest),
        # Linux reports kilobytes.
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "postgresql": server,
        "python": platform.python_version(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    # Another name keeps two engineers' runs on one server apart (the database is recreated).
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "subsidies.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

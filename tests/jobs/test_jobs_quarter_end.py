"""The jobs over a quarter (and year) end, day by day, against hand-computed expectations.

The portfolio (portfolio.py) is built through the API; then the business date advances from 2026-12-14
to 2027-01-05, the day's events happen through the API, and the scheduler's catch-up runs. After each
day every job is run again by hand for the dates just run: the database must not change at all.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import jobs
from loanfund.db.tables import audit_log, capacity_snapshots, events, job_runs, metadata
from loanfund.jobs import queries as job_queries
from tests.jobs.portfolio import approve_r2, build, extend_l5, late_match, on, repay_abc
from tests.support import Api, World

FIRST, LAST = date(2026, 12, 14), date(2027, 1, 5)
STEPS = {
    date(2026, 12, 15): extend_l5,
    date(2026, 12, 20): approve_r2,
    date(2026, 12, 22): repay_abc,
    date(2027, 1, 3): late_match,
}


async def dump(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the run history, in a stable order."""
    out = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table is job_runs:
                continue
            rows = (await conn.execute(sa.select(table))).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out


def days() -> list[date]:
    return [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]


async def test_quarter_end(
    world: World, admin: Api, manager: Api, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await build(world, admin, manager, monkeypatch)
    counts: dict[tuple[str, date], dict[str, int]] = {}
    live: dict[tuple[str, date], dict[str, Any]] = {}
    for day in days():
        on(monkeypatch, day.isoformat())
        step = STEPS.get(day)
        if step is not None:
            await step(p)
        for bank, agreement in p.agreements.items():
            got = await manager.get(f"/agreements/{agreement}")
            live[(bank, day)] = got.json()["capacity"]
        results = await jobs.catch_up(engine, today=day)
        assert [r.outcome for r in results] == ["ok"] * len(results), results
        assert {r.business_date for r in results} == {day, day - timedelta(days=1)}
        for result in results:
            counts[(result.job, result.business_date)] = result.counts
        after_first = await dump(engine)
        for result in results:
            again = await jobs.run_job(engine, jobs.get(result.job), result.business_date)
            assert again.outcome == "ok", again
        assert await dump(engine) == after_first, f"a second run on {day} changed something"

    def count(job: str, name: str) -> dict[date, int]:
        """The dates on which a job's count was not zero."""
        return {d: c[name] for (j, d), c in sorted(counts.items()) if j == job and c[name]}

    d = date
    assert count("lapse_reservations", "lapsed") == {d(2026, 12, 27): 1}
    assert count("overdue_loans", "newly_overdue") == {d(2026, 12, 14): 1, d(2026, 12, 16): 1}
    assert count("overdue_loans", "entered_61-90") == {d(2026, 12, 14): 1}
    assert count("overdue_loans", "entered_90+") == {d(2026, 12, 30): 1}
    assert count("overdue_loans", "entered_31-60") == {}
    assert counts[("overdue_loans", d(2026, 12, 15))]["overdue"] == 1
    assert counts[("overdue_loans", d(2026, 12, 16))] | {"newly_overdue": 0} == {
        "newly_overdue": 0,
        "entered_31-60": 0,
        "entered_61-90": 0,
        "entered_90+": 0,
        "bucket_1-30": 1,
        "bucket_31-60": 0,
        "bucket_61-90": 1,
        "bucket_90+": 0,
        "overdue": 2,
    }
    assert counts[("overdue_loans", LAST)]["bucket_1-30"] == 1  # L1: 21 days on 2027-01-05
    assert counts[("overdue_loans", LAST)]["bucket_90+"] == 1  # L4: 97 days
    assert count("maturity_warnings", "warned") == {d(2026, 12, 14): 2, d(2026, 12, 21): 1}
    assert count("matching_deadlines", "warned") == {d(2026, 12, 14): 1}
    assert count("matching_deadlines", "newly_overdue") == {d(2027, 1, 1): 1}
    assert count("matching_deadlines", "overdue") == {d(2027, 1, 1): 1, d(2027, 1, 2): 1}
    assert count("matching_deadlines", "met_late") == {d(2027, 1, 3): 1}
    assert count("certificate_inspections", "flagged") == {d(2027, 1, 1): 1}
    assert count("capacity_snapshots", "snapshots") == {day - timedelta(days=1): 2 for day in days()}
    assert count("capacity_alerts", "raised") == {d(2026, 12, 13): 1}
    assert count("capacity_alerts", "cleared") == {d(2026, 12, 22): 1}

    async with engine.connect() as conn:
        snapshots = {
            (row.bank_code, row.business_date): row
            for row in await conn.execute(sa.select(capacity_snapshots))
        }
        feed = (await conn.execute(sa.select(events).order_by(events.c.id))).all()
        job_audit = Counter(
            await conn.scalars(sa.select(audit_log.c.action).where(audit_log.c.request_id.like("job:%")))
        )
        runs = (await conn.execute(sa.select(job_runs).where(job_runs.c.trigger == "scheduler"))).all()

    # A snapshot for a date is what GET /agreements/{id} showed on that date, and hand-computed:
    assert len(snapshots) == 2 * len(days())
    for (bank, day), snap in snapshots.items():
        shown = live.get((bank, day))
        if shown is not None:
            assert (
                f"{snap.deposit_fen / 100:.2f}",  # exact: fen below 2**53
                f"{snap.outstanding_fen / 100:.2f}",
                f"{snap.reserved_fen / 100:.2f}",
                f"{snap.headroom_fen / 100:.2f}",
                None if snap.leverage_ratio is None else str(snap.leverage_ratio),
            ) == (
                shown["deposit"],
                shown["outstanding"],
                shown["reserved"],
                shown["headroom"],
                shown["leverage_ratio"],
            )
    icbc = {
        day: snapshots[("ICBC", day)]
        for day in (d(2026, 12, 13), d(2026, 12, 20), d(2026, 12, 26), d(2026, 12, 27))
    }
    # L1 + L2 + L4 + L5 outstanding; R1 reserved until its last day 12-26, R2 from 12-20.
    assert [
        (s.outstanding_fen, s.reserved_fen, s.headroom_fen, str(s.leverage_ratio)) for s in icbc.values()
    ] == [
        (17_000_000, 5_000_000, 478_000_000, "0.2200"),
        (17_000_000, 8_000_000, 475_000_000, "0.2500"),
        (17_000_000, 8_000_000, 475_000_000, "0.2500"),
        (17_000_000, 3_000_000, 480_000_000, "0.2000"),
    ]
    async with engine.connect() as conn:
        series = await job_queries.capacity_history(
            conn, p.agreements["ABC"], date_from=d(2026, 12, 21), date_to=d(2026, 12, 23)
        )
    assert [(s.business_date, s.outstanding_fen) for s in series] == [
        (d(2026, 12, 21), 9_500_000),
        (d(2026, 12, 22), 8_500_000),
        (d(2026, 12, 23), 8_500_000),
    ]
    abc = [snapshots[("ABC", day)] for day in (d(2026, 12, 21), d(2026, 12, 22))]
    assert [(s.deposit_fen, s.capacity_fen, s.outstanding_fen, str(s.leverage_ratio)) for s in abc] == [
        (2_000_000, 10_000_000, 9_500_000, "4.7500"),
        (2_000_000, 10_000_000, 8_500_000, "4.2500"),
    ]

    # Alerts: events in the feed and audit records, once each.
    by_type = Counter(row.type for row in feed if row.type not in ("guarantee_approved",))
    assert {k: v for k, v in by_type.items() if k != "application_rejected"} == {
        "guarantee_lapsed": 1,
        "loan_overdue": 2,
        "loan_delinquency": 2,
        "loan_maturity_approaching": 3,
        "matching_shortfall_warning": 1,
        "matching_overdue": 1,
        "matching_met": 1,
        "certificate_inspection_lapsed": 1,
        "capacity_alert": 1,
        "capacity_alert_cleared": 1,
        "subsidy_draft": 2,  # 2026Q4 closes on 2026-12-31: one draft per bank with loans
    }
    assert job_audit == {
        "guarantee.lapsed": 1,
        "loan.overdue": 2,
        "loan.delinquency_bucket": 2,
        "loan.maturity_approaching": 3,
        "allocation.matching_warning": 1,
        "allocation.matching_overdue": 1,
        "allocation.matching_met": 1,
        "borrower.certificate_inspection_lapsed": 1,
        "agreement.capacity_alert": 1,
        "agreement.capacity_alert_cleared": 1,
        "fund.subsidy_draft": 2,
    }
    overdue = {row.data["loan_id"]: row for row in feed if row.type == "loan_overdue"}
    l1 = overdue[p.loans["L1"]]
    assert (l1.bank_code, l1.region_code, l1.fund_code) == ("ICBC", "230100", "HRB")
    assert l1.data == {
        "loan_id": p.loans["L1"],
        "loan_number": "ICBC-L1",
        "fund_code": "HRB",
        "bank_code": "ICBC",
        "currency": "CNY",
        "outstanding_principal": "50000.00",
        "maturity_on": "2026-12-15",
        "as_of": "2026-12-16",
        "overdue_since": "2026-12-16",
    }
    assert overdue[p.loans["L4"]].data["overdue_since"] == "2026-10-01"
    buckets = sorted(row.data["bucket_key"] for row in feed if row.type == "loan_delinquency")
    assert buckets == ["2026-10-01:61-90", "2026-10-01:90+"]
    warned = {
        row.data["loan_id"]: row.data["maturity_on"]
        for row in feed
        if row.type == "loan_maturity_approaching"
    }
    assert warned == {p.loans["L1"]: "2026-12-15", p.loans["L5"]: "2026-12-20", p.loans["L2"]: "2027-01-20"}
    matching = next(row.data for row in feed if row.type == "matching_overdue")
    assert (matching["required"], matching["matched"], matching["shortfall"], matching["as_of"]) == (
        "3000000.00",
        "1200000.00",
        "1800000.00",
        "2027-01-01",
    )
    alert = next(row for row in feed if row.type == "capacity_alert")
    assert (alert.bank_code, alert.data["used_pct"], alert.data["headroom"]) == ("ABC", "95.00", "5000.00")
    flagged = next(row for row in feed if row.type == "certificate_inspection_lapsed")
    assert flagged.data == {
        "borrower_id": p.borrowers["L2"],
        "inspection_year": "2027",
        "as_of": "2027-01-01",
    }

    # The scheduler ran every job once for every date, none twice, none skipped.
    per_job = Counter((row.job, row.business_date) for row in runs)
    assert set(per_job.values()) == {1}
    for job in jobs.JOBS:
        ran = sorted(day for (name, day) in per_job if name == job.name)
        lag = timedelta(days=job.cadence.lag_days)
        assert ran == [day - lag for day in days()], job.name

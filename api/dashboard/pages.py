"""What each page shows, as tables (and charts) built from the library's read models.

The page and its exports call the same builder, so a download always holds what the page showed.
No SQL here: reads go through `loanfund.reports` and the areas' queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.dashboard import charts
from api.dashboard.tables import MONEY, Column, Table
from loanfund import audit
from loanfund.applications import queries as application_queries
from loanfund.borrowers import queries as borrower_queries
from loanfund.claims import queries as claim_queries
from loanfund.funds.service import matching_in_scope
from loanfund.jobs import queries as job_queries
from loanfund.reports import leverage, overview, portfolio, queries
from loanfund.subsidies import queries as subsidy_queries
from loanfund.users.queries import User

QUEUE_LIMIT = 200
AUDIT_LIMIT = 200
JOBS_LIMIT = 100


@dataclass
class Page:
    tables: dict[str, Table] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


async def fund_choices(conn: AsyncConnection, user: User) -> list[tuple[str, str]]:
    return [(row.code, row.name) for row in await queries.funds_in_scope(conn, user.region_prefix)]


def _sum(rows: list[list[Any]], index: int) -> int:
    return sum(int(row[index] or 0) for row in rows)


async def overview_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    lines = await overview.fund_overview(conn, user.region_prefix, fund)
    position_rows: list[list[Any]] = [
        [
            f.code,
            f.name,
            f.position.cash_fen,
            f.position.deposited_fen,
            f.position.contributed_fen,
            f.position.compensation_paid_fen,
            f.position.recovered_fen,
            f.position.written_off_fen,
            f.recoverable_fen,
            f.position.subsidy_budget_fen,
        ]
        for f in lines
    ]
    money_columns = range(2, 10)
    positions = Table(
        name="funds",
        title="overview",
        columns=(
            Column("fund_code"),
            Column("fund"),
            *(
                Column(key, MONEY)
                for key in (
                    "cash",
                    "deposited",
                    "contributed",
                    "compensation_paid",
                    "recovered",
                    "written_off",
                    "recoverable",
                    "subsidy_budget",
                )
            ),
        ),
        rows=position_rows,
        total=["total", "", *(_sum(position_rows, i) for i in money_columns)],
        wan=True,
    )
    source_rows: list[list[Any]] = [
        [
            f.code,
            *(f.contributed_by_source[s] for s in overview.SOURCES),
            f.position.contributed_fen,
            f.subsidy_received_fen,
            f.subsidy_paid_fen,
        ]
        for f in lines
    ]
    width = len(overview.SOURCES) + 3
    sources = Table(
        name="sources",
        title="sources",
        columns=(
            Column("fund_code"),
            *(Column(f"source_{s}", MONEY) for s in overview.SOURCES),
            Column("contributed", MONEY),
            Column("subsidy_received", MONEY),
            Column("subsidy_paid", MONEY),
        ),
        rows=source_rows,
        total=["total", *(_sum(source_rows, i) for i in range(1, width + 1))],
        wan=True,
    )
    totals = positions.total or []
    return Page(
        {"funds": positions, "sources": sources},
        {
            "cards": [
                ("cash", totals[2]),
                ("deposited", totals[3]),
                ("contributed", totals[4]),
                ("compensation_paid", totals[5]),
                ("recovered", totals[6]),
                ("subsidy_budget", totals[9]),
            ]
            if lines
            else []
        },
    )


async def leverage_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    pairs = await leverage.pair_leverage(conn, user.region_prefix, today, fund)
    histories = await leverage.leverage_history(conn, user.region_prefix, today, pairs, fund_code=fund)
    rows: list[list[Any]] = [
        [
            p.fund_code,
            p.bank_name,
            f"status_{p.agreement_status}",
            p.capacity.deposit_fen,
            p.capacity.leverage_multiple,
            p.capacity.capacity_fen,
            p.capacity.outstanding_fen,
            p.capacity.reserved_fen,
            p.capacity.headroom_fen,
            p.capacity.leverage_ratio,
            f"flag_{p.flag}",
        ]
        for p in pairs
    ]
    table = Table(
        name="banks",
        title="leverage",
        columns=(
            Column("fund_code"),
            Column("bank"),
            Column("agreement_status", "label"),
            Column("deposit", MONEY),
            Column("multiple", "ratio"),
            Column("capacity", MONEY),
            Column("outstanding", MONEY),
            Column("reserved", MONEY),
            Column("headroom", MONEY),
            Column("ratio", "ratio"),
            Column("flag", "label"),
        ),
        rows=rows,
        wan=True,
        row_classes=tuple(f"flag-{p.flag} agreement-{p.agreement_status}" for p in pairs),
    )
    names = {p.bank_code: p.bank_name for p in pairs}
    by_fund: dict[str, list[leverage.PairHistory]] = {}
    for history in histories:
        by_fund.setdefault(history.fund_code, []).append(history)
    lines = [charts.leverage_lines(code, items, names) for code, items in by_fund.items()]
    history_rows = [
        [
            h.fund_code,
            names.get(h.bank_code, h.bank_code),
            p.on,
            p.deposit_fen,
            p.outstanding_fen,
            p.reserved_fen,
            p.ratio,
        ]
        for h in histories
        for p in h.points
    ]
    history = Table(
        name="history",
        title="leverage_history",
        columns=(
            Column("fund_code"),
            Column("bank"),
            Column("as_of", "date"),
            Column("deposit", MONEY),
            Column("outstanding", MONEY),
            Column("reserved", MONEY),
            Column("ratio", "ratio"),
        ),
        rows=history_rows,
        wan=True,
    )
    return Page(
        {"banks": table, "history": history},
        {"bars": charts.leverage_bars(pairs) if pairs else None, "lines": lines},
    )


async def matching_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    rows: list[list[Any]] = [
        [
            code,
            m.reference,
            m.amount_fen,
            m.required_fen,
            m.matched_fen,
            m.shortfall_fen,
            f"match_{m.status}",
            m.due_on,
        ]
        for code, m in await matching_in_scope(conn, today, region_prefix=user.region_prefix, fund_code=fund)
    ]
    table = Table(
        name="allocations",
        title="matching",
        columns=(
            Column("fund_code"),
            Column("reference"),
            Column("allocation", MONEY),
            Column("required", MONEY),
            Column("matched", MONEY),
            Column("shortfall", MONEY),
            Column("status", "label"),
            Column("due_on", "date"),
        ),
        rows=rows,
        total=["total", "", *(_sum(rows, i) for i in range(2, 6)), None, None],
        row_classes=tuple(f"match-{row[6].removeprefix('match_')}" for row in rows),
    )
    return Page({"allocations": table})


async def portfolio_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    p = await portfolio.portfolio(conn, user.region_prefix, today, fund)
    status_rows = [[f"loan_{t.key}", t.count, t.principal_fen, t.outstanding_fen] for t in p.by_status]
    by_status = Table(
        name="status",
        title="loans_by_status",
        columns=(
            Column("status", "label"),
            Column("count", "int"),
            Column("principal", MONEY),
            Column("outstanding", MONEY),
        ),
        rows=status_rows,
        total=["total", *(_sum(status_rows, i) for i in (1, 2, 3))],
    )
    bucket_rows = [[f"bucket_{t.key}", t.count, t.outstanding_fen] for t in p.by_bucket]
    by_bucket = Table(
        name="delinquency",
        title="loans_by_bucket",
        columns=(Column("bucket", "label"), Column("count", "int"), Column("outstanding", MONEY)),
        rows=bucket_rows,
        total=["total", _sum(bucket_rows, 1), _sum(bucket_rows, 2)],
    )
    categories = Table(
        name="categories",
        title="borrowers_by_category",
        columns=(Column("category", "label"), Column("people", "int")),
        rows=[[f"cat_{name}", n] for name, n in p.borrowers_by_category.items()]
        + [[f"kind_{kind}", n] for kind, n in p.borrowers_by_kind.items()],
    )
    outcomes = Table(
        name="outcomes",
        title="outcomes",
        columns=(Column("outcomes", "label"), Column("number", "int")),
        rows=[
            ["loans_made", p.loans],
            ["borrowers_with_loans", p.borrowers_with_loans],
            ["loans_4050", p.loans_4050],
            ["jobs_created", p.jobs_created],
        ],
    )
    largest = max([t.count for t in p.by_bucket] + [1])
    return Page(
        {"status": by_status, "delinquency": by_bucket, "categories": categories, "outcomes": outcomes},
        {"bucket_bars": [(f"bucket_{t.key}", t.count, t.count / largest) for t in p.by_bucket]},
    )


@dataclass(frozen=True)
class QueueSection:
    """One kind of work waiting for a decision; `actions` names the template macro of its row forms."""

    key: str
    table: Table
    actions: str | None
    more: bool = False


async def queues_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    waiting = await application_queries.list_applications(
        conn,
        today,
        region_prefix=user.region_prefix,
        status="submitted",
        fund_code=fund,
        limit=QUEUE_LIMIT + 1,
    )
    more = len(waiting) > QUEUE_LIMIT
    waiting = waiting[:QUEUE_LIMIT]
    people = await borrower_queries.get_borrowers(conn, [a.borrower_id for a in waiting])
    rows = [
        [
            a.id,
            a.fund_code,
            a.bank_code,
            people[a.borrower_id].name if a.borrower_id in people else a.borrower_id,
            a.amount_fen,
            a.term_months,
            a.applied_on,
            f"gk_{a.guarantee_kind}",
            a.is_4050,
        ]
        for a in waiting
    ]
    applications = Table(
        name="applications",
        title="applications_awaiting",
        columns=(
            Column("application"),
            Column("fund_code"),
            Column("bank_code"),
            Column("borrower"),
            Column("amount", MONEY),
            Column("term_months", "int"),
            Column("applied_on", "date"),
            Column("guarantee_kind", "label"),
            Column("is_4050"),
        ),
        rows=rows,
    )
    claims = await claim_queries.list_claims(
        conn,
        region_prefix=user.region_prefix,
        fund_code=fund,
        status=claim_queries.SUBMITTED,
        limit=QUEUE_LIMIT + 1,
    )
    claims_more = len(claims) > QUEUE_LIMIT
    compensation = Table(
        name="compensation_claims",
        title="compensation_claims",
        columns=(
            Column("claim"),
            Column("fund_code"),
            Column("bank_code"),
            Column("loan"),
            Column("amount", MONEY),
            Column("days_past_due", "int"),
            Column("claimed_on", "date"),
        ),
        rows=[
            [c.id, c.fund_code, c.bank_code, c.loan_id, c.amount_fen, c.days_past_due, c.claimed_on]
            for c in claims[:QUEUE_LIMIT]
        ],
    )
    # Awaiting review, then awaiting payment: two statements, each bounded, so paid claims are never read.
    subsidy_rows: list[list[Any]] = []
    subsidy_more = False
    for status in ("submitted", "approved"):
        found = await subsidy_queries.list_claims(
            conn,
            region_prefix=user.region_prefix,
            bank_code=None,
            fund_code=fund,
            status=status,
            after=None,
            limit=QUEUE_LIMIT + 1,
        )
        subsidy_more = subsidy_more or len(found) > QUEUE_LIMIT
        subsidy_rows += [
            [
                c.id,
                c.fund_code,
                c.bank_code,
                c.period,
                f"subsidy_{c.status}",
                c.line_count,
                c.total_fen,
                c.approved_total_fen,
            ]
            for c in found[:QUEUE_LIMIT]
        ]
    subsidies = Table(
        name="subsidy_claims",
        title="subsidy_claims",
        columns=(
            Column("claim"),
            Column("fund_code"),
            Column("bank_code"),
            Column("period"),
            Column("status", "label"),
            Column("lines", "int"),
            Column("claimed_amount", MONEY),
            Column("approved_amount", MONEY),
        ),
        rows=subsidy_rows,
    )
    sections = [
        QueueSection("applications_awaiting", applications, "decide", more=more),
        QueueSection("compensation_claims", compensation, "decide_claim", more=claims_more),
        QueueSection("subsidy_claims", subsidies, "decide_subsidy", more=subsidy_more),
    ]
    return Page(
        {"applications": applications, "compensation_claims": compensation, "subsidy_claims": subsidies},
        {"sections": sections},
    )


async def jobs_page(conn: AsyncConnection, user: User, today: date, fund: str | None) -> Page:
    completed = await job_queries.last_completed(conn)
    latest = await job_queries.latest_runs(conn)
    names = sorted(set(completed) | set(latest))
    status = Table(
        name="job_status",
        title="job_status",
        columns=(
            Column("job"),
            Column("last_completed", "date"),
            Column("last_run", "date"),
            Column("outcome", "label"),
            Column("ended_at", "date"),
        ),
        rows=[
            [
                name,
                completed.get(name),
                latest[name].business_date if name in latest else None,
                f"outcome_{latest[name].outcome}" if name in latest else None,
                latest[name].ended_at if name in latest else None,
            ]
            for name in names
        ],
    )
    runs = Table(
        name="job_runs",
        title="job_runs",
        columns=(
            Column("job"),
            Column("business_date", "date"),
            Column("outcome", "label"),
            Column("trigger", "label"),
            Column("started_at", "date"),
            Column("ended_at", "date"),
            Column("counts"),
            Column("error"),
        ),
        rows=[
            [
                r.job,
                r.business_date,
                f"outcome_{r.outcome}",
                f"trigger_{r.trigger}",
                r.started_at,
                r.ended_at,
                json.dumps(r.counts, ensure_ascii=False, sort_keys=True, default=str),
                r.error or "",
            ]
            for r in await job_queries.list_runs(conn, limit=JOBS_LIMIT)
        ],
    )
    alerts = Table(
        name="alerts",
        title="alerts",
        columns=(
            Column("occurred_at", "date"),
            Column("alert_type", "label"),
            Column("fund_code"),
            Column("region"),
            Column("bank_code"),
            Column("details"),
        ),
        rows=[
            [
                e.occurred_at,
                f"alert_{e.type}",
                e.fund_code or "",
                e.region_code or "",
                e.bank_code or "",
                json.dumps(e.data, ensure_ascii=False, sort_keys=True, default=str),
            ]
            for e in await queries.recent_alerts(conn, user.region_prefix, fund, JOBS_LIMIT)
        ],
    )
    return Page({"job_status": status, "job_runs": runs, "alerts": alerts})


async def audit_page(
    conn: AsyncConnection, user: User, entity_type: str | None, entity_id: str | None
) -> Page:
    if entity_type or entity_id:
        records = await audit.list_records(
            conn,
            region_prefix=user.region_prefix,
            entity_type=entity_type or None,
            entity_id=entity_id or None,
            limit=AUDIT_LIMIT,
            newest_first=True,  # like the unfiltered page: the latest decisions first
        )
    else:
        records = await queries.latest_audit(conn, user.region_prefix, AUDIT_LIMIT)
    names = await queries.actor_names(conn, {r.client_id for r in records if r.client_id})
    rows = [
        [
            r.occurred_at,
            names.get(r.client_id, r.client_id) if r.client_id else (r.request_id or ""),
            r.action,
            r.entity_type,
            r.entity_id,
            json.dumps(r.changes, ensure_ascii=False, sort_keys=True)[:300],
        ]
        for r in records
    ]
    table = Table(
        name="records",
        title="audit",
        columns=(
            Column("occurred_at", "date"),
            Column("actor"),
            Column("action"),
            Column("entity_type"),
            Column("entity_id"),
            Column("changes"),
        ),
        rows=rows,
    )
    return Page({"records": table}, {"more": len(records) >= AUDIT_LIMIT})

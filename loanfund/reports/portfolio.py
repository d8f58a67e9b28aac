"""Portfolio: loans by status and delinquency bucket, borrowers by category, 4050 persons, jobs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.loans import delinquency
from loanfund.loans.queries import STATUSES, days_past_due
from loanfund.reports import queries


@dataclass(frozen=True)
class Tally:
    key: str
    count: int
    principal_fen: int
    outstanding_fen: int


@dataclass(frozen=True)
class Portfolio:
    by_status: tuple[Tally, ...]
    # "current", then the past-due buckets of loanfund.loans.delinquency; principal is not summed here (0)
    by_bucket: tuple[Tally, ...]
    borrowers_by_kind: dict[str, int]
    borrowers_by_category: dict[str, int]
    loans: int
    loans_4050: int
    borrowers_with_loans: int
    jobs_created: int


async def portfolio(
    conn: AsyncConnection, region_prefix: str, today: date, fund_code: str | None = None
) -> Portfolio:
    """Five statements, whatever the number of loans."""
    counts: Counter[str] = Counter()
    principal: Counter[str] = Counter()
    outstanding: Counter[str] = Counter()
    for row in await queries.loans_by_status(conn, region_prefix, fund_code, today):
        status = "overdue" if row.past_due else row.status
        counts[status] += int(row.n)
        principal[status] += int(row.principal_fen or 0)
        outstanding[status] += int(row.outstanding_fen or 0)
    by_status = tuple(Tally(s, counts[s], principal[s], outstanding[s]) for s in STATUSES)

    bucket_n: Counter[str] = Counter()
    bucket_fen: Counter[str] = Counter()
    for row in await queries.past_due_loans(conn, region_prefix, fund_code, today):
        name = delinquency.bucket_of(days_past_due("active", row.overdue_since, row.maturity_on, today))
        bucket_n[name] += int(row.n)
        bucket_fen[name] += int(row.outstanding_fen or 0)
    by_bucket = (
        Tally("current", counts["active"], 0, outstanding["active"]),
        *(Tally(name, bucket_n[name], 0, bucket_fen[name]) for name in delinquency.BUCKETS[1:]),
    )

    kinds: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for row in await queries.borrower_categories(conn, region_prefix, fund_code):
        kinds[row.kind] += 1
        categories.update(row.categories or ())
    outcomes = await queries.lending_outcomes(conn, region_prefix, fund_code)
    return Portfolio(
        by_status=by_status,
        by_bucket=by_bucket,
        borrowers_by_kind=dict(sorted(kinds.items())),
        borrowers_by_category=dict(categories.most_common()),
        loans=int(outcomes.loans),
        loans_4050=int(outcomes.is_4050),
        borrowers_with_loans=int(outcomes.borrowers),
        jobs_created=int(outcomes.jobs_created),
    )

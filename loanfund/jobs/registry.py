"""Every scheduled job, in the order they run for a date. Adding a job is one entry here."""

from __future__ import annotations

from loanfund.errors import NotFound
from loanfund.jobs import capacity, certificates, housekeeping, loans, matching, risk
from loanfund.jobs.framework import DAILY, DAILY_AT_CLOSE, Job

JOBS: tuple[Job, ...] = (
    Job(
        "lapse_reservations",
        housekeeping.lapse_reservations,
        DAILY,
        "guarantee reservations past their last day lapse in status and ledger",
    ),
    Job(
        "overdue_loans",
        loans.overdue_loans,
        DAILY,
        "announce loans falling overdue and entering older delinquency buckets; count them per bucket",
    ),
    Job(
        "maturity_warnings",
        loans.maturity_warnings,
        DAILY,
        "warn of loans maturing within 30 days",
    ),
    Job(
        "matching_deadlines",
        matching.matching_deadlines,
        DAILY,
        "matching requirements overdue after their due date; warn 30 days before a due date with a shortfall",
    ),
    Job(
        "certificate_inspections",
        certificates.certificate_inspections,
        DAILY,
        "flag borrowers with active loans whose re-employment certificate missed this year's inspection",
    ),
    Job(
        "purge_idempotency_keys",
        housekeeping.purge_idempotency_keys,
        DAILY,
        "forget idempotency keys older than the retention (at least 7 days)",
    ),
    Job(
        "capacity_snapshots",
        capacity.capacity_snapshots_job,
        DAILY_AT_CLOSE,
        "each agreement's deposit, capacity, outstanding, reserved, headroom and leverage at the close",
    ),
    Job(
        "capacity_alerts",
        capacity.capacity_alerts,
        DAILY_AT_CLOSE,
        "alert banks above 90% of their capacity (and when they are back under it)",
        after=("capacity_snapshots",),
    ),
    Job(
        "compensation_rates",
        risk.compensation_rates,
        DAILY_AT_CLOSE,
        "compensation rates against each agreement's threshold (suspending it) and the fund's red flag",
    ),
    Job(
        "subsidy_drafts",
        risk.subsidy_drafts,
        DAILY_AT_CLOSE,  # acts on the days that close a claim period of the fund's policy
        "at the end of a claim period: each bank's expected subsidy claim, announced to the managers",
    ),
)

BY_NAME = {job.name: job for job in JOBS}


def get(name: str) -> Job:
    try:
        return BY_NAME[name]
    except KeyError:
        raise NotFound(f"no job named {name}", job=name) from None

"""Scheduled jobs of the fund's back office: plain functions `run(tx, business_date) -> counts`, a
registry with their cadence, and a runner that catches up missed dates oldest first (docs/operations.md)."""

from loanfund.jobs.framework import DAILY, DAILY_AT_CLOSE, MONTH_END, Cadence, Job, Summary
from loanfund.jobs.registry import JOBS, get
from loanfund.jobs.runner import RunResult, catch_up, pending_dates, refuse_undue, run_job

__all__ = [
    "DAILY",
    "DAILY_AT_CLOSE",
    "JOBS",
    "MONTH_END",
    "Cadence",
    "Job",
    "RunResult",
    "Summary",
    "catch_up",
    "get",
    "pending_dates",
    "refuse_undue",
    "run_job",
]

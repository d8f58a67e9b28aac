"""Cadences and the scheduler's owed dates: no date skipped, none twice, none not yet due."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from loanfund import jobs
from loanfund.jobs import DAILY, DAILY_AT_CLOSE, MONTH_END, Cadence

CADENCES = st.sampled_from([DAILY, DAILY_AT_CLOSE, MONTH_END])
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(CADENCES, DAYS, st.integers(min_value=0, max_value=400))
def test_dates_are_the_cadence_in_order_without_gaps(cadence: Cadence, first: date, span: int) -> None:
    last = first + timedelta(days=span)
    got = cadence.dates(first, last)
    assert all(cadence.is_date(d) and first <= d <= last for d in got)
    assert all(cadence.next_after(a) == b for a, b in itertools.pairwise(got))
    every = [first + timedelta(days=n) for n in range(span + 1)]
    assert got == [d for d in every if cadence.is_date(d)]


@given(CADENCES, DAYS)
def test_latest_due_and_previous(cadence: Cadence, today: date) -> None:
    latest = cadence.latest_due(today)
    assert cadence.is_date(latest) and latest <= today - timedelta(days=cadence.lag_days)
    assert cadence.next_after(latest) > today - timedelta(days=cadence.lag_days)
    assert cadence.next_after(cadence.previous(latest)) == latest


@given(st.sampled_from(jobs.JOBS), DAYS, st.integers(min_value=0, max_value=120))
def test_owed_dates_continue_from_the_last_completed(job: jobs.Job, today: date, behind: int) -> None:
    latest = job.cadence.latest_due(today)
    last = latest
    for _ in range(behind):
        last = job.cadence.previous(last)
    owed = jobs.pending_dates(job, last, today)
    assert len(owed) == behind
    if owed:
        assert owed[0] == job.cadence.next_after(last) and owed[-1] == latest

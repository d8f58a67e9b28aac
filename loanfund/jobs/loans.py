"""Loans falling overdue, ageing through delinquency buckets, and nearing maturity.

A loan's `overdue` status is derived where it is read (loans.queries: an active loan past maturity or
with a reported missed instalment); these jobs announce the moments that matter, once each:

- `loan_overdue`: the first day a loan is overdue (keyed by that day, so a loan cured and overdue again
  is announced again);
- `loan_delinquency`: the day it enters the 31–60, 61–90 or 90+ days-past-due bucket;
- `loan_maturity_approaching`: 30 days (MATURITY_NOTICE_DAYS) before maturity, or at disbursement or
  extension if that is already closer (keyed by the maturity date, so an extension warns again).

All set-based: one INSERT … SELECT per kind records the new alerts, one more writes their events and
audit records (see alerts.py).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from loanfund.db.tables import job_alerts, loan_overdue_spells, loans
from loanfund.jobs import alerts
from loanfund.jobs.framework import Summary
from loanfund.jobs.sql import date_text, next_day, yuan_text
from loanfund.loans import delinquency
from loanfund.loans.queries import overdue_on
from loanfund.money import CURRENCY
from loanfund.uow import Tx

MATURITY_NOTICE_DAYS = 30
# (first day past due, label) of each bucket after the first, 1–30, which `loan_overdue` announces.
# The buckets, as loanfund.loans.delinquency defines them: 1–30, 31–60, 61–90, 90+.
BUCKETS = tuple(zip(delinquency.BUCKET_STARTS[2:], delinquency.BUCKETS[2:], strict=True))

# The first day the loan is overdue: a reported missed instalment, or the day after maturity.
OVERDUE_START = sa.case(
    (
        sa.and_(loans.c.overdue_since.is_not(None), loans.c.overdue_since <= loans.c.maturity_on),
        loans.c.overdue_since,
    ),
    else_=next_day(loans.c.maturity_on),
)

# The first day of the loan's overdue episode, which `loan_overdue` is announced for once: its open
# spell's (kept while missed instalments are paid one by one, moved back only when an older one is
# reported), or the first overdue day when that is earlier (maturity) or there is no spell. The loan's
# own start moves forward as its oldest instalments are paid, which is not a new episode.
_OPEN_SPELL_START = (
    sa.select(sa.func.min(loan_overdue_spells.c.overdue_since))
    .where(loan_overdue_spells.c.loan_id == loans.c.id, loan_overdue_spells.c.cured_on.is_(None))
    .scalar_subquery()
)
EPISODE_START = sa.case((_OPEN_SPELL_START < OVERDUE_START, _OPEN_SPELL_START), else_=OVERDUE_START)


def _day(value: date) -> Any:
    return sa.literal(value, sa.Date())


def _loan_subjects(where: sa.ColumnElement[bool], key: Any) -> sa.Select[Any]:
    return sa.select(
        loans.c.id.label("subject_id"),
        key.label("key"),
        loans.c.fund_code,
        loans.c.bank_code,
        loans.c.region_code,
    ).where(where)


def _loan_data(day: date, **extra: Any) -> dict[str, Any]:
    return {
        "loan_id": loans.c.id,
        "loan_number": loans.c.loan_number,
        "fund_code": loans.c.fund_code,
        "bank_code": loans.c.bank_code,
        "currency": CURRENCY,
        "outstanding_principal": yuan_text(loans.c.outstanding_fen),
        "maturity_on": date_text(loans.c.maturity_on),
        "as_of": day.isoformat(),
        **extra,
    }


async def _publish_for_loans(
    tx: Tx, kind: str, token: str, *, event_type: str, action: str, data: dict[str, Any]
) -> int:
    return await alerts.publish(
        tx,
        source=job_alerts.join(loans, loans.c.id == job_alerts.c.subject_id),
        where=sa.and_(job_alerts.c.kind == kind, job_alerts.c.run_token == token),
        event_type=event_type,
        action=action,
        entity_type="loan",
        entity_id=loans.c.id,
        data=data,
    )


async def overdue_loans(tx: Tx, business_date: date) -> Summary:
    """Announce loans that fell overdue and loans that entered an older delinquency bucket by the date;
    count the overdue loans per bucket."""
    day = business_date
    token = uuid.uuid4().hex
    start_text = date_text(OVERDUE_START)
    newly = await alerts.raise_new(
        tx, "loan_overdue", _loan_subjects(overdue_on(day), date_text(EPISODE_START)), on=day, token=token
    )
    await _publish_for_loans(
        tx,
        "loan_overdue",
        token,
        event_type="loan_overdue",
        action="loan.overdue",
        data=_loan_data(day, overdue_since=job_alerts.c.key),
    )
    summary: Summary = {"newly_overdue": newly}
    # Only the bucket a loan is in on the date: a loan found 100 days late enters 90+, not all three.
    limits = [first for first, _ in BUCKETS[1:]] + [None]
    for (first, label), next_first in zip(BUCKETS, limits, strict=True):
        in_bucket = sa.and_(overdue_on(day), _day(day - timedelta(days=first - 1)) >= OVERDUE_START)
        if next_first is not None:
            in_bucket = sa.and_(in_bucket, _day(day - timedelta(days=next_first - 1)) < OVERDUE_START)
        kind = "loan_delinquency"
        summary[f"entered_{label}"] = await alerts.raise_new(
            tx,
            kind,
            _loan_subjects(in_bucket, start_text + sa.literal(":" + label, sa.String())),
            on=day,
            token=token,
        )
    await _publish_for_loans(
        tx,
        "loan_delinquency",
        token,
        event_type="loan_delinquency",
        action="loan.delinquency_bucket",
        data=_loan_data(day, bucket_key=job_alerts.c.key),
    )
    summary.update(await bucket_counts(tx, day))
    return summary


def bucket_of(day: date) -> Any:
    """The delinquency bucket of an overdue loan on `day`, as a SQL expression."""
    whens = [
        (_day(day - timedelta(days=first - 1)) >= OVERDUE_START, label) for first, label in reversed(BUCKETS)
    ]
    return sa.case(*whens, else_="1-30")


async def bucket_counts(tx: Tx, day: date) -> Summary:
    bucket = bucket_of(day).label("bucket")
    query = sa.select(bucket, sa.func.count().label("n")).where(overdue_on(day)).group_by(bucket)
    counts = {f"bucket_{label}": 0 for label in ["1-30", *(label for _, label in BUCKETS)]}
    for row in await tx.conn.execute(query):
        counts[f"bucket_{row.bucket}"] = int(row.n)
    counts["overdue"] = sum(counts.values())
    return counts


async def maturity_warnings(tx: Tx, business_date: date) -> Summary:
    """Warn of active loans, not overdue, that mature within MATURITY_NOTICE_DAYS of the date."""
    day = business_date
    token = uuid.uuid4().hex
    soon = sa.and_(
        loans.c.status == "active",
        loans.c.maturity_on >= _day(day),
        loans.c.maturity_on <= _day(day + timedelta(days=MATURITY_NOTICE_DAYS)),
        sa.or_(loans.c.overdue_since.is_(None), loans.c.overdue_since > _day(day)),
    )
    warned = await alerts.raise_new(
        tx, "loan_maturity", _loan_subjects(soon, date_text(loans.c.maturity_on)), on=day, token=token
    )
    await _publish_for_loans(
        tx,
        "loan_maturity",
        token,
        event_type="loan_maturity_approaching",
        action="loan.maturity_approaching",
        data=_loan_data(day),
    )
    return {"warned": warned}

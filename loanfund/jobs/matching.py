"""Local matching: requirements that passed their due date short, and a warning 30 days before.

The status (met, pending, overdue) is derived as of any date by funds.service.matching; this job marks
the change in `job_alerts` and announces it once: `matching_overdue` the day after the due date with a
shortfall (a flag, closed with `matching_met` when a late match covers it), and
`matching_shortfall_warning` once from 30 days before the due date while a shortfall remains.
Every fund's allocations are judged at once, by the funds library (two statements).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from loanfund.db.tables import funds
from loanfund.funds.service import AllocationMatching, matching_in_scope
from loanfund.jobs import alerts
from loanfund.jobs.framework import Summary
from loanfund.money import CURRENCY, format_fen
from loanfund.uow import Tx

WARNING_DAYS = 30


def _data(fund_code: str, item: AllocationMatching, day: date) -> dict[str, str]:
    return {
        "fund_code": fund_code,
        "allocation_id": item.allocation_id,
        "reference": item.reference,
        "currency": CURRENCY,
        "required": format_fen(item.required_fen),
        "matched": format_fen(item.matched_fen),
        "shortfall": format_fen(item.shortfall_fen),
        "due_on": item.due_on.isoformat(),
        "as_of": day.isoformat(),
    }


async def matching_deadlines(tx: Tx, business_date: date) -> Summary:
    day = business_date
    token = uuid.uuid4().hex
    counts = {"overdue": 0, "newly_overdue": 0, "met_late": 0, "warned": 0}
    open_overdue = await alerts.open_flags(tx, "matching_overdue")
    regions = {
        row.code: row.region_code
        for row in await tx.conn.execute(sa.select(funds.c.code, funds.c.region_code))
    }

    def announce(event: str, action: str, fund_code: str, item: AllocationMatching) -> None:
        data = _data(fund_code, item, day)
        region_code = regions[fund_code]
        tx.emit(event, fund_code=fund_code, region_code=region_code, bank_code=None, data=data)
        tx.audit(action, "allocation", item.allocation_id, data, region_code=region_code)

    for fund_code, item in await matching_in_scope(tx.conn, day):
        where = {"fund_code": fund_code, "bank_code": None, "region_code": regions[fund_code]}
        if item.status == "overdue":
            counts["overdue"] += 1
            flagged = await alerts.raise_flag(
                tx, "matching_overdue", item.allocation_id, on=day, token=token, **where
            )
            if flagged:
                counts["newly_overdue"] += 1
                announce("matching_overdue", "allocation.matching_overdue", fund_code, item)
        elif item.status == "met" and item.allocation_id in open_overdue:
            if await alerts.clear_flag(tx, "matching_overdue", item.allocation_id, on=day):
                counts["met_late"] += 1
                announce("matching_met", "allocation.matching_met", fund_code, item)
        elif item.status == "pending" and day >= item.due_on - timedelta(days=WARNING_DAYS):
            key = item.due_on.isoformat()
            if await alerts.raise_once(
                tx, "matching_warning", item.allocation_id, key, on=day, token=token, **where
            ):
                counts["warned"] += 1
                announce("matching_shortfall_warning", "allocation.matching_warning", fund_code, item)
    return counts

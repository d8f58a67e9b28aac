"""Local matching: requirements that passed their due date short, and a warning 30 days before.

The status (met, pending, overdue) is derived as of any date by funds.service.matching; this job marks
the change in `job_alerts` and announces it once: `matching_overdue` the day after the due date with a
shortfall (a flag, closed with `matching_met` when a late match covers it), and
`matching_shortfall_warning` once from 30 days before the due date while a shortfall remains.
Allocations are few (a handful per fund and year): they are judged one by one with the funds library.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import sqlalchemy as sa

from loanfund.db.tables import funds
from loanfund.funds.service import AllocationMatching, matching
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
    for fund in (
        await tx.conn.execute(sa.select(funds.c.code, funds.c.region_code).order_by(funds.c.code))
    ).all():
        for item in await matching(tx.conn, fund.code, day):
            where = {"fund_code": fund.code, "bank_code": None, "region_code": fund.region_code}
            data = _data(fund.code, item, day)
            if item.status == "overdue":
                counts["overdue"] += 1
                if await alerts.raise_flag(
                    tx, "matching_overdue", item.allocation_id, on=day, token=token, **where
                ):
                    counts["newly_overdue"] += 1
                    tx.emit(
                        "matching_overdue",
                        fund_code=fund.code,
                        region_code=fund.region_code,
                        bank_code=None,
                        data=data,
                    )
                    tx.audit(
                        "allocation.matching_overdue",
                        "allocation",
                        item.allocation_id,
                        data,
                        region_code=fund.region_code,
                    )
            elif item.status == "met" and item.allocation_id in open_overdue:
                if await alerts.clear_flag(tx, "matching_overdue", item.allocation_id, on=day):
                    counts["met_late"] += 1
                    tx.emit(
                        "matching_met",
                        fund_code=fund.code,
                        region_code=fund.region_code,
                        bank_code=None,
                        data=data,
                    )
                    tx.audit(
                        "allocation.matching_met",
                        "allocation",
                        item.allocation_id,
                        data,
                        region_code=fund.region_code,
                    )
            elif item.status == "pending" and day >= item.due_on - timedelta(days=WARNING_DAYS):
                raised = await alerts.raise_once(
                    tx,
                    "matching_warning",
                    item.allocation_id,
                    item.due_on.isoformat(),
                    on=day,
                    token=token,
                    **where,
                )
                if raised:
                    counts["warned"] += 1
                    tx.emit(
                        "matching_shortfall_warning",
                        fund_code=fund.code,
                        region_code=fund.region_code,
                        bank_code=None,
                        data=data,
                    )
                    tx.audit(
                        "allocation.matching_warning",
                        "allocation",
                        item.allocation_id,
                        data,
                        region_code=fund.region_code,
                    )
    return counts

"""Daily capacity history of every agreement, and the alert for banks above 90% of their capacity.

A snapshot for business date D holds the figures GET /agreements/{id} shows on D once D is over: the
ledger as of D (the live balance less the postings dated after D) and reservations counted as lapsed
from the day after their last day, as capacity.py reads them. So it runs once D has closed, and a
catch-up run for an older date gives that date's figures, not today's.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from loanfund.agreements.capacity import capacity_from_figures
from loanfund.clock import utcnow
from loanfund.db.tables import (
    agreements,
    capacity_snapshots,
    funds,
    guarantees,
    journal_entries,
    ledger_accounts,
    postings,
)
from loanfund.jobs import alerts
from loanfund.jobs.framework import Summary
from loanfund.money import CURRENCY, format_fen, percent_of
from loanfund.uow import Tx

ALERT_USED_PCT = 90  # of capacity, used by outstanding and reserved together
_PREFIXES = {"deposit:": "deposit", "memo:outstanding:": "outstanding", "memo:reserved:": "reserved"}


async def pair_figures_as_of(tx: Tx, day: date) -> dict[tuple[str, str], dict[str, int]]:
    """deposit, outstanding and reserved of every fund × bank pair on `day`, in two statements."""
    day_param = sa.literal(day, sa.Date())
    after = (
        sa.select(postings.c.account_id, sa.func.sum(postings.c.amount_fen).label("fen"))
        .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
        .where(journal_entries.c.entry_date > day_param)
        .group_by(postings.c.account_id)
        .subquery()
    )
    balances = (
        sa.select(
            ledger_accounts.c.fund_code,
            ledger_accounts.c.name,
            (ledger_accounts.c.balance_fen - sa.func.coalesce(after.c.fen, 0)).label("fen"),
        )
        .outerjoin(after, after.c.account_id == ledger_accounts.c.id)
        .where(sa.or_(*(ledger_accounts.c.name.startswith(prefix) for prefix in _PREFIXES)))
    )
    figures: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"deposit": 0, "outstanding": 0, "reserved": 0}
    )
    for row in await tx.conn.execute(balances):
        for prefix, figure in _PREFIXES.items():
            if row.name.startswith(prefix):
                figures[(row.fund_code, row.name[len(prefix) :])][figure] = int(row.fen)
    # Past their last day by `day` but not yet lapsed in the ledger as of `day`: lapsed all the same.
    expired = (
        sa.select(
            guarantees.c.fund_code, guarantees.c.bank_code, sa.func.sum(guarantees.c.amount_fen).label("fen")
        )
        .where(
            guarantees.c.expires_on < day_param,
            sa.or_(
                guarantees.c.status == "reserved",
                sa.and_(guarantees.c.status == "lapsed", guarantees.c.settled_on > day_param),
            ),
        )
        .group_by(guarantees.c.fund_code, guarantees.c.bank_code)
    )
    for row in await tx.conn.execute(expired):
        figures[(row.fund_code, row.bank_code)]["reserved"] -= int(row.fen)
    return dict(figures)


def _in_force(day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        agreements.c.effective_from <= day,
        sa.or_(agreements.c.effective_to.is_(None), agreements.c.effective_to >= day),
    )


async def capacity_snapshots_job(tx: Tx, business_date: date) -> Summary:
    """One row per agreement in force on the date; a date already snapshotted is left as it is."""
    day = business_date
    taken = set(
        (
            await tx.conn.scalars(
                sa.select(capacity_snapshots.c.agreement_id).where(capacity_snapshots.c.business_date == day)
            )
        ).all()
    )
    in_force = (await tx.conn.execute(sa.select(agreements).where(_in_force(day)))).all()
    if not in_force:
        return {"agreements": 0, "snapshots": 0}
    figures = await pair_figures_as_of(tx, day)
    now = utcnow()
    rows = []
    for agreement in in_force:
        if agreement.id in taken:
            continue
        pair = figures.get(
            (agreement.fund_code, agreement.bank_code), {"deposit": 0, "outstanding": 0, "reserved": 0}
        )
        cap = capacity_from_figures(agreement, pair["deposit"], pair["outstanding"], pair["reserved"])
        rows.append(
            {
                "agreement_id": agreement.id,
                "business_date": day,
                "fund_code": agreement.fund_code,
                "bank_code": agreement.bank_code,
                "leverage_multiple": cap.leverage_multiple,
                "deposit_fen": cap.deposit_fen,
                "capacity_fen": cap.capacity_fen,
                "outstanding_fen": cap.outstanding_fen,
                "reserved_fen": cap.reserved_fen,
                "headroom_fen": cap.headroom_fen,
                "leverage_ratio": cap.leverage_ratio,
                "created_at": now,
            }
        )
    if rows:
        await tx.conn.execute(capacity_snapshots.insert(), rows)
    return {"agreements": len(in_force), "snapshots": len(rows)}


def used_pct(used_fen: int, capacity_fen: int) -> Decimal | None:
    if capacity_fen <= 0:
        return None
    return percent_of(used_fen, capacity_fen, places=2)


def above_alert_level(used_fen: int, capacity_fen: int) -> bool:
    """More than ALERT_USED_PCT of capacity used, in integers (a bank with no capacity but loans too)."""
    return used_fen * 100 > capacity_fen * ALERT_USED_PCT if capacity_fen > 0 else used_fen > 0


def _alert_data(row: Any, day: date) -> dict[str, Any]:
    used = row.outstanding_fen + row.reserved_fen
    pct = used_pct(used, row.capacity_fen)
    return {
        "agreement_id": row.agreement_id,
        "fund_code": row.fund_code,
        "bank_code": row.bank_code,
        "currency": CURRENCY,
        "capacity": format_fen(row.capacity_fen),
        "outstanding": format_fen(row.outstanding_fen),
        "reserved": format_fen(row.reserved_fen),
        "headroom": format_fen(row.headroom_fen),
        "used_pct": None if pct is None else format(pct, "f"),
        "alert_pct": str(ALERT_USED_PCT),
        "as_of": day.isoformat(),
    }


async def capacity_alerts(tx: Tx, business_date: date) -> Summary:
    """From the date's snapshots: raise `capacity_alert` when a bank passes 90% of its capacity, and
    `capacity_alert_cleared` when it is back at or under it (once each, as a flag)."""
    day = business_date
    token = uuid.uuid4().hex
    query = (
        sa.select(capacity_snapshots, funds.c.region_code)
        .join(funds, funds.c.code == capacity_snapshots.c.fund_code)
        .where(capacity_snapshots.c.business_date == day)
        .order_by(capacity_snapshots.c.agreement_id)
    )
    open_flags = await alerts.open_flags(tx, "capacity_above_90")
    counts = {"above": 0, "raised": 0, "cleared": 0}
    for row in (await tx.conn.execute(query)).all():
        where = {"fund_code": row.fund_code, "bank_code": row.bank_code, "region_code": row.region_code}
        if above_alert_level(row.outstanding_fen + row.reserved_fen, row.capacity_fen):
            counts["above"] += 1
            if await alerts.raise_flag(
                tx, "capacity_above_90", row.agreement_id, on=day, token=token, **where
            ):
                counts["raised"] += 1
                data = _alert_data(row, day)
                tx.emit("capacity_alert", data=data, **where)
                tx.audit(
                    "agreement.capacity_alert",
                    "agreement",
                    row.agreement_id,
                    data,
                    region_code=row.region_code,
                )
        elif row.agreement_id in open_flags and await alerts.clear_flag(
            tx, "capacity_above_90", row.agreement_id, on=day
        ):
            counts["cleared"] += 1
            data = _alert_data(row, day)
            tx.emit("capacity_alert_cleared", data=data, **where)
            tx.audit(
                "agreement.capacity_alert_cleared",
                "agreement",
                row.agreement_id,
                data,
                region_code=row.region_code,
            )
    return counts

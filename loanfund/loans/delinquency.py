"""Delinquency: days past due and the buckets a loan moves through, as of any date.

A loan is in arrears while it has a spell open: from the first overdue day of a missed instalment
the bank reported until that instalment is paid in full (its principal and its interest), and from
the day after maturity until the loan is closed. Days past due on day t count from the earliest
start among the spells open on t, that day being day 1 (so a loan maturing on the 10th is 1 day past
due on the 11th). A loan no longer outstanding (repaid, compensated, written off) is not in arrears.

Buckets: current (0), 1–30, 31–60, 61–90, 90+. A loan's history is the list of days on which its
bucket changed, rebuilt from the spells, so it can be asked for as of any date.

Missed instalments are recorded with what was missed (`loan_missed_instalments`); a repayment pays
the oldest missed instalments first, principal against principal and interest against interest, and
cures an instalment only when both are paid (`apply_repayment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import compensation_claims, loan_missed_instalments
from loanfund.ids import new_id

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
BUCKET_STARTS = (0, 1, 31, 61, 91)  # the first days past due of each bucket


def bucket_of(days_past_due: int) -> str:
    for name, first in zip(reversed(BUCKETS), reversed(BUCKET_STARTS), strict=True):
        if days_past_due >= first:
            return name
    return BUCKETS[0]


@dataclass(frozen=True)
class Spell:
    start: date  # first overdue day
    end: date | None  # first day no longer overdue (exclusive); None while open


@dataclass(frozen=True)
class LoanArrears:
    """What days past due are computed from."""

    disbursed_on: date
    spells: tuple[Spell, ...]
    closed_on: date | None  # repaid in full, or compensated: no longer outstanding from that day


def days_past_due(arrears: LoanArrears, on: date) -> int:
    if on < arrears.disbursed_on or (arrears.closed_on is not None and on >= arrears.closed_on):
        return 0
    starts = [s.start for s in arrears.spells if s.start <= on and (s.end is None or on < s.end)]
    return (on - min(starts)).days + 1 if starts else 0


@dataclass(frozen=True)
class Move:
    on: date
    bucket: str
    days_past_due: int


def history(arrears: LoanArrears, as_of: date) -> list[Move]:
    """The days on which the loan's bucket changed, up to `as_of` (the first move is `current` on the
    disbursement day)."""
    days = {arrears.disbursed_on}
    for spell in arrears.spells:
        days.add(spell.start)
        days.update(spell.start + timedelta(days=first - 1) for first in BUCKET_STARTS[2:])
        if spell.end is not None:
            days.add(spell.end)
    if arrears.closed_on is not None:
        days.add(arrears.closed_on)
    moves: list[Move] = []
    for day in sorted(d for d in days if arrears.disbursed_on <= d <= as_of):
        dpd = days_past_due(arrears, day)
        bucket = bucket_of(dpd)
        if not moves or moves[-1].bucket != bucket:
            moves.append(Move(day, bucket, dpd))
    return moves


# ---- reading and writing -----------------------------------------------------------------------


@dataclass(frozen=True)
class MissedInstalment:
    id: str
    loan_id: str
    overdue_since: date
    principal_fen: int
    interest_fen: int
    paid_principal_fen: int
    paid_interest_fen: int
    reported_on: date
    cured_on: date | None


def instalment_from_row(row: Any) -> MissedInstalment:
    return MissedInstalment(**{name: getattr(row, name) for name in MissedInstalment.__dataclass_fields__})


async def missed_instalments(
    conn: AsyncConnection, loan_ids: Sequence[str], *, for_update: bool = False
) -> dict[str, list[MissedInstalment]]:
    if not loan_ids:
        return {}
    query = (
        sa.select(loan_missed_instalments)
        .where(loan_missed_instalments.c.loan_id.in_(list(loan_ids)))
        .order_by(loan_missed_instalments.c.overdue_since, loan_missed_instalments.c.id)
    )
    if for_update:
        query = query.with_for_update()
    found: dict[str, list[MissedInstalment]] = {loan_id: [] for loan_id in loan_ids}
    for row in await conn.execute(query):
        found[row.loan_id].append(instalment_from_row(row))
    return found


async def compensated_on(conn: AsyncConnection, loan_ids: Sequence[str]) -> dict[str, date]:
    if not loan_ids:
        return {}
    query = sa.select(compensation_claims.c.loan_id, compensation_claims.c.decided_on).where(
        compensation_claims.c.loan_id.in_(list(loan_ids)), compensation_claims.c.status == "paid"
    )
    return {row.loan_id: row.decided_on for row in await conn.execute(query)}


def arrears_of(loan: Any, instalments: Sequence[MissedInstalment], compensated: date | None) -> LoanArrears:
    """`loan`: a loan (`loanfund.loans.queries.Loan` or a row of `loans`)."""
    spells = [Spell(i.overdue_since, i.cured_on) for i in instalments]
    overdue_since = loan.overdue_since
    if not instalments and overdue_since is not None:
        # Reported before instalments were recorded one by one: open until the loan's flag clears.
        spells.append(Spell(overdue_since, None))
    closed_on = loan.repaid_on if loan.repaid_on is not None else compensated
    spells.append(Spell(loan.maturity_on + timedelta(days=1), closed_on))
    return LoanArrears(loan.disbursed_on, tuple(spells), closed_on)


async def loan_arrears(conn: AsyncConnection, loan: Any) -> LoanArrears:
    instalments = (await missed_instalments(conn, [loan.id]))[loan.id]
    compensated = (await compensated_on(conn, [loan.id])).get(loan.id)
    return arrears_of(loan, instalments, compensated)


async def days_past_due_on(conn: AsyncConnection, loan: Any, on: date) -> int:
    return days_past_due(await loan_arrears(conn, loan), on)


async def record_missed(
    conn: AsyncConnection,
    *,
    loan_id: str,
    overdue_since: date,
    principal_fen: int,
    interest_fen: int,
    reported_on: date,
    client_id: str | None,
) -> MissedInstalment:
    instalment = MissedInstalment(
        id=new_id("mis"),
        loan_id=loan_id,
        overdue_since=overdue_since,
        principal_fen=principal_fen,
        interest_fen=interest_fen,
        paid_principal_fen=0,
        paid_interest_fen=0,
        reported_on=reported_on,
        cured_on=None,
    )
    await conn.execute(
        loan_missed_instalments.insert().values(
            created_at=utcnow(), created_by=client_id, **instalment.__dict__
        )
    )
    return instalment


@dataclass(frozen=True)
class ArrearsAfter:
    overdue_since: date | None  # the oldest missed instalment not yet cured
    overdue_principal_fen: int  # principal of the missed instalments not yet paid


def still_missed(instalments: Sequence[MissedInstalment]) -> ArrearsAfter:
    open_ = [i for i in instalments if i.cured_on is None]
    return ArrearsAfter(
        min((i.overdue_since for i in open_), default=None),
        sum(i.principal_fen - i.paid_principal_fen for i in open_),
    )


async def apply_repayment(
    conn: AsyncConnection, loan_id: str, *, principal_fen: int, interest_fen: int, paid_on: date
) -> ArrearsAfter | None:
    """Pay the loan's missed instalments, oldest first, with a repayment; None if it has none open.

    The caller holds the loan's row lock. Principal pays missed principal and interest pays missed
    interest; an instalment is cured on the day both are paid in full.
    """
    query = (
        sa.select(loan_missed_instalments)
        .where(loan_missed_instalments.c.loan_id == loan_id, loan_missed_instalments.c.cured_on.is_(None))
        .order_by(loan_missed_instalments.c.overdue_since, loan_missed_instalments.c.id)
    )
    open_ = [instalment_from_row(row) for row in await conn.execute(query)]
    if not open_:
        return None
    principal_left, interest_left = principal_fen, interest_fen
    after: list[MissedInstalment] = []
    for item in open_:
        pay_principal = min(principal_left, item.principal_fen - item.paid_principal_fen)
        pay_interest = min(interest_left, item.interest_fen - item.paid_interest_fen)
        principal_left -= pay_principal
        interest_left -= pay_interest
        paid_principal = item.paid_principal_fen + pay_principal
        paid_interest = item.paid_interest_fen + pay_interest
        cured = (
            paid_on if paid_principal == item.principal_fen and paid_interest == item.interest_fen else None
        )
        if pay_principal or pay_interest or cured:
            await conn.execute(
                loan_missed_instalments.update()
                .where(loan_missed_instalments.c.id == item.id)
                .values(paid_principal_fen=paid_principal, paid_interest_fen=paid_interest, cured_on=cured)
            )
        after.append(
            MissedInstalment(
                item.id,
                item.loan_id,
                item.overdue_since,
                item.principal_fen,
                item.interest_fen,
                paid_principal,
                paid_interest,
                item.reported_on,
                cured,
            )
        )
    return still_missed(after)

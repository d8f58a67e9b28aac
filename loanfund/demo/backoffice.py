"""The fund office's back-office work on the demo's last day, after the lending history: interest
subsidy claims for the last three quarters, and compensation for the loans that defaulted.

Subsidies: every bank files its claim for each of the last three closed quarters; the fund manager
approves the two older ones and pays the oldest from the subsidy budget. 牡丹江 (MDJ) received too small a
subsidy budget, so its payment is refused and its claim stays approved, waiting for money.

Defaults: the banks claim compensation for the first six loans past their agreement's claim
threshold (the near-limit bank aside, so it stays the picture of a bank at its limit); the fund
manager pays four, rejects one and has one still to decide. Paying them pushes a bank with few
guarantees released in the year over its compensation-rate threshold, so its agreement is suspended
automatically. One compensated loan sees a partial recovery, another is written off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from loanfund.claims import service as claims
from loanfund.db.tables import agreements, loans
from loanfund.demo.province import NEAR_LIMIT
from loanfund.demo.replay import Replay
from loanfund.errors import LoanfundError
from loanfund.loans.queries import days_past_due
from loanfund.subsidies import service as subsidies
from loanfund.subsidies.periods import parse_period


def last_closed_quarters(today: date, count: int = 3) -> list[str]:
    """The `count` quarters that ended before `today`, oldest first (`2026Q1`)."""
    year, quarter = today.year, (today.month - 1) // 3 + 1
    found = []
    for _ in range(count):
        quarter -= 1
        if quarter == 0:
            year, quarter = year - 1, 4
        found.append(f"{year}Q{quarter}")
    return list(reversed(found))


async def close_the_books(replay: Replay, today: date) -> dict[str, object]:
    outcome: Counter[str] = Counter()
    await _subsidy_claims(replay, today, outcome)
    await _compensation(replay, today, outcome)
    return dict(sorted(outcome.items()))


async def _subsidy_claims(replay: Replay, today: date, outcome: Counter[str]) -> None:
    manager = replay.manager
    for fund_code, fund in replay.funds.items():
        for bank in sorted(fund.agreements):
            filed: list[str] = []
            for period in last_closed_quarters(today):
                if parse_period(period).end > today:
                    continue
                try:
                    async with replay.step(replay.actors[f"bank:{bank}"], today) as tx:
                        filed.append(
                            await subsidies.file_claim(tx, fund_code=fund_code, bank_code=bank, period=period)
                        )
                    outcome["subsidy_claims_filed"] += 1
                except LoanfundError as refusal:
                    outcome[f"subsidy_claim_refused:{refusal.code}"] += 1
            for claim_id in filed[:2]:
                async with replay.step(manager, today) as tx:
                    await subsidies.review_claim(tx, claim_id, [])
                outcome["subsidy_claims_approved"] += 1
            for claim_id in filed[:1]:
                try:
                    async with replay.step(manager, today) as tx:
                        await subsidies.pay_claim(tx, claim_id)
                    outcome["subsidy_claims_paid"] += 1
                except LoanfundError as refusal:  # MDJ's budget runs short: the claim waits, approved
                    outcome[f"subsidy_payment_refused:{refusal.code}"] += 1


async def _compensation(replay: Replay, today: date, outcome: Counter[str]) -> None:
    rows = (
        await replay.conn.execute(
            sa.select(
                loans.c.id,
                loans.c.fund_code,
                loans.c.bank_code,
                loans.c.status,
                loans.c.overdue_since,
                loans.c.maturity_on,
                sa.select(agreements.c.claim_after_days)
                .where(
                    agreements.c.fund_code == loans.c.fund_code, agreements.c.bank_code == loans.c.bank_code
                )
                .order_by(agreements.c.effective_from.desc())
                .limit(1)
                .scalar_subquery()
                .label("claim_after_days"),
            )
            .where(loans.c.status == "active")
            .order_by(loans.c.id)
        )
    ).all()
    due = [
        row
        for row in rows
        if row.claim_after_days is not None
        and (row.fund_code, row.bank_code) != NEAR_LIMIT
        and days_past_due(row.status, row.overdue_since, row.maturity_on, today) >= row.claim_after_days
    ][:6]
    paid: list[str] = []
    for index, row in enumerate(due):
        try:
            async with replay.step(replay.actors[f"bank:{row.bank_code}"], today) as tx:
                claim = await claims.file_claim(tx, loan_id=row.id, claimed_on=today)
            outcome["compensation_claims_filed"] += 1
            if index == 5:  # waits in the manager's queue
                continue
            async with replay.step(replay.manager, today) as tx:
                if index == 4:
                    await claims.reject_claim(tx, claim.id, reason="借款人已与银行签订还款协议，暂不代偿")
                    outcome["compensation_claims_rejected"] += 1
                    continue
                await claims.approve_claim(tx, claim.id)
            outcome["compensation_claims_paid"] += 1
            paid.append(row.id)
        except LoanfundError as refusal:
            outcome[f"compensation_refused:{refusal.code}"] += 1
    if paid:
        first = paid[0]
        recovered = await _fund_paid_share(replay, first)
        async with replay.step(replay.actors[f"bank:{_bank_of(rows, first)}"], today) as tx:
            await claims.record_recovery(tx, first, amount_fen=max(100, recovered // 4), recovered_on=today)
        outcome["recoveries"] += 1
    if len(paid) > 1:
        async with replay.step(replay.manager, today) as tx:
            await claims.write_off(tx, paid[-1], reason="借款人下落不明，追偿无果，经基金管理委员会批准核销")
        outcome["write_offs"] += 1


def _bank_of(rows: Sequence[Any], loan_id: str) -> str:
    return str(next(row.bank_code for row in rows if row.id == loan_id))


async def _fund_paid_share(replay: Replay, loan_id: str) -> int:
    from loanfund.db.tables import compensation_claims

    amount = await replay.conn.scalar(
        sa.select(compensation_claims.c.amount_fen).where(
            compensation_claims.c.loan_id == loan_id, compensation_claims.c.status == "paid"
        )
    )
    return int(amount or 0)

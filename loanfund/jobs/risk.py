"""Compensation rates against their thresholds, and the subsidy figures managers should expect.

`compensation_rates` (daily, at the close): each agreement's trailing-12-month compensation rate
(loanfund.claims.risk) against its threshold, and each fund's against the red flag. Paying a claim
already suspends an agreement it takes over its threshold, in the payment's transaction; this job
catches what time alone changes (a rate rises as repaid guarantees leave the window) and flags each
crossing once: `compensation_rate_alert` for an agreement (suspending it), `compensation_red_flag`
for a fund, each cleared when the rate is back under.

`subsidy_drafts` (daily at the close, acting on the days that close a claim period of the fund's
policy, a quarter by default): per fund and bank, the period's claim lines computed as a claim would
compute them (set-based on PostgreSQL, two statements per fund, compensated loans included:
loanfund.subsidies.batch), announced once as a `subsidy_draft` event so that managers know what claims
to expect. Nothing is stored but the alert.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from loanfund.claims import risk
from loanfund.db.tables import agreements, events, funds, loans
from loanfund.errors import LoanfundError
from loanfund.funds.service import fund_policy
from loanfund.jobs import alerts
from loanfund.jobs.framework import Summary
from loanfund.money import CURRENCY, format_fen, format_pct
from loanfund.subsidies import batch
from loanfund.subsidies import service as subsidies
from loanfund.subsidies.periods import Period, parse_period
from loanfund.uow import Tx


async def compensation_rates(tx: Tx, business_date: date) -> Summary:
    day = business_date
    token = uuid.uuid4().hex
    rows = (
        await tx.conn.execute(
            sa.select(agreements, funds.c.region_code)
            .join(funds, funds.c.code == agreements.c.fund_code)
            .where(
                agreements.c.effective_from <= day,
                sa.or_(agreements.c.effective_to.is_(None), agreements.c.effective_to >= day),
            )
            .order_by(agreements.c.id)
        )
    ).all()
    counts = {"agreements": len(rows), "above": 0, "suspended": 0, "red_flags": 0, "cleared": 0}
    open_agreements = await alerts.open_flags(tx, "compensation_rate_above")
    for row in rows:
        where = {"fund_code": row.fund_code, "bank_code": row.bank_code, "region_code": row.region_code}
        rate = await risk.compensation_rate(tx.conn, row.fund_code, row.bank_code, as_of=day)
        threshold = await risk.suspend_threshold_pct(tx.conn, row, day)
        facts = {**risk.rate_facts(rate), "threshold_pct": format_pct(threshold), "agreement_id": row.id}
        if rate.above(threshold):
            counts["above"] += 1
            if not await alerts.raise_flag(
                tx, "compensation_rate_above", row.id, on=day, token=token, **where
            ):
                continue
            tx.emit("compensation_rate_alert", data={**facts, **where}, **where)
            tx.audit(
                "agreement.compensation_rate_alert", "agreement", row.id, facts, region_code=row.region_code
            )
            if not row.suspended and await risk.suspend_for_rate(
                tx, agreement_id=row.id, facts=facts, **where
            ):
                counts["suspended"] += 1
        elif row.id in open_agreements and await alerts.clear_flag(
            tx, "compensation_rate_above", row.id, on=day
        ):
            counts["cleared"] += 1
    open_funds = await alerts.open_flags(tx, "compensation_red_flag")
    for fund_code, region_code in sorted({(row.fund_code, row.region_code) for row in rows}):
        where = {"fund_code": fund_code, "bank_code": None, "region_code": region_code}
        rate = await risk.compensation_rate(tx.conn, fund_code, None, as_of=day)
        facts = {**risk.rate_facts(rate), "red_flag_pct": format_pct(risk.FUND_RED_FLAG_PCT)}
        if rate.above(risk.FUND_RED_FLAG_PCT):
            if await alerts.raise_flag(tx, "compensation_red_flag", fund_code, on=day, token=token, **where):
                counts["red_flags"] += 1
                # A payment that crossed the flag today announced it already (loanfund.claims.risk).
                if not await _announced_today(tx, fund_code, day):
                    tx.emit("compensation_red_flag", data={**facts, "fund_code": fund_code}, **where)
                    tx.audit("fund.compensation_red_flag", "fund", fund_code, facts, region_code=region_code)
        elif fund_code in open_funds and await alerts.clear_flag(
            tx, "compensation_red_flag", fund_code, on=day
        ):
            counts["cleared"] += 1
    return counts


async def _announced_today(tx: Tx, fund_code: str, day: date) -> bool:
    found = await tx.conn.scalar(
        sa.select(sa.func.count())
        .select_from(events)
        .where(
            events.c.type == "compensation_red_flag",
            events.c.fund_code == fund_code,
            events.c.data["window_through"].as_string() == day.isoformat(),
        )
    )
    return bool(found)


def closing_period(day: date, kinds: tuple[str, ...]) -> Period | None:
    """The longest claim period of an accepted kind that ends with `day` (a month end), if any."""
    after = day + timedelta(days=1)
    if after.day != 1:
        return None
    texts = {
        "half": f"{day.year}H{1 if day.month <= 6 else 2}" if day.month in (6, 12) else None,
        "quarter": f"{day.year}Q{(day.month - 1) // 3 + 1}" if day.month % 3 == 0 else None,
        "month": f"{day.year}-{day.month:02d}",
    }
    for kind in ("half", "quarter", "month"):
        text = texts[kind]
        if kind in kinds and text is not None:
            return parse_period(text)
    return None


async def subsidy_drafts(tx: Tx, business_date: date) -> Summary:
    day = business_date
    token = uuid.uuid4().hex
    counts = {"funds": 0, "drafts": 0, "skipped": 0}
    fund_rows = (
        await tx.conn.execute(sa.select(funds.c.code, funds.c.region_code).order_by(funds.c.code))
    ).all()
    for fund in fund_rows:
        kinds = (await fund_policy(tx.conn, fund.code, day)).value("subsidy_period_kinds")
        period = closing_period(day, kinds if isinstance(kinds, tuple) else ("quarter",))
        if period is None:
            continue
        counts["funds"] += 1
        try:
            per_bank = await _bank_totals(tx, fund.code, period)
        except LoanfundError:  # a loan that cannot be priced yet: its claim will say so when filed
            counts["skipped"] += 1
            continue
        for bank_code, (lines, subsidy_fen, interest_fen) in sorted(per_bank.items()):
            where = {"fund_code": fund.code, "bank_code": bank_code, "region_code": fund.region_code}
            if not await alerts.raise_once(
                tx, "subsidy_draft", f"{fund.code}:{bank_code}", period.text, on=day, token=token, **where
            ):
                continue
            data: dict[str, Any] = {
                **where,
                "period": period.text,
                "lines": lines,
                "currency": CURRENCY,
                "interest": format_fen(interest_fen),
                "subsidy": format_fen(subsidy_fen),
            }
            tx.emit("subsidy_draft", data=data, **where)
            tx.audit("fund.subsidy_draft", "fund", fund.code, data, region_code=fund.region_code)
            counts["drafts"] += 1
    return counts


async def _bank_totals(tx: Tx, fund_code: str, period: Period) -> dict[str, tuple[int, int, int]]:
    """(lines, subsidy, interest) per bank of the fund's loans over the period."""
    if tx.dialect == "postgresql":
        sql, params = await batch.lines_select(tx.conn, fund_code, period)
        rows = await tx.conn.execute(
            sa.text(
                "SELECT l.bank_code, count(*) AS lines, sum(x.subsidy_fen) AS subsidy_fen,"
                " sum(x.interest_fen) AS interest_fen"
                f" FROM ({sql}) AS x JOIN loans AS l ON l.id = x.loan_id"
                " WHERE x.days > 0 GROUP BY l.bank_code"
            ),
            params,
        )
        return {row.bank_code: (int(row.lines), int(row.subsidy_fen), int(row.interest_fen)) for row in rows}
    banks = (
        await tx.conn.scalars(sa.select(loans.c.bank_code).where(loans.c.fund_code == fund_code).distinct())
    ).all()
    totals = {}
    for bank_code in banks:
        lines = await subsidies.compute_claim_lines(
            tx, fund_code=fund_code, bank_code=bank_code, period=period
        )
        if lines:
            totals[bank_code] = (
                len(lines),
                sum(line.subsidy_fen for line in lines),
                sum(line.interest_fen for line in lines),
            )
    return totals

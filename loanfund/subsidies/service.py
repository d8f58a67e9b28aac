"""Subsidy claims: a bank files one per fund and period, a manager reviews it, the fund pays it.

Every command takes the unit of work (`tx`) first and never commits. Filing computes every line with
the interest engine from the loans as stored; the lines, their spans and exclusions are kept with the
claim, so a later change to a loan never changes a claim already filed.
Paying posts `subsidy_paid:{bank}` ← `subsidy_budget` in the fund's ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import ledger
from loanfund.clock import utcnow
from loanfund.db.tables import fund_banks, funds, subsidy_claim_lines, subsidy_claims
from loanfund.errors import (
    Duplicate,
    InsufficientSubsidyBudget,
    InvalidState,
    NotFound,
    PeriodNotClosed,
    SameMakerChecker,
    ValidationFailed,
    invalid,
)
from loanfund.ids import new_id
from loanfund.ledger import accounts
from loanfund.money import Amount, format_exact_yuan, format_fen, fraction_to_pct
from loanfund.policy import PERIOD_KINDS
from loanfund.subsidies import queries
from loanfund.subsidies.interest import Line, compute_line, interest_exact
from loanfund.subsidies.periods import Period, parse_period
from loanfund.uow import Tx

__all__ = ["Decision", "compute_claim_lines", "file_claim", "line_row", "pay_claim", "review_claim"]

_REASON_MAX = 500


@dataclass(frozen=True)
class Decision:
    """A manager's figure for one line; `reason` is required when it differs from the claimed one."""

    loan_id: str
    approved_fen: int
    reason: str | None = None


async def accepted_period(tx: Tx, fund_code: str, text: str) -> Period:
    """The period, if the fund's policy in force on its last day accepts claims of its length (422)."""
    period = parse_period(text)
    policy = (await queries.fund_policies_of(tx.conn, fund_code)).on(period.end - timedelta(days=1))
    kinds = policy.value("subsidy_period_kinds")
    if not isinstance(kinds, tuple) or period.kind not in kinds:
        allowed = ", ".join(k for k in PERIOD_KINDS if isinstance(kinds, tuple) and k in kinds)
        raise invalid("period", f"this fund takes claims by {allowed}, not by {period.kind}")
    return period


async def compute_claim_lines(
    tx: Tx,
    *,
    fund_code: str,
    bank_code: str | None,
    period: Period,
    loan_ids: Sequence[str] | None = None,
) -> list[Line]:
    """The lines of every loan with interest days in the period (library use: nothing is stored)."""
    facts = await queries.loan_facts(tx.conn, fund_code, period, bank_code=bank_code, loan_ids=loan_ids)
    lines = [compute_line(f, period) for f in facts]
    return [line for line in lines if line.days > 0]


def _span_json(line: Line) -> list[dict[str, Any]]:
    contract = Fraction(line.annual_rate_pct)
    out = []
    for s in line.spans:
        out.append(
            {
                "from": s.start.isoformat(),
                "to": s.end.isoformat(),
                "days": s.days,
                "principal": format_fen(s.principal_fen),
                "loan_year": s.loan_year,
                "rule": s.terms.rule,
                "rate_pct": str(fraction_to_pct(s.terms.base_rate_pct)),
                "share": str(s.terms.share),
                "subsidy_rate_pct": str(fraction_to_pct(s.terms.rate_pct)),
                "excluded": s.excluded,
                "interest_exact": format_exact_yuan(
                    interest_exact(s.principal_fen, contract, s.days, line.day_count_basis)
                ),
                "subsidy_exact": format_exact_yuan(
                    Fraction(0)
                    if s.excluded
                    else interest_exact(s.principal_fen, s.terms.rate_pct, s.days, line.day_count_basis)
                ),
            }
        )
    return out


def line_row(claim_id: str, line: Line) -> dict[str, Any]:
    """A claim line as stored."""
    return {
        "claim_id": claim_id,
        "loan_id": line.loan_id,
        "loan_number": line.loan_number,
        "opening_fen": line.opening_principal_fen,
        "closing_fen": line.closing_principal_fen,
        "disbursed_fen": line.disbursed_fen,
        "repaid_fen": line.repaid_fen,
        "days": line.days,
        "excluded_days": line.excluded_days,
        "annual_rate_pct": line.annual_rate_pct,
        "reference_rate_pct": line.reference_rate_pct,
        "subsidy_rate_pct": fraction_to_pct(line.subsidy_rate_pct),
        "interest_fen": line.interest_fen,
        "subsidy_fen": line.subsidy_fen,
        "approved_fen": None,
        "review_reason": None,
        "policy_edition": line.policy_edition,
        "day_count_basis": line.day_count_basis,
        "exclusions": [
            {"from": e.start.isoformat(), "to": e.end.isoformat(), "days": e.days, "reason": e.reason}
            for e in line.exclusions
        ],
        "spans": _span_json(line),
    }


async def _refuse_overlap(conn: AsyncConnection, fund_code: str, bank_code: str, period: Period) -> None:
    """409 duplicate when the bank has a claim at the fund whose days overlap the period's."""
    existing = await queries.overlapping_claim(conn, fund_code, bank_code, period)
    if existing is not None:
        claimed_id, claimed = existing
        overlap = "" if claimed == period.text else f" (its days overlap {period.text})"
        raise Duplicate(
            f"bank {bank_code} already claimed {claimed} at fund {fund_code}{overlap}", id=claimed_id
        )


async def file_claim(tx: Tx, *, fund_code: str, bank_code: str, period: str) -> str:
    """A bank's claim for its loans at a fund over a period; refusals in the contract's order."""
    conn = tx.conn
    fund = (await conn.execute(sa.select(funds).where(funds.c.code == fund_code))).first()
    # Locked: two filings of overlapping periods by one bank take turns (the check below sees the
    # other's claim). NO KEY: rows that only reference the pair (loans, applications) still go ahead.
    pair = await conn.scalar(
        sa.select(fund_banks.c.bank_code)
        .where(fund_banks.c.fund_code == fund_code, fund_banks.c.bank_code == bank_code)
        .with_for_update(key_share=True)
    )
    if fund is None or pair is None:
        raise NotFound(f"fund {fund_code} not found for bank {bank_code}")
    chosen = await accepted_period(tx, fund_code, period)
    if tx.today < chosen.end:
        raise PeriodNotClosed(
            f"{chosen.text} ends on {chosen.end - timedelta(days=1)}; claims are filed from {chosen.end}",
            period=chosen.text,
            claimable_from=chosen.end.isoformat(),
        )
    lines = await compute_claim_lines(tx, fund_code=fund_code, bank_code=bank_code, period=chosen)
    await _refuse_overlap(conn, fund_code, bank_code, chosen)
    claim_id = new_id("sc")
    total = sum(line.subsidy_fen for line in lines)
    interest = sum(line.interest_fen for line in lines)
    try:
        async with conn.begin_nested():
            await conn.execute(
                subsidy_claims.insert().values(
                    id=claim_id,
                    fund_code=fund_code,
                    bank_code=bank_code,
                    region_code=fund.region_code,
                    period=chosen.text,
                    period_start=chosen.start,
                    period_end=chosen.end,
                    status="submitted",
                    line_count=len(lines),
                    interest_fen=interest,
                    total_fen=total,
                    filed_on=tx.today,
                    filed_at=utcnow(),
                    filed_by=tx.actor.client_id,
                )
            )
    except IntegrityError:
        # The same claim committed by another request meanwhile (the pair's lock above makes this a
        # safety net: the unique key still answers 409, not 500).
        await _refuse_overlap(conn, fund_code, bank_code, chosen)
        raise
    rows = [line_row(claim_id, line) for line in lines]
    for start in range(0, len(rows), 1000):
        await conn.execute(subsidy_claim_lines.insert(), rows[start : start + 1000])
    tx.audit(
        "subsidy_claim.filed",
        "subsidy_claim",
        claim_id,
        {
            "fund_code": fund_code,
            "bank_code": bank_code,
            "period": chosen.text,
            "line_count": len(lines),
            "interest_fen": interest,
            "total_fen": total,
        },
        region_code=fund.region_code,
    )
    return claim_id


def _check_decisions(
    lines: Sequence[queries.ClaimLine], decisions: Sequence[Decision]
) -> dict[str, Decision]:
    by_loan = {line.loan_id: line for line in lines}
    chosen: dict[str, Decision] = {}
    errors = []
    for index, decision in enumerate(decisions):
        field = f"decisions[{index}]"
        line = by_loan.get(decision.loan_id)
        if line is None:
            errors.append({"field": f"{field}.loan_id", "message": "is not a line of this claim"})
            continue
        if decision.loan_id in chosen:
            errors.append({"field": f"{field}.loan_id", "message": "is decided twice"})
            continue
        if decision.approved_fen > line.subsidy_fen:
            errors.append(
                {"field": f"{field}.approved_subsidy", "message": "may not be more than the subsidy claimed"}
            )
        reason = (decision.reason or "").strip()
        if decision.approved_fen != line.subsidy_fen and not reason:
            errors.append({"field": f"{field}.reason", "message": "is required when the figure is changed"})
        if len(reason) > _REASON_MAX:
            errors.append(
                {"field": f"{field}.reason", "message": f"may have at most {_REASON_MAX} characters"}
            )
        chosen[decision.loan_id] = decision
    if errors:
        raise ValidationFailed(errors)
    return chosen


async def review_claim(tx: Tx, claim_id: str, decisions: Sequence[Decision]) -> None:
    """A manager approves the claim, adjusting lines with a reason; lines not named are approved as
    claimed. The reviewer may not be the client that filed it."""
    conn = tx.conn
    claim = await queries.get_claim(conn, claim_id, for_update=True)
    if claim.filed_by is not None and claim.filed_by == tx.actor.client_id:
        raise SameMakerChecker("the client that filed a claim may not review it")
    lines = await queries.claim_lines(conn, claim_id)
    chosen = _check_decisions(lines, decisions)
    if claim.status != "submitted":
        raise InvalidState(f"subsidy claim {claim_id} is {claim.status}, not submitted", status=claim.status)
    approved_total = 0
    adjusted = []
    for line in lines:
        decision = chosen.get(line.loan_id)
        approved = decision.approved_fen if decision is not None else line.subsidy_fen
        approved_total += approved
        if decision is not None and approved != line.subsidy_fen:
            adjusted.append(
                {
                    "loan_id": line.loan_id,
                    "claimed_fen": line.subsidy_fen,
                    "approved_fen": approved,
                    "reason": (decision.reason or "").strip(),
                }
            )
    if adjusted:  # one statement for all of them, however many lines a manager adjusts
        await conn.execute(
            subsidy_claim_lines.update()
            .where(
                subsidy_claim_lines.c.claim_id == claim_id,
                subsidy_claim_lines.c.loan_id == sa.bindparam("b_loan_id"),
            )
            .values(approved_fen=sa.bindparam("b_approved_fen"), review_reason=sa.bindparam("b_reason")),
            [
                {"b_loan_id": i["loan_id"], "b_approved_fen": i["approved_fen"], "b_reason": i["reason"]}
                for i in adjusted
            ],
        )
    await conn.execute(
        subsidy_claim_lines.update()
        .where(subsidy_claim_lines.c.claim_id == claim_id, subsidy_claim_lines.c.approved_fen.is_(None))
        .values(approved_fen=subsidy_claim_lines.c.subsidy_fen)
    )
    await conn.execute(
        subsidy_claims.update()
        .where(subsidy_claims.c.id == claim_id)
        .values(
            status="approved",
            approved_total_fen=approved_total,
            reviewed_at=utcnow(),
            reviewed_by=tx.actor.client_id,
        )
    )
    tx.audit(
        "subsidy_claim.approved",
        "subsidy_claim",
        claim_id,
        {"total_fen": claim.total_fen, "approved_total_fen": approved_total, "adjusted": adjusted},
        region_code=claim.region_code,
    )
    tx.emit(
        "subsidy_claim_approved",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={
            "claim_id": claim_id,
            "fund_code": claim.fund_code,
            "bank_code": claim.bank_code,
            "period": claim.period,
            "currency": "CNY",
            "total": format_fen(claim.total_fen),
            "approved_total": format_fen(approved_total),
            "adjusted_lines": len(adjusted),
        },
    )


async def pay_claim(tx: Tx, claim_id: str) -> str | None:
    """Pay an approved claim from the fund's subsidy budget; returns the journal entry (None when
    nothing was approved). Refused, with nothing changed, when the budget is short."""
    conn = tx.conn
    claim = await queries.get_claim(conn, claim_id, for_update=True)
    if claim.status == "paid":
        raise InvalidState(f"subsidy claim {claim_id} is already paid", status=claim.status)
    if claim.status != "approved" or claim.approved_total_fen is None:
        raise InvalidState(f"subsidy claim {claim_id} is {claim.status}, not approved", status=claim.status)
    amount = claim.approved_total_fen
    entry_id = None
    if amount > 0:
        # The budget row is locked: two claims of the fund paid at once are decided in turn.
        budget = await ledger.balance(conn, claim.fund_code, accounts.SUBSIDY_BUDGET, for_update=True)
        if budget < amount:
            raise InsufficientSubsidyBudget(
                f"the subsidy budget of fund {claim.fund_code} is short of this claim",
                subsidy_budget=Amount(budget),
                amount=Amount(amount),
                shortfall=Amount(amount - budget),
            )
        entry_id = await ledger.post(
            tx,
            fund_code=claim.fund_code,
            entry_date=tx.today,
            kind="subsidy_paid",
            description=f"interest subsidy {claim.period} to {claim.bank_code}",
            reference=claim_id,
            lines=ledger.transfer(accounts.subsidy_paid(claim.bank_code), accounts.SUBSIDY_BUDGET, amount),
        )
    await conn.execute(
        subsidy_claims.update()
        .where(subsidy_claims.c.id == claim_id)
        .values(
            status="paid", paid_on=tx.today, paid_at=utcnow(), paid_by=tx.actor.client_id, entry_id=entry_id
        )
    )
    tx.audit(
        "subsidy_claim.paid",
        "subsidy_claim",
        claim_id,
        {"amount_fen": amount, "paid_on": tx.today.isoformat(), "entry_id": entry_id},
        region_code=claim.region_code,
    )
    tx.emit(
        "subsidy_paid",
        fund_code=claim.fund_code,
        region_code=claim.region_code,
        bank_code=claim.bank_code,
        data={
            "claim_id": claim_id,
            "fund_code": claim.fund_code,
            "bank_code": claim.bank_code,
            "period": claim.period,
            "currency": "CNY",
            "amount": format_fen(amount),
            "paid_on": tx.today.isoformat(),
        },
    )
    return entry_id

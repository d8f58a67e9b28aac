"""Every read of the subsidies area: the loan facts a claim is computed from, and claims.

The facts of all loans of a bank at a fund come in three statements (loans, principal repayments,
overdue spells), whatever the number of loans; `batch.py` computes the same lines in SQL alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund import policy as policies
from loanfund.db.rows import read_model
from loanfund.db.tables import (
    applications,
    compensation_claims,
    fund_policies,
    loan_overdue_spells,
    loan_repayments,
    loans,
    subsidy_claim_lines,
    subsidy_claims,
)
from loanfund.errors import NotFound, PolicyError
from loanfund.listing import ListFilter, filtered
from loanfund.policy import NotAdmitted, SubsidyRule
from loanfund.subsidies.interest import LoanFacts, PrincipalChange, Spell
from loanfund.subsidies.periods import Period

STATUSES = ("submitted", "approved", "paid")


class FundPolicies:
    """A fund's dated policies, each resolved once however many loans use it."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self._dated = [(row.effective_from, row.edition, row.overrides) for row in rows]
        self._resolved: dict[int, policies.Policy] = {}

    @property
    def effective_dates(self) -> list[date]:
        return [effective_from for effective_from, _, _ in self._dated]

    def index_on(self, day: date) -> int:
        if not self._dated:
            raise PolicyError("a fund needs at least one policy")
        # Same choice as policy.policy_in_force: the first holds from the start of time.
        chosen = 0
        for index, (effective_from, _, _) in enumerate(self._dated):
            if index and effective_from <= day:
                chosen = index
        return chosen

    def at(self, index: int) -> policies.Policy:
        if index not in self._resolved:
            _, edition, overrides = self._dated[index]
            self._resolved[index] = policies.resolve_policy(edition, overrides)
        return self._resolved[index]

    def on(self, day: date) -> policies.Policy:
        return self.at(self.index_on(day))


async def fund_policies_of(conn: AsyncConnection, fund_code: str) -> FundPolicies:
    query = (
        sa.select(fund_policies)
        .where(fund_policies.c.fund_code == fund_code)
        .order_by(fund_policies.c.effective_from)
    )
    return FundPolicies((await conn.execute(query)).all())


def rule_of(policy: policies.Policy, borrower_kind: str) -> SubsidyRule | NotAdmitted:
    value = policy.value("subsidy_individual" if borrower_kind == "individual" else "subsidy_firm")
    if not isinstance(
        value,
        NotAdmitted
        | policies.SubsidyShare
        | policies.SubsidySchedule
        | policies.SubsidyOfReference
        | policies.SubsidyBorrowerCap,
    ):
        raise PolicyError("subsidy rule has no formula", parameter="subsidy")
    return value


def _in_period(period: Period) -> list[sa.ColumnElement[bool]]:
    # Loans with principal out on some day of the period (a repayment day itself earns nothing).
    return [
        loans.c.disbursed_on < period.end,
        sa.or_(loans.c.repaid_on.is_(None), loans.c.repaid_on > period.start),
    ]


def _compensated_on() -> sa.ScalarSelect[Any]:
    """The day the fund paid compensation for the loan, if it did: no subsidy from that day on."""
    return (
        sa.select(compensation_claims.c.decided_on)
        .where(compensation_claims.c.loan_id == loans.c.id, compensation_claims.c.status == "paid")
        .limit(1)
        .scalar_subquery()
    )


async def loan_facts(
    conn: AsyncConnection,
    fund_code: str,
    period: Period,
    *,
    bank_code: str | None = None,
    loan_ids: Sequence[str] | None = None,
) -> list[LoanFacts]:
    """The facts of every loan of the fund (and bank) with principal out during the period, by id."""
    where = [loans.c.fund_code == fund_code, *_in_period(period)]
    if bank_code is not None:
        where.append(loans.c.bank_code == bank_code)
    if loan_ids is not None:
        where.append(loans.c.id.in_(list(loan_ids)))
    rows = (
        await conn.execute(
            sa.select(
                loans.c.id,
                loans.c.loan_number,
                loans.c.principal_fen,
                loans.c.annual_rate_pct,
                loans.c.reference_rate_pct,
                loans.c.contracted_on,
                loans.c.disbursed_on,
                loans.c.original_maturity_on,
                loans.c.maturity_on,
                loans.c.borrower_kind,
                applications.c.micro_profit,
                _compensated_on().label("compensated_on"),
            )
            .select_from(loans.join(applications, applications.c.id == loans.c.application_id))
            .where(*where)
            .order_by(loans.c.id)
        )
    ).all()
    if not rows:
        return []
    chosen = sa.select(loans.c.id).where(*where).scalar_subquery()
    repaid: dict[str, list[PrincipalChange]] = defaultdict(list)
    repayments = sa.select(
        loan_repayments.c.loan_id, loan_repayments.c.paid_on, loan_repayments.c.principal_fen
    ).where(
        loan_repayments.c.loan_id.in_(chosen),
        loan_repayments.c.principal_fen > 0,
        loan_repayments.c.paid_on < period.end,
    )
    for rep in await conn.execute(repayments):
        repaid[rep.loan_id].append(PrincipalChange(rep.paid_on, -rep.principal_fen))
    spells: dict[str, list[Spell]] = defaultdict(list)
    for spell in await conn.execute(
        sa.select(loan_overdue_spells).where(
            loan_overdue_spells.c.loan_id.in_(chosen),
            loan_overdue_spells.c.overdue_since < period.end,
            sa.or_(loan_overdue_spells.c.cured_on.is_(None), loan_overdue_spells.c.cured_on > period.start),
        )
    ):
        spells[spell.loan_id].append(Spell(spell.overdue_since, spell.cured_on))
    fund = await fund_policies_of(conn, fund_code)
    out = []
    for row in rows:
        policy = fund.on(row.contracted_on)
        changes = [PrincipalChange(row.disbursed_on, row.principal_fen), *repaid.get(row.id, ())]
        out.append(
            LoanFacts(
                loan_id=row.id,
                loan_number=row.loan_number,
                borrower_kind=row.borrower_kind,
                micro_profit=bool(row.micro_profit),
                annual_rate_pct=row.annual_rate_pct,
                reference_rate_pct=row.reference_rate_pct,
                contracted_on=row.contracted_on,
                disbursed_on=row.disbursed_on,
                original_maturity_on=row.original_maturity_on,
                maturity_on=row.maturity_on,
                changes=tuple(sorted(changes, key=lambda c: c.on)),
                rule=rule_of(policy, row.borrower_kind),
                day_count_basis=policy.integer("day_count_basis"),
                extension_subsidised=policy.flag("extension_subsidised"),
                overdue_spells=tuple(sorted(spells.get(row.id, ()), key=lambda s: s.since)),
                compensated_on=row.compensated_on,
                policy_edition=policy.edition,
            )
        )
    return out


# ---- claims --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    id: str
    fund_code: str
    bank_code: str
    region_code: str
    period: str
    period_start: date
    period_end: date
    status: str
    line_count: int
    interest_fen: int
    total_fen: int
    approved_total_fen: int | None
    filed_on: date
    filed_at: datetime
    filed_by: str | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    paid_on: date | None
    paid_at: datetime | None
    paid_by: str | None
    entry_id: str | None


@dataclass(frozen=True)
class ClaimLine:
    loan_id: str
    loan_number: str
    opening_fen: int
    closing_fen: int
    disbursed_fen: int
    repaid_fen: int
    days: int
    excluded_days: int
    annual_rate_pct: Decimal
    reference_rate_pct: Decimal
    subsidy_rate_pct: Decimal
    interest_fen: int
    subsidy_fen: int
    approved_fen: int | None
    review_reason: str | None
    policy_edition: str
    day_count_basis: int
    exclusions: list[dict[str, Any]]
    spans: list[dict[str, Any]]


def _claim(row: Any) -> Claim:
    return read_model(Claim, row)


async def get_claim(conn: AsyncConnection, claim_id: str, *, for_update: bool = False) -> Claim:
    query = sa.select(subsidy_claims).where(subsidy_claims.c.id == claim_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"subsidy claim {claim_id} not found")
    return _claim(row)


async def overlapping_claim(
    conn: AsyncConnection, fund_code: str, bank_code: str, period: Period
) -> tuple[str, str] | None:
    """(id, period) of the bank's claim at the fund whose days overlap the period's, if any: the same
    period, or a quarter inside a half claimed (a fund may take both lengths, or change its length)."""
    row = (
        await conn.execute(
            sa.select(subsidy_claims.c.id, subsidy_claims.c.period)
            .where(
                subsidy_claims.c.fund_code == fund_code,
                subsidy_claims.c.bank_code == bank_code,
                subsidy_claims.c.period_start < period.end,
                subsidy_claims.c.period_end > period.start,
            )
            .order_by(subsidy_claims.c.period_start)
            .limit(1)
        )
    ).first()
    return None if row is None else (row.id, row.period)


async def claim_lines(conn: AsyncConnection, claim_id: str) -> list[ClaimLine]:
    query = (
        sa.select(subsidy_claim_lines)
        .where(subsidy_claim_lines.c.claim_id == claim_id)
        .order_by(subsidy_claim_lines.c.loan_number, subsidy_claim_lines.c.loan_id)
    )
    return [read_model(ClaimLine, row) for row in await conn.execute(query)]


async def list_claims(
    conn: AsyncConnection,
    *,
    region_prefix: str | None,
    bank_code: str | None,
    fund_code: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Claim]:
    query = filtered(
        subsidy_claims,
        ListFilter(
            region_prefix=region_prefix, bank_code=bank_code, fund_code=fund_code, after=after, limit=limit
        ),
    )
    if status is not None:
        query = query.where(subsidy_claims.c.status == status)
    return [_claim(row) for row in await conn.execute(query)]

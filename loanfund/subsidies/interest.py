"""The interest engine: one claim line per loan and period, as a sum over spans, rounded once.

Pure functions over plain values. A period [start, end) is cut wherever something that changes the
line changes: the principal (a disbursement or a repayment takes effect on its date: the disbursement
day earns interest, the repayment day does not, 算头不算尾), a loan anniversary (the taper), the
original maturity (extension days), the start or end of an overdue spell, the compensation date.
Each span has one principal, one rate and at most one reason for exclusion. Interest and subsidy are
summed exactly (Fraction) over the spans and rounded half-up to the fen once, at the end of the line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from loanfund.errors import MissingReferenceRate
from loanfund.money import round_to_fen
from loanfund.policy import NotAdmitted, SubsidyRule, loan_year
from loanfund.subsidies.periods import Period
from loanfund.subsidies.rules import SubsidyTerms, subsidy_terms
from loanfund.terms import add_months

__all__ = [
    "COMPENSATED",
    "EXCLUSION_REASONS",
    "EXTENSION",
    "OVERDUE",
    "Exclusion",
    "Line",
    "LoanFacts",
    "PrincipalChange",
    "Span",
    "Spell",
    "compute_line",
    "interest_exact",
]

COMPENSATED = "compensated"
OVERDUE = "overdue"
EXTENSION = "extension"
# When reasons overlap, the first one is reported for the day.
EXCLUSION_REASONS = (COMPENSATED, OVERDUE, EXTENSION)


@dataclass(frozen=True)
class PrincipalChange:
    """Principal drawn (positive: a disbursement) or repaid (negative), effective from `on`."""

    on: date
    delta_fen: int


@dataclass(frozen=True)
class Spell:
    """An overdue spell of the whole loan: from its first overdue day until the arrears were cured
    (`until` is the cure date, itself subsidised again; None while the spell is open)."""

    since: date
    until: date | None = None


@dataclass(frozen=True)
class LoanFacts:
    """What the engine needs of one loan; `rule` and `day_count_basis` are of the fund's policy in
    force on the contract date."""

    loan_id: str
    loan_number: str
    borrower_kind: str  # individual | enterprise
    micro_profit: bool
    annual_rate_pct: Decimal
    reference_rate_pct: Decimal | None  # of the contract date; None when it could not be fixed
    contracted_on: date
    disbursed_on: date
    original_maturity_on: date
    maturity_on: date  # current, after any extension
    changes: tuple[PrincipalChange, ...]
    rule: SubsidyRule | NotAdmitted
    day_count_basis: int = 360
    extension_subsidised: bool = False
    overdue_spells: tuple[Spell, ...] = ()
    compensated_on: date | None = None
    policy_edition: str = ""


@dataclass(frozen=True)
class Span:
    start: date
    end: date  # exclusive
    principal_fen: int
    loan_year: int
    terms: SubsidyTerms
    excluded: str | None  # a reason of EXCLUSION_REASONS, or None when subsidised

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Exclusion:
    start: date
    end: date  # exclusive
    reason: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Line:
    loan_id: str
    loan_number: str
    opening_principal_fen: int
    closing_principal_fen: int
    disbursed_fen: int  # drawn inside the period
    repaid_fen: int  # repaid inside the period
    days: int  # interest days: days of the period with principal outstanding
    excluded_days: int
    annual_rate_pct: Decimal
    reference_rate_pct: Decimal | None
    subsidy_rate_pct: Fraction  # of the last subsidised span (the spans say the rest)
    interest_fen: int  # at the contract rate, over every interest day
    subsidy_fen: int
    spans: tuple[Span, ...] = field(default=())
    exclusions: tuple[Exclusion, ...] = field(default=())
    policy_edition: str = ""
    day_count_basis: int = 360


def interest_exact(principal_fen: int, rate_pct: Fraction, days: int, basis: int) -> Fraction:
    """Yuan, exact: principal × rate × days / basis."""
    return Fraction(principal_fen, 100) * rate_pct / 100 * days / basis


def _anniversaries(disbursed_on: date, period: Period) -> list[date]:
    out: list[date] = []
    first, last = period.start.year - disbursed_on.year - 1, period.end.year - disbursed_on.year + 1
    for n in range(max(1, first), last + 1):
        day = add_months(disbursed_on, 12 * n)
        if period.start < day < period.end:
            out.append(day)
    return out


def _reason(facts: LoanFacts, day: date) -> str | None:
    if facts.compensated_on is not None and day >= facts.compensated_on:
        return COMPENSATED
    if day >= facts.maturity_on:
        return OVERDUE  # past the (extended) maturity with principal still out
    for spell in facts.overdue_spells:
        if spell.since <= day and (spell.until is None or day < spell.until):
            return OVERDUE
    if day >= facts.original_maturity_on and not facts.extension_subsidised:
        return EXTENSION
    return None


def compute_line(facts: LoanFacts, period: Period) -> Line:
    """The claim line of one loan for one period (possibly all excluded, possibly zero days)."""
    cuts = {period.start, period.end}
    for change in facts.changes:
        cuts.add(change.on)
    cuts.update(_anniversaries(facts.disbursed_on, period))
    cuts.update((facts.original_maturity_on, facts.maturity_on))
    if facts.compensated_on is not None:
        cuts.add(facts.compensated_on)
    for spell in facts.overdue_spells:
        cuts.add(spell.since)
        if spell.until is not None:
            cuts.add(spell.until)
    points = sorted(d for d in cuts if period.start <= d <= period.end)

    opening = sum(c.delta_fen for c in facts.changes if c.on < period.start)
    closing = sum(c.delta_fen for c in facts.changes if c.on < period.end)
    drawn = sum(c.delta_fen for c in facts.changes if period.start <= c.on < period.end and c.delta_fen > 0)

    spans: list[Span] = []
    for start, end in itertools.pairwise(points):
        principal = sum(c.delta_fen for c in facts.changes if c.on <= start)
        if principal <= 0 or start < facts.disbursed_on:
            continue
        year = loan_year(facts.disbursed_on, start)
        try:
            terms = subsidy_terms(
                facts.rule,
                contract_rate_pct=facts.annual_rate_pct,
                reference_rate_pct=facts.reference_rate_pct,
                contracted_on=facts.contracted_on,
                loan_year=year,
                micro_profit=facts.micro_profit,
            )
        except MissingReferenceRate as exc:
            raise MissingReferenceRate(
                f"loan {facts.loan_number}: {exc.detail}",
                loan_id=facts.loan_id,
                loan_number=facts.loan_number,
                **exc.facts,
            ) from None
        span = Span(start, end, principal, year, terms, _reason(facts, start))
        last = spans[-1] if spans else None
        if (
            last is not None
            and last.end == start
            and (last.principal_fen, last.loan_year, last.terms, last.excluded)
            == (principal, year, terms, span.excluded)
        ):
            spans[-1] = Span(last.start, end, principal, last.loan_year, terms, last.excluded)
        else:
            spans.append(span)

    basis = facts.day_count_basis
    contract = Fraction(facts.annual_rate_pct)
    interest = sum((interest_exact(s.principal_fen, contract, s.days, basis) for s in spans), Fraction(0))
    subsidy = sum(
        (interest_exact(s.principal_fen, s.terms.rate_pct, s.days, basis) for s in spans if not s.excluded),
        Fraction(0),
    )
    exclusions: list[Exclusion] = []
    for s in spans:
        if s.excluded is None:
            continue
        if exclusions and exclusions[-1].end == s.start and exclusions[-1].reason == s.excluded:
            exclusions[-1] = Exclusion(exclusions[-1].start, s.end, s.excluded)
        else:
            exclusions.append(Exclusion(s.start, s.end, s.excluded))
    subsidised = [s for s in spans if not s.excluded]
    shown = subsidised[-1] if subsidised else (spans[-1] if spans else None)
    return Line(
        loan_id=facts.loan_id,
        loan_number=facts.loan_number,
        opening_principal_fen=opening,
        closing_principal_fen=closing,
        disbursed_fen=drawn,
        repaid_fen=opening + drawn - closing,
        days=sum(s.days for s in spans),
        excluded_days=sum(e.days for e in exclusions),
        annual_rate_pct=facts.annual_rate_pct,
        reference_rate_pct=facts.reference_rate_pct,
        subsidy_rate_pct=shown.terms.rate_pct if shown is not None else Fraction(0),
        interest_fen=round_to_fen(interest),
        subsidy_fen=round_to_fen(subsidy),
        spans=tuple(spans),
        exclusions=tuple(exclusions),
        policy_edition=facts.policy_edition,
        day_count_basis=basis,
    )

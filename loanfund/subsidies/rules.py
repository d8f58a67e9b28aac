"""Which rate finance pays, edition by edition, written as the base rate and the share of it.

The policy data and the exact rate live in `loanfund.policy` (`evaluate_subsidy_rate_pct`); this
module only says how that rate is made, so that a clerk sees "2/3 of 4.75%" rather than 3.1667%.
The rule applied to a loan is the fund's policy in force on the loan's contract date; the loan year of
the taper is counted from the disbursement date (issue 10), so a period crossing an anniversary splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from loanfund.errors import MissingReferenceRate
from loanfund.policy import (
    NOT_ADMITTED,
    NotAdmitted,
    SubsidyBorrowerCap,
    SubsidyOfReference,
    SubsidyRule,
    SubsidySchedule,
    SubsidyShare,
    evaluate_subsidy_rate_pct,
)

__all__ = ["SubsidyTerms", "subsidy_terms"]


@dataclass(frozen=True)
class SubsidyTerms:
    """Finance pays `share` × `base_rate_pct` a year on the principal (`rate_pct`, exact)."""

    base_rate_pct: Fraction
    share: Fraction
    rule: str  # share | micro_profit_only | schedule | reference_share | borrower_cap | not_admitted

    @property
    def rate_pct(self) -> Fraction:
        return self.base_rate_pct * self.share


def subsidy_terms(
    rule: SubsidyRule | NotAdmitted,
    *,
    contract_rate_pct: Decimal,
    reference_rate_pct: Decimal | None,
    contracted_on: date,
    loan_year: int,
    micro_profit: bool,
) -> SubsidyTerms:
    """The terms of `rule` for days in `loan_year`; their rate equals `evaluate_subsidy_rate_pct`.

    A rule priced on the reference rate refuses a loan without one (`missing_reference_rate`).
    """
    contract = Fraction(contract_rate_pct)
    if rule is NOT_ADMITTED:
        return SubsidyTerms(contract, Fraction(0), "not_admitted")
    if isinstance(rule, SubsidyBorrowerCap) and contracted_on < rule.contracted_from:
        rule = rule.earlier
    if reference_rate_pct is None:
        if isinstance(rule, SubsidyOfReference | SubsidyBorrowerCap):
            raise MissingReferenceRate(
                f"the subsidy rule needs the reference rate of the contract date {contracted_on}",
                contracted_on=contracted_on.isoformat(),
            )
        reference_rate_pct = Decimal(0)  # not used by the rules left
    rate = evaluate_subsidy_rate_pct(
        rule,
        contract_rate_pct=contract_rate_pct,
        reference_rate_pct=reference_rate_pct,
        contracted_on=contracted_on,
        loan_year=loan_year,
        micro_profit=micro_profit,
    )
    if isinstance(rule, SubsidyShare):
        if rule.micro_profit_only and not micro_profit:
            return SubsidyTerms(contract, Fraction(0), "micro_profit_only")
        return SubsidyTerms(contract, rule.share, "share")
    if isinstance(rule, SubsidySchedule):
        share = rule.by_loan_year[loan_year - 1] if loan_year <= len(rule.by_loan_year) else Fraction(0)
        return SubsidyTerms(contract, share, "schedule")
    if isinstance(rule, SubsidyOfReference):
        reference = Fraction(reference_rate_pct)
        if rule.share * reference <= contract:
            return SubsidyTerms(reference, rule.share, "reference_share")
        return SubsidyTerms(contract, Fraction(1), "reference_share")  # never more than the contract rate
    return SubsidyTerms(rate, Fraction(1), "borrower_cap")

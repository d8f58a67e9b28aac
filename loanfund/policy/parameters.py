"""The parameter registry: every rule a policy edition may set, its type, and its value classes.

Values are exact (int fen, Decimal percent, Fraction shares) and immutable, so a resolved policy can be
shared freely and compared. Each value has one JSON-ish form, the same in edition files (TOML), fund
overrides and API output; `parse_value` reads it and `value_to_json` writes it back so that
`parse_value(value_to_json(v)) == v`.

Formulas are small frozen dataclasses evaluated by plain functions here (`evaluate_rate_ceiling_pct`,
`evaluate_subsidy_rate_pct`, ...); `loanfund.policy.editions` wraps them for a whole policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Literal, TypeAlias

from loanfund.errors import InvalidAmount, PolicyError
from loanfund.money import format_fen, parse_pct, parse_yuan

__all__ = [
    "CATEGORIES",
    "EMPLOYER_KINDS",
    "FILE_TAGS",
    "NOT_ADMITTED",
    "OTHER_LOAN_KINDS",
    "PERIOD_KINDS",
    "REGISTRY",
    "TAGS",
    "BorrowerKind",
    "CreditGuaranteeWaiver",
    "Formula",
    "JSONValue",
    "NotAdmitted",
    "OtherLoansRule",
    "ParamSpec",
    "ParamType",
    "ParamValue",
    "RateCeiling",
    "RateCeilingByTier",
    "RateCeilingRule",
    "SubsidyBorrowerCap",
    "SubsidyOfReference",
    "SubsidyRule",
    "SubsidySchedule",
    "SubsidyShare",
    "Tag",
    "evaluate_credit_guarantee_allowed",
    "evaluate_other_loans_permitted",
    "evaluate_rate_ceiling_pct",
    "evaluate_subsidy_rate_pct",
    "parse_value",
    "value_to_json",
]

ParamType = Literal[
    "money", "months", "percent", "int", "bool", "categories", "period_kinds", "employer_kinds", "formula"
]
Tag = Literal["N", "L", "?", "ours", "override"]
# "override" is never written in a file: it marks what a fund changed.
FILE_TAGS: tuple[Tag, ...] = ("N", "L", "?", "ours")
TAGS: tuple[Tag, ...] = (*FILE_TAGS, "override")
BorrowerKind = Literal["individual", "enterprise"]

# api.md, POST /borrowers; the order is the canonical order of a categories value.
CATEGORIES: tuple[str, ...] = (
    "laid_off",
    "registered_unemployed",
    "hard_to_employ",
    "bankrupt_soe_staff",
    "veteran",
    "graduate",
    "returning_migrant",
    "rural_entrepreneur",
    "disabled",
    "poverty_registered",
)

# api.md, POST /guarantors; the order is the canonical order of an employer_kinds value.
EMPLOYER_KINDS: tuple[str, ...] = ("civil_service", "public_institution", "state_enterprise", "other")

# Loans a borrower (and spouse) may already hold under the 2018 rule, when excepted by the policy.
OTHER_LOAN_KINDS: tuple[str, ...] = ("student", "poverty_relief", "housing", "car", "consumer")

# Lengths of an interest-subsidy claim period, shortest first (api.md: 2023-07, 2023Q3, 2023H2).
PERIOD_KINDS: tuple[str, ...] = ("month", "quarter", "half")

JSONValue: TypeAlias = bool | int | str | list["JSONValue"] | dict[str, "JSONValue"] | None


class NotAdmitted(Enum):
    """The "—" cell: the thing does not exist under this edition (e.g. small-firm loans in cn-2002)."""

    NOT_ADMITTED = "not_admitted"

    def __repr__(self) -> str:
        return "NOT_ADMITTED"


NOT_ADMITTED = NotAdmitted.NOT_ADMITTED
_NONE_TEXT = "none"  # TOML has no null; "none" is its spelling of an absent limit


# --- formulas -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateCeiling:
    """Highest contract rate (inclusive): the loan's reference rate plus `add_pp` percentage points.

    The reference is the loan's own band on its contract date (domain.md §4), benchmark or LPR alike.
    """

    add_pp: Decimal
    base: Literal["reference"] = "reference"


@dataclass(frozen=True)
class RateCeilingByTier:
    """Reference plus a number of basis points chosen by the fund's rate tier (cn-2020: 50/150/250)."""

    add_bp: tuple[tuple[int, int], ...]  # (tier, bp) pairs, sorted; a tuple keeps the value hashable
    base: Literal["reference"] = "reference"

    @classmethod
    def of(cls, add_bp: Mapping[int, int]) -> RateCeilingByTier:
        return cls(add_bp=tuple(sorted(add_bp.items())))

    def add_pp_for(self, tier: int) -> Decimal:
        for known, bp in self.add_bp:
            if known == tier:
                return Decimal(bp) / 100
        raise PolicyError(
            f"rate_ceiling: no ceiling for rate tier {tier}", parameter="rate_ceiling", tier=tier
        )


RateCeilingRule: TypeAlias = RateCeiling | RateCeilingByTier


@dataclass(frozen=True)
class SubsidyShare:
    """Finance pays `share` of the interest at the contract rate (cn-2008: all of it).

    `micro_profit_only`: cn-2002 paid only for micro-profit projects, nothing otherwise.
    """

    share: Fraction
    micro_profit_only: bool = False


@dataclass(frozen=True)
class SubsidySchedule:
    """Share of contract-rate interest paid by finance in loan year 1, 2, ...; later years get nothing.

    cn-2016: (1, 2/3, 1/3). Fractions, because 2/3 of a rate has no exact decimal.
    """

    by_loan_year: tuple[Fraction, ...]


@dataclass(frozen=True)
class SubsidyOfReference:
    """Finance pays `share` × the reference rate at the contract date, whatever the contract rate."""

    share: Fraction


@dataclass(frozen=True)
class SubsidyBorrowerCap:
    """The borrower pays at most (reference − `reference_minus_pp`); finance pays the rest (cn-2020).

    Applies to loans contracted on or after `contracted_from`; earlier loans keep the `earlier` rule,
    because 财金[2020]21号 changed the rule for new loans only.
    """

    reference_minus_pp: Decimal
    contracted_from: date
    earlier: SubsidyShare | SubsidySchedule | SubsidyOfReference


SubsidyRule: TypeAlias = SubsidyShare | SubsidySchedule | SubsidyOfReference | SubsidyBorrowerCap


@dataclass(frozen=True)
class CreditGuaranteeWaiver:
    """When an individual needs no counter-guarantee (信誉担保).

    Any one condition suffices: a credit-community recommendation, SYB training with an approved business
    plan, or (cn-2020) a loan of at most `individual_loan_max` fen.
    """

    credit_community: bool
    syb_training_with_plan: bool
    individual_loan_max: int | None = None


@dataclass(frozen=True)
class OtherLoansRule:
    """2018: borrower and spouse hold no other loans except the excepted kinds.

    `consumer_loan_max` is inclusive: the text says 5万元以下, and 以下 includes the figure itself.
    """

    excepted: tuple[str, ...]
    consumer_loan_max: int
    includes_spouse: bool = True


Formula: TypeAlias = RateCeilingRule | SubsidyRule | CreditGuaranteeWaiver | OtherLoansRule
ParamValue: TypeAlias = int | bool | Decimal | tuple[str, ...] | Formula | NotAdmitted | None


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    type: ParamType
    description: str
    not_admitted_ok: bool = False  # may be "not_admitted" (a "—" cell)
    nullable: bool = False  # may be "none" (no limit / no rule)
    minimum: int | None = None  # for int and months
    choices: tuple[int, ...] = ()  # for int
    kinds: tuple[str, ...] = ()  # formula kinds accepted


_RATE_KINDS = ("reference_plus", "reference_plus_by_tier")
_SUBSIDY_KINDS = ("share", "schedule", "reference_share", "borrower_cap")

REGISTRY: Mapping[str, ParamSpec] = {
    # Amounts and terms
    "individual_cap": ParamSpec("money", "Highest guarantee/loan to one individual."),
    "partnership_cap_pct": ParamSpec(
        "percent", "Partnership cap as a percent of the sum of its members' individual caps."
    ),
    "small_firm_cap": ParamSpec("money", "Highest loan to one small firm.", not_admitted_ok=True),
    "firm_new_hire_share_small_pct": ParamSpec(
        "percent",
        "Eligible new hires this year as a percent of current staff, firms with at most "
        "firm_size_threshold_staff staff.",
        not_admitted_ok=True,
    ),
    "firm_new_hire_share_large_pct": ParamSpec(
        "percent",
        "Same share for firms with more than firm_size_threshold_staff staff.",
        not_admitted_ok=True,
    ),
    "firm_size_threshold_staff": ParamSpec(
        "int",
        "Staff count up to which a firm uses the 'small' new-hire share.",
        not_admitted_ok=True,
        minimum=1,
    ),
    "max_term_individual_months": ParamSpec("months", "Longest term of an individual loan.", minimum=1),
    "max_term_firm_months": ParamSpec(
        "months", "Longest term of a firm loan.", not_admitted_ok=True, minimum=1
    ),
    # Extension
    "extension_max_count": ParamSpec("int", "How many extensions a loan may have.", minimum=0),
    "extension_max_months": ParamSpec("months", "Longest single extension.", minimum=1),
    "extension_needs_guarantor_consent": ParamSpec("bool", "An extension needs the guarantor's consent."),
    "extension_subsidised": ParamSpec("bool", "Whether extension days earn subsidy."),
    # Rates and subsidy
    "rate_ceiling": ParamSpec("formula", "Highest contract rate (inclusive).", kinds=_RATE_KINDS),
    "rate_tier_default": ParamSpec(
        "int", "The fund's rate tier for tiered ceilings (cn-2020: 1/2/3).", minimum=1, choices=(1, 2, 3)
    ),
    "subsidy_individual": ParamSpec(
        "formula", "Interest subsidy for individual loans.", kinds=_SUBSIDY_KINDS
    ),
    "subsidy_firm": ParamSpec(
        "formula", "Interest subsidy for firm loans.", not_admitted_ok=True, kinds=_SUBSIDY_KINDS
    ),
    "day_count_basis": ParamSpec(
        "int", "Days in the interest year (daily rate = annual / basis).", choices=(360, 365)
    ),
    "subsidy_period_kinds": ParamSpec(
        "period_kinds", "Claim period lengths a bank may file subsidy claims for (month, quarter, half)."
    ),
    # Leverage and risk
    "leverage_multiple_max": ParamSpec("int", "Highest leverage multiple an agreement may set.", minimum=1),
    "leverage_multiple_min_expected": ParamSpec(
        "int", "Multiple the policy expects at least (advisory; shown to managers).", nullable=True, minimum=1
    ),
    "compensation_rate_suspend_pct": ParamSpec(
        "percent", "Compensation rate above which an agreement is suspended automatically."
    ),
    # Eligibility
    "borrower_max_age": ParamSpec("int", "Oldest age of an individual borrower at application.", minimum=1),
    "individual_categories": ParamSpec("categories", "Individual borrower categories admitted."),
    "laid_off_certificate_required": ParamSpec(
        "bool", "laid_off borrowers need a re-employment certificate inspected for the application year."
    ),
    "small_firms_admitted": ParamSpec("bool", "Whether small firms (category small_firm) may borrow."),
    "repeat_support_max": ParamSpec(
        "int", "How many times one borrower may be supported; none = unlimited.", nullable=True, minimum=1
    ),
    "other_loans_rule": ParamSpec(
        "formula",
        "Other loans borrower and spouse may hold; none = no such rule.",
        nullable=True,
        kinds=("other_loans",),
    ),
    "guarantor_employer_kinds": ParamSpec(
        "employer_kinds", "Employers whose staff may act as guarantors (counter-guarantee)."
    ),
    "graduate_window_years": ParamSpec(
        "int",
        "Years after graduation during which a graduate counts as one; none = no limit.",
        nullable=True,
        minimum=0,
    ),
    "credit_guarantee_waiver": ParamSpec(
        "formula",
        "When no counter-guarantee is needed (credit guarantee).",
        not_admitted_ok=True,
        kinds=("waiver",),
    ),
    # Process
    "reservation_days": ParamSpec(
        "int", "Days an approved guarantee stays reserved for disbursement.", minimum=1
    ),
    "guarantor_max_active": ParamSpec("int", "Loans one guarantor may back at once.", minimum=1),
}


# --- parsing --------------------------------------------------------------------------------------

_FRACTION_RE = re.compile(r"(0|[1-9][0-9]*)(/[1-9][0-9]*)?")
_PP_RE = re.compile(r"(0|[1-9][0-9]{0,2})(\.[0-9]{1,4})?")


class _Bad(Exception):
    """A value that does not fit; turned into PolicyError with the place it came from."""


def parse_value(name: str, raw: object, *, where: str) -> ParamValue:
    """Read a parameter value from its TOML/JSON form; `where` names the edition or override."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise PolicyError(f"{where}: unknown parameter {name!r}", parameter=name, where=where)
    try:
        return _parse(spec, raw)
    except _Bad as exc:
        raise PolicyError(
            f"{where}: parameter {name!r}: {exc}",
            parameter=name,
            where=where,
            errors=[{"field": name, "message": str(exc)}],
        ) from None


def _parse(spec: ParamSpec, raw: object) -> ParamValue:
    if raw == NOT_ADMITTED.value:
        if not spec.not_admitted_ok:
            raise _Bad("cannot be not_admitted")
        return NOT_ADMITTED
    if raw is None or raw == _NONE_TEXT:
        if not spec.nullable:
            raise _Bad("cannot be none")
        return None
    if spec.type == "money":
        return _money(raw)
    if spec.type in ("months", "int"):
        value = _int(raw)
        if spec.minimum is not None and value < spec.minimum:
            raise _Bad(f"must be at least {spec.minimum}")
        if spec.choices and value not in spec.choices:
            raise _Bad(f"must be one of {', '.join(map(str, spec.choices))}")
        return value
    if spec.type == "percent":
        return _pct(raw)
    if spec.type == "bool":
        return _bool(raw)
    if spec.type == "categories":
        return _categories(raw)
    if spec.type == "period_kinds":
        return _period_kinds(raw)
    if spec.type == "employer_kinds":
        return _employer_kinds(raw)
    return _formula(raw, spec.kinds)


def _money(raw: object) -> int:
    if not isinstance(raw, str):
        # A bare number could be meant as yuan or as fen; only the yuan string is unambiguous.
        raise _Bad('must be a yuan string like "50000"')
    try:
        return parse_yuan(raw)
    except InvalidAmount as exc:
        raise _Bad(exc.errors[0]["message"]) from None


def _int(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _Bad("must be an integer")
    return raw


def _bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _Bad("must be true or false")
    return raw


def _pct(raw: object) -> Decimal:
    if not isinstance(raw, str):
        # Strings only: a TOML/JSON float would already have lost exactness.
        raise _Bad('must be a decimal string like "30" or "1.50"')
    try:
        return parse_pct(raw, field="value")
    except InvalidAmount as exc:
        raise _Bad(exc.errors[0]["message"]) from None


def _fraction(raw: object) -> Fraction:
    if not isinstance(raw, str) or not _FRACTION_RE.fullmatch(raw):
        raise _Bad('shares must be strings like "1", "2/3" or "1/2"')
    value = Fraction(raw)
    if value > 1:
        raise _Bad("a share cannot exceed 1")
    return value


def _date(raw: object) -> date:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise _Bad("must be a date like 2021-01-01")


def _categories(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise _Bad("must be a list of category names")
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, str) or item not in CATEGORIES:
            raise _Bad(f"unknown category {item!r}")
        if item in seen:
            raise _Bad(f"category {item!r} given twice")
        seen.add(item)
    return tuple(c for c in CATEGORIES if c in seen)


def _period_kinds(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Bad(f"must be a non-empty list of {', '.join(PERIOD_KINDS)}")
    if any(not isinstance(item, str) or item not in PERIOD_KINDS for item in raw) or len(set(raw)) < len(raw):
        raise _Bad(f"must list each of {', '.join(PERIOD_KINDS)} at most once")
    return tuple(k for k in PERIOD_KINDS if k in raw)


def _employer_kinds(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Bad("must be a non-empty list of employer kinds")
    for item in raw:
        if not isinstance(item, str) or item not in EMPLOYER_KINDS:
            raise _Bad(f"unknown employer kind {item!r}; known: {', '.join(EMPLOYER_KINDS)}")
    if len(set(raw)) != len(raw):
        raise _Bad("an employer kind is given twice")
    return tuple(k for k in EMPLOYER_KINDS if k in raw)


def _fields(raw: Mapping[str, object], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    keys = set(raw) - {"kind"}
    missing = [k for k in required if k not in keys]
    unknown = sorted(keys - set(required) - set(optional))
    if missing:
        raise _Bad(f"{raw['kind']}: missing {', '.join(missing)}")
    if unknown:
        raise _Bad(f"{raw['kind']}: unknown field {', '.join(unknown)}")


def _formula(raw: object, kinds: tuple[str, ...]) -> Formula:
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise _Bad("must be a table with a kind")
    kind = raw.get("kind")
    if kind not in kinds:
        raise _Bad(f"kind must be one of {', '.join(kinds)}, not {kind!r}")
    if kind == "reference_plus":
        _fields(raw, ("add_pp",))
        return RateCeiling(add_pp=_pp(raw["add_pp"]))
    if kind == "reference_plus_by_tier":
        _fields(raw, ("add_bp",))
        return _by_tier(raw["add_bp"])
    if kind == "share":
        _fields(raw, ("share",), ("micro_profit_only",))
        return SubsidyShare(_fraction(raw["share"]), _bool(raw.get("micro_profit_only", False)))
    if kind == "schedule":
        _fields(raw, ("by_loan_year",))
        years = raw["by_loan_year"]
        if not isinstance(years, list) or not years:
            raise _Bad("schedule: by_loan_year must be a non-empty list of shares")
        return SubsidySchedule(tuple(_fraction(y) for y in years))
    if kind == "reference_share":
        _fields(raw, ("share",))
        return SubsidyOfReference(_fraction(raw["share"]))
    if kind == "borrower_cap":
        _fields(raw, ("reference_minus_pp", "contracted_from", "earlier"))
        earlier = _formula(raw["earlier"], ("share", "schedule", "reference_share"))
        if not isinstance(earlier, SubsidyShare | SubsidySchedule | SubsidyOfReference):  # kinds above
            raise _Bad("borrower_cap: earlier must be a share, schedule or reference_share rule")
        return SubsidyBorrowerCap(_pp(raw["reference_minus_pp"]), _date(raw["contracted_from"]), earlier)
    if kind == "waiver":
        _fields(raw, ("credit_community", "syb_training_with_plan"), ("individual_loan_max",))
        limit = raw.get("individual_loan_max", _NONE_TEXT)
        return CreditGuaranteeWaiver(
            credit_community=_bool(raw["credit_community"]),
            syb_training_with_plan=_bool(raw["syb_training_with_plan"]),
            individual_loan_max=None if limit in (None, _NONE_TEXT) else _money(limit),
        )
    # other_loans: the only kind left in any spec
    _fields(raw, ("excepted", "consumer_loan_max"), ("includes_spouse",))
    excepted = raw["excepted"]
    if not isinstance(excepted, list) or any(k not in OTHER_LOAN_KINDS for k in excepted):
        raise _Bad(f"other_loans: excepted must list kinds from {', '.join(OTHER_LOAN_KINDS)}")
    return OtherLoansRule(
        excepted=tuple(k for k in OTHER_LOAN_KINDS if k in excepted),
        consumer_loan_max=_money(raw["consumer_loan_max"]),
        includes_spouse=_bool(raw.get("includes_spouse", True)),
    )


def _pp(raw: object) -> Decimal:
    if not isinstance(raw, str) or not _PP_RE.fullmatch(raw):
        raise _Bad('percentage points must be a decimal string like "3.00"')
    return Decimal(raw)


def _by_tier(raw: object) -> RateCeilingByTier:
    if not isinstance(raw, Mapping) or not raw:
        raise _Bad('add_bp must map tiers to basis points, like {"1" = 50}')
    pairs: dict[int, int] = {}
    for tier, bp in raw.items():
        if not isinstance(tier, str | int) or str(tier) not in ("1", "2", "3"):
            raise _Bad(f"add_bp: tier must be 1, 2 or 3, not {tier!r}")
        if isinstance(bp, bool) or not isinstance(bp, int) or bp < 0:
            raise _Bad(f"add_bp: basis points for tier {tier} must be a whole number >= 0")
        pairs[int(tier)] = bp
    return RateCeilingByTier.of(pairs)


# --- serialising ----------------------------------------------------------------------------------


def value_to_json(name: str, value: ParamValue) -> JSONValue:
    """The value in the form `parse_value` reads (yuan strings, percent strings, "2/3", ...)."""
    if value is NOT_ADMITTED:
        return NOT_ADMITTED.value
    if value is None:
        return None
    spec = REGISTRY[name]
    if spec.type == "money" and isinstance(value, int):
        return _yuan(value)
    if isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple):
        return list(value)
    return _formula_to_json(value)


def _yuan(fen: int) -> str:
    return format_fen(fen)


def _formula_to_json(value: Formula) -> dict[str, JSONValue]:
    if isinstance(value, RateCeiling):
        return {"kind": "reference_plus", "add_pp": format(value.add_pp, "f")}
    if isinstance(value, RateCeilingByTier):
        return {"kind": "reference_plus_by_tier", "add_bp": {str(t): bp for t, bp in value.add_bp}}
    if isinstance(value, SubsidyShare):
        return {"kind": "share", "share": str(value.share), "micro_profit_only": value.micro_profit_only}
    if isinstance(value, SubsidySchedule):
        return {"kind": "schedule", "by_loan_year": [str(f) for f in value.by_loan_year]}
    if isinstance(value, SubsidyOfReference):
        return {"kind": "reference_share", "share": str(value.share)}
    if isinstance(value, SubsidyBorrowerCap):
        return {
            "kind": "borrower_cap",
            "reference_minus_pp": format(value.reference_minus_pp, "f"),
            "contracted_from": value.contracted_from.isoformat(),
            "earlier": _formula_to_json(value.earlier),
        }
    if isinstance(value, CreditGuaranteeWaiver):
        limit = value.individual_loan_max
        return {
            "kind": "waiver",
            "credit_community": value.credit_community,
            "syb_training_with_plan": value.syb_training_with_plan,
            "individual_loan_max": None if limit is None else _yuan(limit),
        }
    return {
        "kind": "other_loans",
        "excepted": list(value.excepted),
        "consumer_loan_max": _yuan(value.consumer_loan_max),
        "includes_spouse": value.includes_spouse,
    }


# --- evaluating formulas --------------------------------------------------------------------------


def evaluate_rate_ceiling_pct(rule: RateCeilingRule, reference_rate_pct: Decimal, rate_tier: int) -> Decimal:
    """The highest contract rate in percent (inclusive); exact, no rounding."""
    if isinstance(rule, RateCeiling):
        return reference_rate_pct + rule.add_pp
    return reference_rate_pct + rule.add_pp_for(rate_tier)


def evaluate_subsidy_rate_pct(
    rule: SubsidyRule,
    *,
    contract_rate_pct: Decimal,
    reference_rate_pct: Decimal,
    contracted_on: date,
    loan_year: int,
    micro_profit: bool = False,
) -> Fraction:
    """Annual rate (percent) paid by finance on the principal, exact.

    Interest for a line is then principal × rate / 100 × days / day_count_basis, rounded once.
    `reference_rate_pct` is the loan's reference fixing on its contract date; it holds for the life
    of the loan (domain.md §3 notes). Finance never pays more than the contract rate.
    """
    contract = Fraction(contract_rate_pct)
    reference = Fraction(reference_rate_pct)
    if isinstance(rule, SubsidyBorrowerCap):
        if contracted_on < rule.contracted_from:
            return evaluate_subsidy_rate_pct(
                rule.earlier,
                contract_rate_pct=contract_rate_pct,
                reference_rate_pct=reference_rate_pct,
                contracted_on=contracted_on,
                loan_year=loan_year,
                micro_profit=micro_profit,
            )
        borrower_pays = max(Fraction(0), reference - Fraction(rule.reference_minus_pp))
        return max(Fraction(0), contract - borrower_pays)
    if isinstance(rule, SubsidyShare):
        if rule.micro_profit_only and not micro_profit:
            return Fraction(0)
        return rule.share * contract
    if isinstance(rule, SubsidySchedule):
        if loan_year < 1:
            raise ValueError(f"loan_year starts at 1, got {loan_year}")
        if loan_year > len(rule.by_loan_year):
            return Fraction(0)
        return rule.by_loan_year[loan_year - 1] * contract
    return min(rule.share * reference, contract)


def evaluate_credit_guarantee_allowed(
    waiver: CreditGuaranteeWaiver | NotAdmitted,
    *,
    borrower_kind: BorrowerKind,
    amount_fen: int,
    credit_community: bool,
    syb_trained_with_plan: bool,
) -> bool:
    """Whether a loan may go without counter-guarantee; every waiver in the editions is for individuals."""
    if waiver is NOT_ADMITTED or borrower_kind != "individual":
        return False
    if waiver.credit_community and credit_community:
        return True
    if waiver.syb_training_with_plan and syb_trained_with_plan:
        return True
    return waiver.individual_loan_max is not None and amount_fen <= waiver.individual_loan_max


def evaluate_other_loans_permitted(rule: OtherLoansRule | None, loans: Iterable[tuple[str, int]]) -> bool:
    """Whether the (kind, amount_fen) loans held by borrower (and spouse) allow a new loan."""
    if rule is None:
        return True
    for kind, amount_fen in loans:
        if kind not in rule.excepted:
            return False
        if kind == "consumer" and amount_fen > rule.consumer_loan_max:
            return False
    return True

"""Policy editions (one TOML file each), fund policies (edition + overrides) and their evaluation.

An edition file names its parent in `inherits`; what it does not write it inherits, keeping the
parent's tag and citation. Every file is checked against `REGISTRY` when loaded, so a typo or a
missing rule stops the service at start rather than on the first loan that needs it.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from loanfund.errors import PolicyError, UnknownPolicyEdition
from loanfund.policy.parameters import (
    FILE_TAGS,
    NOT_ADMITTED,
    REGISTRY,
    BorrowerKind,
    CreditGuaranteeWaiver,
    JSONValue,
    NotAdmitted,
    OtherLoansRule,
    ParamType,
    ParamValue,
    RateCeiling,
    RateCeilingByTier,
    SubsidyBorrowerCap,
    SubsidyOfReference,
    SubsidySchedule,
    SubsidyShare,
    Tag,
    evaluate_credit_guarantee_allowed,
    evaluate_other_loans_permitted,
    evaluate_rate_ceiling_pct,
    evaluate_subsidy_rate_pct,
    parse_value,
    value_to_json,
)
from loanfund.terms import add_months

__all__ = [
    "Edition",
    "Parameter",
    "Policy",
    "credit_guarantee_allowed",
    "edition_codes",
    "firm_new_hire_share_pct",
    "get_edition",
    "load_editions",
    "load_editions_from",
    "loan_year",
    "other_loans_permitted",
    "partnership_cap_fen",
    "policy_in_force",
    "policy_to_json",
    "rate_ceiling_pct",
    "rate_within_ceiling",
    "resolve_policy",
    "subsidy_rate_pct",
    "validate_overrides",
]

_CODE_RE = re.compile(r"[a-z]{2}-[0-9]{4}[a-z0-9-]*")
_META_KEYS = {"code", "name", "source", "published_on", "inherits", "params"}
OVERRIDE_CITATION = "fund override"


@dataclass(frozen=True)
class Parameter:
    name: str
    value: ParamValue
    type: ParamType
    tag: Tag
    citation: str
    edition: str  # the edition whose file set this value; for an override, the policy's edition


class _ParamAccess:
    """Typed reads shared by editions and policies; each refuses a parameter of another type."""

    params: Mapping[str, Parameter]

    def param(self, name: str) -> Parameter:
        try:
            return self.params[name]
        except KeyError:
            raise PolicyError(f"unknown parameter {name!r}", parameter=name) from None

    def value(self, name: str) -> ParamValue:
        return self.param(name).value

    def admits(self, name: str) -> bool:
        """False for a "—" cell (e.g. small_firm_cap under cn-2002)."""
        return self.param(name).value is not NOT_ADMITTED

    def _typed(self, name: str, *types: ParamType) -> object:
        param = self.param(name)
        if param.type not in types:
            raise TypeError(f"parameter {name!r} is {param.type}, not {' or '.join(types)}")
        if param.value is NOT_ADMITTED:
            raise PolicyError(f"{name} is not admitted under this policy", parameter=name)
        return param.value

    def money(self, name: str) -> int:
        value = self._typed(name, "money")
        assert isinstance(value, int)
        return value

    def integer(self, name: str) -> int:
        """An int or months value; a nullable one that is none raises (use optional_integer)."""
        value = self._typed(name, "int", "months")
        if not isinstance(value, int):
            raise PolicyError(f"{name} has no value under this policy", parameter=name)
        return value

    def optional_integer(self, name: str) -> int | None:
        value = self._typed(name, "int", "months")
        assert value is None or isinstance(value, int)
        return value

    def percent(self, name: str) -> Decimal:
        value = self._typed(name, "percent")
        assert isinstance(value, Decimal)
        return value

    def flag(self, name: str) -> bool:
        value = self._typed(name, "bool")
        assert isinstance(value, bool)
        return value

    def categories(self, name: str = "individual_categories") -> tuple[str, ...]:
        value = self._typed(name, "categories")
        assert isinstance(value, tuple)
        return value

    def employer_kinds(self, name: str = "guarantor_employer_kinds") -> tuple[str, ...]:
        value = self._typed(name, "employer_kinds")
        assert isinstance(value, tuple)
        return value


@dataclass(frozen=True)
class Edition(_ParamAccess):
    code: str
    name: str
    source: str
    published_on: date | None  # None when only the year is known (see published_year)
    published_year: int
    inherits: str | None
    params: Mapping[str, Parameter] = field(hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class Policy(_ParamAccess):
    """A fund's rules: an edition plus the fund's overrides. Immutable."""

    edition: str
    params: Mapping[str, Parameter] = field(hash=False, repr=False)
    overrides: Mapping[str, JSONValue] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))


# --- loading --------------------------------------------------------------------------------------


def _fail(code: str, message: str, **facts: object) -> PolicyError:
    return PolicyError(f"policy edition {code}: {message}", edition=code, **facts)


def _read_files(directory: Traversable) -> dict[str, dict[str, object]]:
    raw: dict[str, dict[str, object]] = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        stem = entry.name.removesuffix(".toml")
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise _fail(stem, f"{entry.name} is not valid TOML: {exc}") from None
        if data.get("code") != stem:
            raise _fail(stem, f"{entry.name} must declare code = {stem!r}")
        raw[stem] = data
    if not raw:
        raise PolicyError(f"no policy editions found in {directory}")
    return raw


def _metadata(code: str, data: Mapping[str, object]) -> tuple[str, str, date | None, int, str | None]:
    unknown = sorted(set(data) - _META_KEYS)
    if unknown:
        raise _fail(code, f"unknown key {unknown[0]!r}", key=unknown[0])
    if not _CODE_RE.fullmatch(code):
        raise _fail(code, "code must look like cn-2008")
    name, source = data.get("name"), data.get("source")
    if not isinstance(name, str) or not name or not isinstance(source, str) or not source:
        raise _fail(code, "name and source must be non-empty strings")
    published = data.get("published_on")
    # A date where the day is verified; a year string ("2016") where only the year is.
    if isinstance(published, date):
        published_on, year = published, published.year
    elif isinstance(published, str) and re.fullmatch(r"[12][0-9]{3}", published):
        published_on, year = None, int(published)
    else:
        raise _fail(code, 'published_on must be a date or a year string like "2016"')
    inherits = data.get("inherits")
    if inherits is not None and not isinstance(inherits, str):
        raise _fail(code, "inherits must be an edition code")
    return name, source, published_on, year, inherits


def _own_params(code: str, data: Mapping[str, object]) -> dict[str, Parameter]:
    table = data.get("params", {})
    if not isinstance(table, Mapping):
        raise _fail(code, "params must be a table")
    own: dict[str, Parameter] = {}
    for name, entry in table.items():
        if name not in REGISTRY:
            raise _fail(code, f"unknown parameter {name!r}", parameter=name)
        if not isinstance(entry, Mapping) or set(entry) != {"value", "tag", "citation"}:
            raise _fail(code, f"parameter {name!r} needs exactly value, tag and citation", parameter=name)
        tag, citation = entry["tag"], entry["citation"]
        if tag not in FILE_TAGS:
            raise _fail(
                code, f"parameter {name!r}: tag must be one of {', '.join(FILE_TAGS)}", parameter=name
            )
        if not isinstance(citation, str) or not citation.strip():
            raise _fail(code, f"parameter {name!r}: citation must be a non-empty string", parameter=name)
        value = parse_value(name, entry["value"], where=f"policy edition {code}")
        own[name] = Parameter(name, value, REGISTRY[name].type, tag, citation, code)
    return own


def load_editions_from(directory: Traversable | Path) -> Mapping[str, Edition]:
    """Read and check every `*.toml` edition in `directory`; raises PolicyError on the first fault."""
    raw = _read_files(directory)
    built: dict[str, Edition] = {}

    def build(code: str, chain: tuple[str, ...]) -> Edition:
        if code in built:
            return built[code]
        if code in chain:
            raise _fail(code, f"inheritance cycle {' -> '.join((*chain, code))}")
        data = raw[code]
        name, source, published_on, year, inherits = _metadata(code, data)
        params: dict[str, Parameter] = {}
        if inherits is not None:
            if inherits not in raw:
                raise _fail(code, f"inherits unknown edition {inherits!r}")
            params.update(build(inherits, (*chain, code)).params)
        params.update(_own_params(code, data))
        missing = [n for n in REGISTRY if n not in params]
        if missing:
            raise _fail(code, f"missing parameter {missing[0]!r}", parameter=missing[0], missing=missing)
        ordered = {n: params[n] for n in REGISTRY}
        built[code] = Edition(code, name, source, published_on, year, inherits, ordered)
        return built[code]

    for code in raw:
        build(code, ())
    return MappingProxyType(dict(sorted(built.items())))


@functools.cache
def load_editions() -> Mapping[str, Edition]:
    """The shipped editions (package data), loaded once."""
    return load_editions_from(files("loanfund.policy") / "editions")


def edition_codes() -> tuple[str, ...]:
    return tuple(load_editions())


def get_edition(code: str) -> Edition:
    edition = load_editions().get(code)
    if edition is None:
        raise UnknownPolicyEdition(
            f"unknown policy edition {code!r}; known: {', '.join(load_editions())}", edition=code
        )
    return edition


# --- fund policies --------------------------------------------------------------------------------


def _parse_overrides(overrides: object) -> dict[str, ParamValue]:
    if not isinstance(overrides, Mapping):
        raise PolicyError(
            "policy_overrides must be an object",
            errors=[{"field": "policy_overrides", "message": "must be an object"}],
        )
    parsed: dict[str, ParamValue] = {}
    for name, raw in overrides.items():
        if not isinstance(name, str) or name not in REGISTRY:
            message = f"unknown parameter {name!r}"
            raise PolicyError(
                f"policy_overrides.{name}: {message}",
                parameter=name,
                errors=[{"field": f"policy_overrides.{name}", "message": message}],
            )
        parsed[name] = parse_value(name, raw, where="policy_overrides")
    return parsed


def validate_overrides(overrides: object) -> dict[str, JSONValue]:
    """Check API/DB overrides against the registry; returns them in normalised JSON form."""
    return {name: value_to_json(name, value) for name, value in _parse_overrides(overrides).items()}


def resolve_policy(edition_code: str, overrides: Mapping[str, object] | None = None) -> Policy:
    """The edition's parameters with the fund's overrides on top (tagged "override")."""
    edition = get_edition(edition_code)
    parsed = _parse_overrides(overrides if overrides is not None else {})
    params = dict(edition.params)
    for name, value in parsed.items():
        params[name] = Parameter(
            name, value, REGISTRY[name].type, "override", OVERRIDE_CITATION, edition_code
        )
    normalised = {name: value_to_json(name, value) for name, value in parsed.items()}
    return Policy(edition=edition_code, params=params, overrides=normalised)


def policy_in_force(dated: Sequence[tuple[date, str, Mapping[str, object]]], on: date) -> Policy:
    """The fund policy for `on` from its (effective_from, edition, overrides) history.

    The earliest entry holds from the start of time (a fund's first policy covers its whole past);
    later ones from their own date; on a tie the later-listed entry wins.
    """
    if not dated:
        raise PolicyError("a fund needs at least one policy")
    ordered = sorted(enumerate(dated), key=lambda item: (item[1][0], item[0]))
    chosen = ordered[0][1]
    for _, entry in ordered[1:]:
        if entry[0] <= on:
            chosen = entry
    return resolve_policy(chosen[1], chosen[2])


def policy_to_json(policy: Policy) -> dict[str, JSONValue]:
    """The fund's policy for display: every parameter with JSON value, type, tag, citation, source."""
    parameters: dict[str, JSONValue] = {}
    for name, param in policy.params.items():
        parameters[name] = {
            "value": value_to_json(name, param.value),
            "type": param.type,
            "tag": param.tag,
            "citation": param.citation,
            "edition": param.edition,
        }
    return {"edition": policy.edition, "overrides": dict(policy.overrides), "parameters": parameters}


# --- evaluation -----------------------------------------------------------------------------------


def rate_ceiling_pct(
    policy: _ParamAccess, reference_rate_pct: Decimal, rate_tier: int | None = None
) -> Decimal:
    """Highest contract rate (inclusive), exact. `rate_tier` defaults to the policy's rate_tier_default."""
    rule = policy.value("rate_ceiling")
    if not isinstance(rule, RateCeiling | RateCeilingByTier):  # the registry admits nothing else
        raise PolicyError("rate_ceiling has no formula", parameter="rate_ceiling")
    tier = policy.integer("rate_tier_default") if rate_tier is None else rate_tier
    return evaluate_rate_ceiling_pct(rule, reference_rate_pct, tier)


def rate_within_ceiling(
    policy: _ParamAccess, annual_rate_pct: Decimal, reference_rate_pct: Decimal, rate_tier: int | None = None
) -> bool:
    return annual_rate_pct <= rate_ceiling_pct(policy, reference_rate_pct, rate_tier)


def subsidy_rate_pct(
    policy: _ParamAccess,
    borrower_kind: BorrowerKind,
    *,
    contract_rate_pct: Decimal,
    reference_rate_pct: Decimal,
    contracted_on: date,
    loan_year: int,
    micro_profit: bool = False,
) -> Fraction:
    """Annual percent finance pays on the principal for days in `loan_year` (0 if not admitted).

    Extension and overdue days are never subsidised: the caller excludes them before using this rate.
    """
    rule = policy.value("subsidy_individual" if borrower_kind == "individual" else "subsidy_firm")
    if rule is NOT_ADMITTED:
        return Fraction(0)
    if not isinstance(rule, SubsidyShare | SubsidySchedule | SubsidyOfReference | SubsidyBorrowerCap):
        raise PolicyError("subsidy rule has no formula", parameter="subsidy")
    return evaluate_subsidy_rate_pct(
        rule,
        contract_rate_pct=contract_rate_pct,
        reference_rate_pct=reference_rate_pct,
        contracted_on=contracted_on,
        loan_year=loan_year,
        micro_profit=micro_profit,
    )


def loan_year(contracted_on: date, on: date) -> int:
    """1 for the first twelve months from the contract date, 2 for the next twelve, ...

    Anniversaries use terms.add_months, so a loan contracted on 29 February turns a year on 28 February.
    """
    if on < contracted_on:
        raise ValueError(f"{on.isoformat()} is before the contract date {contracted_on.isoformat()}")
    year = (on.year - contracted_on.year) + 1
    # The estimate is right or one too high (anniversary not reached yet this calendar year).
    if add_months(contracted_on, 12 * (year - 1)) > on:
        year -= 1
    return year


def credit_guarantee_allowed(
    policy: _ParamAccess,
    *,
    borrower_kind: BorrowerKind,
    amount_fen: int,
    credit_community: bool,
    syb_trained_with_plan: bool,
) -> bool:
    waiver = policy.value("credit_guarantee_waiver")
    if not isinstance(waiver, CreditGuaranteeWaiver | NotAdmitted):
        raise PolicyError("credit_guarantee_waiver has no rule", parameter="credit_guarantee_waiver")
    return evaluate_credit_guarantee_allowed(
        waiver,
        borrower_kind=borrower_kind,
        amount_fen=amount_fen,
        credit_community=credit_community,
        syb_trained_with_plan=syb_trained_with_plan,
    )


def other_loans_permitted(policy: _ParamAccess, loans: Iterable[tuple[str, int]]) -> bool:
    """Whether the other loans (kind, amount_fen) of borrower and spouse allow this one."""
    rule = policy.value("other_loans_rule")
    if rule is not None and not isinstance(rule, OtherLoansRule):
        raise PolicyError("other_loans_rule has no rule", parameter="other_loans_rule")
    return evaluate_other_loans_permitted(rule, loans)


def partnership_cap_fen(policy: _ParamAccess, members: int) -> int:
    """Cap for a partnership of `members` individuals; rounded down, so the cap is never exceeded."""
    total = (
        Fraction(policy.money("individual_cap") * members)
        * Fraction(policy.percent("partnership_cap_pct"))
        / 100
    )
    return total.numerator // total.denominator


def firm_new_hire_share_pct(policy: _ParamAccess, staff_count: int) -> Decimal:
    """Required share of eligible new hires (percent of current staff) for a firm of this size."""
    threshold = policy.integer("firm_size_threshold_staff")
    small = staff_count <= threshold
    return policy.percent("firm_new_hire_share_small_pct" if small else "firm_new_hire_share_large_pct")

"""Policy editions: every cell of domain.md §3, loading faults, overrides, dated policies, formulas.

The expected table below is written from domain.md, not from the TOML files, so a wrong file fails here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from fractions import Fraction
from importlib.resources import files
from pathlib import Path

import pytest

from loanfund.errors import PolicyError, UnknownPolicyEdition
from loanfund.money import round_to_fen
from loanfund.policy import (
    CATEGORIES,
    NOT_ADMITTED,
    REGISTRY,
    BorrowerKind,
    CreditGuaranteeWaiver,
    OtherLoansRule,
    RateCeiling,
    RateCeilingByTier,
    SubsidyBorrowerCap,
    SubsidyOfReference,
    SubsidySchedule,
    SubsidyShare,
    credit_guarantee_allowed,
    firm_new_hire_share_pct,
    get_edition,
    load_editions,
    load_editions_from,
    loan_year,
    other_loans_permitted,
    partnership_cap_fen,
    policy_in_force,
    policy_to_json,
    rate_ceiling_pct,
    rate_within_ceiling,
    resolve_policy,
    subsidy_rate_pct,
    validate_overrides,
)

EDITIONS = ("cn-2002", "cn-2008", "cn-2016", "cn-2018", "cn-2020")
NA = NOT_ADMITTED
D = Decimal
F = Fraction

TAPER = SubsidySchedule((F(1), F(2, 3), F(1, 3)))
HALF_OF_REFERENCE = SubsidyOfReference(F(1, 2))
PLUS_3PP = RateCeiling(D("3.00"))
WAIVER_2008 = CreditGuaranteeWaiver(credit_community=True, syb_training_with_plan=True)
CATEGORIES_2008 = (
    "laid_off",
    "registered_unemployed",
    "hard_to_employ",
    "bankrupt_soe_staff",
    "veteran",
    "graduate",
)
ALL_CATEGORIES = (
    *CATEGORIES_2008,
    "returning_migrant",
    "rural_entrepreneur",
    "disabled",
    "poverty_registered",
)


def row(*values: object) -> dict[str, object]:
    assert len(values) == len(EDITIONS)
    return dict(zip(EDITIONS, values, strict=True))


# domain.md §3, one row per table row (and per part of a split cell); money in fen.
TABLE: dict[str, dict[str, object]] = {
    "individual_cap": row(2_000_000, 5_000_000, 10_000_000, 15_000_000, 20_000_000),
    "partnership_cap_pct": row(D(100), D(100), D(100), D(100), D(110)),
    "small_firm_cap": row(NA, 200_000_000, 200_000_000, 300_000_000, 300_000_000),
    "firm_new_hire_share_small_pct": row(NA, D(30), D(30), D(25), D(15)),
    "firm_new_hire_share_large_pct": row(NA, D(15), D(15), D(15), D(8)),
    "firm_size_threshold_staff": row(NA, 100, 100, 100, 100),
    "max_term_individual_months": row(24, 24, 36, 36, 36),
    "max_term_firm_months": row(NA, 24, 24, 24, 24),
    "extension_max_count": row(1, 1, 1, 1, 1),
    "extension_max_months": row(12, 12, 12, 12, 12),
    "extension_needs_guarantor_consent": row(True, True, True, True, True),
    "extension_subsidised": row(False, False, False, False, False),
    "rate_ceiling": row(
        RateCeiling(D(0)), PLUS_3PP, PLUS_3PP, PLUS_3PP, RateCeilingByTier.of({1: 50, 2: 150, 3: 250})
    ),
    "subsidy_individual": row(
        SubsidyShare(F(1), micro_profit_only=True),
        SubsidyShare(F(1)),
        TAPER,
        TAPER,
        SubsidyBorrowerCap(D("1.50"), date(2021, 1, 1), TAPER),
    ),
    "subsidy_firm": row(
        NA,
        HALF_OF_REFERENCE,
        HALF_OF_REFERENCE,
        HALF_OF_REFERENCE,
        SubsidyBorrowerCap(D("1.50"), date(2021, 1, 1), HALF_OF_REFERENCE),
    ),
    "leverage_multiple_max": row(5, 5, 10, 10, 10),
    "leverage_multiple_min_expected": row(None, 3, 5, 5, 5),
    "repeat_support_max": row(None, None, None, 3, 3),
    "borrower_max_age": row(60, 60, 60, 60, 60),
    "individual_categories": row(
        ("laid_off",), CATEGORIES_2008, ALL_CATEGORIES, ALL_CATEGORIES, ALL_CATEGORIES
    ),
    "small_firms_admitted": row(False, True, True, True, True),
    "credit_guarantee_waiver": row(
        NA,
        WAIVER_2008,
        WAIVER_2008,
        WAIVER_2008,
        CreditGuaranteeWaiver(True, True, individual_loan_max=10_000_000),
    ),
}

OTHER_LOANS_2018 = OtherLoansRule(
    excepted=("student", "poverty_relief", "housing", "car", "consumer"), consumer_loan_max=5_000_000
)
# The shared notes and our own rules, same in every edition unless given per edition.
NOTES: dict[str, dict[str, object]] = {
    "reservation_days": row(21, 21, 21, 21, 21),
    "guarantor_max_active": row(2, 2, 2, 2, 2),
    "day_count_basis": row(360, 360, 360, 360, 360),
    "subsidy_period_kinds": row(*[("quarter",)] * 5),
    "compensation_rate_suspend_pct": row(D(5), D(5), D(5), D(5), D(5)),
    "rate_tier_default": row(1, 1, 1, 1, 1),
    "laid_off_certificate_required": row(True, True, True, True, True),
    "other_loans_rule": row(None, None, None, OTHER_LOANS_2018, OTHER_LOANS_2018),
    "guarantor_employer_kinds": row(*[("civil_service", "public_institution")] * 5),
    "graduate_window_years": row(None, 2, 2, 2, 2),
}

# Tags the table gives for a cell; a blank cell keeps the tag of the edition it inherits from.
TAGS: dict[tuple[str, str], str] = {
    ("individual_cap", "cn-2002"): "N",
    ("individual_cap", "cn-2018"): "N",
    ("individual_cap", "cn-2020"): "L",
    ("partnership_cap_pct", "cn-2002"): "N",
    ("partnership_cap_pct", "cn-2008"): "?",
    ("partnership_cap_pct", "cn-2016"): "?",
    ("partnership_cap_pct", "cn-2020"): "L",
    ("small_firm_cap", "cn-2016"): "L",
    ("firm_new_hire_share_small_pct", "cn-2008"): "?",
    ("firm_new_hire_share_small_pct", "cn-2018"): "N",
    ("max_term_individual_months", "cn-2008"): "L",
    ("max_term_individual_months", "cn-2018"): "N",  # "36 months" untagged: inherits cn-2016's
    ("max_term_firm_months", "cn-2016"): "?",
    ("extension_max_months", "cn-2016"): "N",
    ("extension_max_months", "cn-2018"): "N",
    ("extension_max_months", "cn-2020"): "L",
    ("rate_ceiling", "cn-2002"): "N",
    ("rate_ceiling", "cn-2008"): "N",
    ("rate_ceiling", "cn-2016"): "?",
    ("rate_ceiling", "cn-2020"): "?",
    ("subsidy_individual", "cn-2016"): "L",
    ("subsidy_individual", "cn-2018"): "?",
    ("subsidy_firm", "cn-2018"): "L",
    ("leverage_multiple_max", "cn-2002"): "?",
    ("leverage_multiple_min_expected", "cn-2008"): "L",
    ("repeat_support_max", "cn-2018"): "L",
    ("borrower_max_age", "cn-2020"): "N",
    ("credit_guarantee_waiver", "cn-2020"): "L",
    ("reservation_days", "cn-2020"): "ours",
    ("guarantor_max_active", "cn-2002"): "ours",
    ("day_count_basis", "cn-2002"): "?",
    ("subsidy_period_kinds", "cn-2002"): "L",
    ("subsidy_period_kinds", "cn-2020"): "L",
    ("compensation_rate_suspend_pct", "cn-2002"): "L",
    ("guarantor_employer_kinds", "cn-2020"): "L",
    ("graduate_window_years", "cn-2002"): "ours",
    ("graduate_window_years", "cn-2020"): "?",
}


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("name", [*TABLE, *NOTES])
def test_every_cell_of_the_table(edition: str, name: str) -> None:
    expected = {**TABLE, **NOTES}[name][edition]
    assert resolve_policy(edition, {}).value(name) == expected
    assert get_edition(edition).value(name) == expected


def test_the_table_covers_the_whole_registry() -> None:
    assert set(TABLE) | set(NOTES) == set(REGISTRY)
    assert set(CATEGORIES) == set(ALL_CATEGORIES)


@pytest.mark.parametrize(("key", "tag"), TAGS.items(), ids=[f"{n}@{e}" for n, e in TAGS])
def test_tags(key: tuple[str, str], tag: str) -> None:
    name, edition = key
    assert get_edition(edition).param(name).tag == tag


def test_sources_and_metadata() -> None:
    editions = load_editions()
    assert tuple(editions) == EDITIONS
    assert editions["cn-2002"].source == "银发[2002]394号"
    assert editions["cn-2002"].published_on == date(2002, 12, 24)
    assert "银发[2008]238号" in editions["cn-2008"].source
    assert "财金[2008]100号" in editions["cn-2008"].source
    assert editions["cn-2020"].source == "财金[2020]21号"
    assert [e.inherits for e in editions.values()] == [None, "cn-2002", "cn-2008", "cn-2016", "cn-2018"]
    assert [e.published_year for e in editions.values()] == [2002, 2008, 2016, 2018, 2020]


def test_every_parameter_is_tagged_and_cited() -> None:
    for edition in load_editions().values():
        assert list(edition.params) == list(REGISTRY)
        for param in edition.params.values():
            assert param.tag in ("N", "L", "?", "ours")
            assert param.citation.strip()
            assert param.type == REGISTRY[param.name].type


def test_blank_cells_inherit_with_their_source() -> None:
    cn2018 = get_edition("cn-2018")
    assert cn2018.param("max_term_individual_months").edition == "cn-2016"
    assert cn2018.param("borrower_max_age").edition == "cn-2002"
    assert (
        cn2018.param("borrower_max_age").citation == get_edition("cn-2002").param("borrower_max_age").citation
    )
    # cn-2016 keeps the cn-2008 ceiling (the notice gives no figure), tagged as unverified.
    assert get_edition("cn-2016").value("rate_ceiling") == get_edition("cn-2008").value("rate_ceiling")
    assert get_edition("cn-2020").param("leverage_multiple_max").edition == "cn-2016"


def test_package_data_holds_one_file_per_edition() -> None:
    directory = files("loanfund.policy") / "editions"
    names = sorted(entry.name for entry in directory.iterdir() if entry.name.endswith(".toml"))
    assert names == [f"{code}.toml" for code in EDITIONS]


def test_unknown_edition() -> None:
    with pytest.raises(UnknownPolicyEdition):
        get_edition("cn-1999")
    with pytest.raises(UnknownPolicyEdition):
        resolve_policy("cn-1999", {})


# --- loading faults -----------------------------------------------------------------------------


def shipped_copy(tmp_path: Path) -> Path:
    for entry in (files("loanfund.policy") / "editions").iterdir():
        if entry.name.endswith(".toml"):
            (tmp_path / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_a_copy_of_the_shipped_files_loads(tmp_path: Path) -> None:
    assert load_editions_from(shipped_copy(tmp_path)) == load_editions()


def test_unknown_parameter_fails(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    with (directory / "cn-2008.toml").open("a", encoding="utf-8") as f:
        f.write('\n[params.individual_kap]\nvalue = "50000"\ntag = "N"\ncitation = "typo"\n')
    with pytest.raises(PolicyError, match=r"cn-2008.*individual_kap") as info:
        load_editions_from(directory)
    assert info.value.facts["edition"] == "cn-2008"
    assert info.value.facts["parameter"] == "individual_kap"


def test_missing_parameter_fails(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    path = directory / "cn-2002.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("[params.guarantor_max_active]")
    path.write_text(text[:start], encoding="utf-8")
    with pytest.raises(PolicyError, match=r"cn-2002.*guarantor_max_active"):
        load_editions_from(directory)


def write(directory: Path, code: str, body: str, inherits: str | None = None) -> None:
    head = f'code = "{code}"\nname = "x"\nsource = "x"\npublished_on = "2030"\n'
    if inherits:
        head += f'inherits = "{inherits}"\n'
    (directory / f"{code}.toml").write_text(head + body, encoding="utf-8")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('value = 50000\ntag = "N"\ncitation = "x"', "yuan string"),
        ('value = "50000.001"\ntag = "N"\ncitation = "x"', "individual_cap"),
        ('value = "not_admitted"\ntag = "N"\ncitation = "x"', "not_admitted"),
        ('value = "none"\ntag = "N"\ncitation = "x"', "none"),
        ('value = "50000"\ntag = "override"\ncitation = "x"', "tag"),
        ('value = "50000"\ntag = "N"\ncitation = ""', "citation"),
        ('value = "50000"\ntag = "N"', "value, tag and citation"),
    ],
)
def test_bad_entries_fail(tmp_path: Path, entry: str, message: str) -> None:
    directory = shipped_copy(tmp_path)
    write(directory, "cn-2030", f"[params.individual_cap]\n{entry}\n", inherits="cn-2020")
    with pytest.raises(PolicyError, match=message) as info:
        load_editions_from(directory)
    assert "cn-2030" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        '{ kind = "reference_plus", add_pp = 3.0 }',
        '{ kind = "reference_plus_by_tier", add_bp = { 4 = 50 } }',
        '{ kind = "share", share = "1" }',  # a subsidy kind where a ceiling belongs
        '{ kind = "reference_plus", add_pp = "3", extra = 1 }',
        '"3.00"',
    ],
)
def test_bad_formulas_fail(tmp_path: Path, value: str) -> None:
    directory = shipped_copy(tmp_path)
    write(
        directory,
        "cn-2030",
        f'[params.rate_ceiling]\nvalue = {value}\ntag = "?"\ncitation = "x"\n',
        "cn-2020",
    )
    with pytest.raises(PolicyError, match=r"cn-2030.*rate_ceiling"):
        load_editions_from(directory)


def test_bad_schedule_share_fails(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    value = '{ kind = "schedule", by_loan_year = [0.5] }'
    body = f'[params.subsidy_individual]\nvalue = {value}\ntag = "?"\ncitation = "x"\n'
    write(directory, "cn-2030", body, "cn-2020")
    with pytest.raises(PolicyError, match="subsidy_individual"):
        load_editions_from(directory)


def test_structural_faults_fail(tmp_path: Path) -> None:
    write(tmp_path, "cn-2030", "", inherits="cn-2031")
    write(tmp_path, "cn-2031", "", inherits="cn-2030")
    with pytest.raises(PolicyError, match="cycle"):
        load_editions_from(tmp_path)
    write(tmp_path, "cn-2031", "", inherits="cn-1999")
    with pytest.raises(PolicyError, match="unknown edition"):
        load_editions_from(tmp_path)
    (tmp_path / "cn-2031.toml").write_text('code = "cn-2032"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="must declare code"):
        load_editions_from(tmp_path)
    (tmp_path / "cn-2031.toml").write_text("code = [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_editions_from(tmp_path)


def test_unknown_top_level_key_fails(tmp_path: Path) -> None:
    directory = shipped_copy(tmp_path)
    write(directory, "cn-2030", "[parameters.individual_cap]\nvalue = 1\n", "cn-2020")
    with pytest.raises(PolicyError, match="unknown key 'parameters'"):
        load_editions_from(directory)


# --- overrides and dated policies -----------------------------------------------------------------


def test_overrides_apply_and_are_tagged() -> None:
    policy = resolve_policy("cn-2018", {"individual_cap": "80000", "reservation_days": 30})
    assert policy.edition == "cn-2018"
    assert policy.money("individual_cap") == 8_000_000
    assert policy.integer("reservation_days") == 30
    assert policy.param("individual_cap").tag == "override"
    assert policy.param("individual_cap").edition == "cn-2018"
    assert policy.param("small_firm_cap").tag == "N"
    assert dict(policy.overrides) == {"individual_cap": "80000.00", "reservation_days": 30}
    assert get_edition("cn-2018").money("individual_cap") == 15_000_000  # the edition is untouched


def test_override_formulas_and_special_values() -> None:
    policy = resolve_policy(
        "cn-2016",
        {
            "rate_ceiling": {"kind": "reference_plus", "add_pp": "2.50"},
            "repeat_support_max": None,
            "small_firm_cap": "not_admitted",
            "individual_categories": ["veteran", "laid_off"],
        },
    )
    assert policy.value("rate_ceiling") == RateCeiling(D("2.50"))
    assert policy.value("small_firm_cap") is NOT_ADMITTED
    assert not policy.admits("small_firm_cap")
    assert policy.categories() == ("laid_off", "veteran")
    assert policy.optional_integer("repeat_support_max") is None


def test_policy_is_immutable() -> None:
    policy = resolve_policy("cn-2020", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.edition = "cn-2002"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.params["individual_cap"] = policy.params["small_firm_cap"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.overrides["x"] = 1  # type: ignore[index]
    assert resolve_policy("cn-2020", {}) == policy


@pytest.mark.parametrize(
    "overrides",
    [
        {"individual_cap": 80000},
        {"individual_cap": "80000.001"},
        {"individual_cap": None},
        {"individual_cap": "not_admitted"},
        {"reservation_days": "30"},
        {"reservation_days": True},
        {"reservation_days": 0},
        {"partnership_cap_pct": 1.1},
        {"partnership_cap_pct": "-5"},
        {"rate_tier_default": 4},
        {"day_count_basis": 364},
        {"subsidy_period_kinds": []},
        {"subsidy_period_kinds": ["week"]},
        {"subsidy_period_kinds": ["quarter", "quarter"]},
        {"subsidy_period_kinds": "quarter"},
        {"small_firms_admitted": "yes"},
        {"individual_categories": ["laid_off", "astronaut"]},
        {"individual_categories": ["laid_off", "laid_off"]},
        {"individual_categories": "laid_off"},
        {"rate_ceiling": {"kind": "reference_plus", "add_pp": 3}},
        {"subsidy_individual": {"kind": "schedule", "by_loan_year": ["1", "3/2"]}},
        {"subsidy_individual": {"kind": "borrower_cap", "reference_minus_pp": "1.50"}},
        {"no_such_parameter": 1},
    ],
)
def test_bad_overrides_fail(overrides: dict[str, object]) -> None:
    name = next(iter(overrides))
    with pytest.raises(PolicyError, match=name) as info:
        validate_overrides(overrides)
    assert info.value.code == "validation_error"
    assert info.value.facts["parameter"] == name
    with pytest.raises(PolicyError):
        resolve_policy("cn-2020", overrides)


def test_overrides_must_be_an_object() -> None:
    with pytest.raises(PolicyError):
        validate_overrides(["individual_cap"])


def test_validate_overrides_normalises() -> None:
    assert validate_overrides(
        {
            "individual_cap": "80000",
            "compensation_rate_suspend_pct": "7.5",
            "repeat_support_max": "none",
            "subsidy_firm": {"kind": "reference_share", "share": "1/2"},
        }
    ) == {
        "individual_cap": "80000.00",
        "compensation_rate_suspend_pct": "7.5",
        "repeat_support_max": None,
        "subsidy_firm": {"kind": "reference_share", "share": "1/2"},
    }


def test_policy_in_force_picks_by_date() -> None:
    dated: list[tuple[date, str, Mapping[str, object]]] = [
        (date(2021, 1, 1), "cn-2020", {"rate_tier_default": 1}),
        (date(2009, 6, 1), "cn-2008", {}),
        (date(2016, 1, 1), "cn-2016", {"individual_cap": "60000"}),
    ]
    assert policy_in_force(dated, date(2003, 5, 1)).edition == "cn-2008"  # first entry holds from date.min
    assert policy_in_force(dated, date(2015, 12, 31)).edition == "cn-2008"
    p2016 = policy_in_force(dated, date(2016, 1, 1))
    assert p2016.edition == "cn-2016"
    assert p2016.money("individual_cap") == 6_000_000
    p2021 = policy_in_force(dated, date(2023, 1, 10))
    assert (p2021.edition, p2021.integer("rate_tier_default")) == ("cn-2020", 1)
    with pytest.raises(PolicyError):
        policy_in_force([], date(2023, 1, 1))


def test_policy_in_force_same_date_later_entry_wins() -> None:
    dated: list[tuple[date, str, Mapping[str, object]]] = [
        (date(2020, 1, 1), "cn-2016", {}),
        (date(2020, 1, 1), "cn-2018", {}),
    ]
    assert policy_in_force(dated, date(2020, 1, 1)).edition == "cn-2018"


@pytest.mark.parametrize("edition", EDITIONS)
def test_policy_json_round_trips(edition: str) -> None:
    policy = resolve_policy(edition, {"reservation_days": 14})
    data = policy_to_json(policy)
    json.dumps(data, ensure_ascii=False)  # JSON-able: no Decimal, Fraction or date left
    assert data["edition"] == edition
    parameters = data["parameters"]
    assert isinstance(parameters, dict)
    assert set(parameters) == set(REGISTRY)
    entry = parameters["reservation_days"]
    assert isinstance(entry, dict)
    assert (entry["value"], entry["tag"], entry["citation"]) == (14, "override", "fund override")
    values = {name: e["value"] for name, e in parameters.items() if isinstance(e, dict)}
    assert resolve_policy(edition, values).params.keys() == policy.params.keys()
    for name in REGISTRY:
        assert resolve_policy(edition, values).value(name) == policy.value(name)


def test_money_in_json_is_a_yuan_string() -> None:
    parameters = policy_to_json(resolve_policy("cn-2018", {}))["parameters"]
    assert isinstance(parameters, dict)
    assert parameters["individual_cap"] == {
        "value": "150000.00",
        "type": "money",
        "tag": "N",
        "citation": "2018 notice",
        "edition": "cn-2018",
    }
    cap = parameters["subsidy_individual"]
    assert isinstance(cap, dict)
    assert cap["value"] == {"kind": "schedule", "by_loan_year": ["1", "2/3", "1/3"]}


def test_typed_access() -> None:
    cn2002 = resolve_policy("cn-2002", {})
    assert cn2002.money("individual_cap") == 2_000_000
    assert cn2002.flag("extension_needs_guarantor_consent") is True
    assert cn2002.percent("partnership_cap_pct") == D(100)
    with pytest.raises(PolicyError, match="not admitted"):
        cn2002.money("small_firm_cap")
    with pytest.raises(TypeError):
        cn2002.percent("individual_cap")
    with pytest.raises(PolicyError, match="unknown parameter"):
        cn2002.value("no_such_parameter")
    with pytest.raises(PolicyError):
        cn2002.integer("repeat_support_max")  # none: unlimited


# --- rate ceiling -------------------------------------------------------------------------------


def test_rate_ceiling_cn2002_is_the_benchmark() -> None:
    assert rate_ceiling_pct(resolve_policy("cn-2002", {}), D("5.31"), 3) == D("5.31")


@pytest.mark.parametrize("edition", ["cn-2008", "cn-2016", "cn-2018"])
def test_rate_ceiling_benchmark_plus_3pp(edition: str) -> None:
    policy = resolve_policy(edition, {})
    assert rate_ceiling_pct(policy, D("5.40")) == D("8.40")
    assert rate_within_ceiling(policy, D("8.40"), D("5.40"))  # inclusive
    assert not rate_within_ceiling(policy, D("8.41"), D("5.40"))


def test_rate_ceiling_cn2020_by_tier() -> None:
    policy = resolve_policy("cn-2020", {})
    assert str(rate_ceiling_pct(policy, D("3.65"), 3)) == "6.15"
    assert rate_ceiling_pct(policy, D("3.65")) == D("4.15")  # the default tier is 1, the narrowest
    assert rate_ceiling_pct(resolve_policy("cn-2020", {"rate_tier_default": 3}), D("3.65")) == D("6.15")
    assert rate_ceiling_pct(policy, D("3.65"), 1) == D("4.15")
    assert rate_ceiling_pct(policy, D("3.65"), 2) == D("5.15")
    assert rate_ceiling_pct(resolve_policy("cn-2020", {"rate_tier_default": 1}), D("3.65")) == D("4.15")
    with pytest.raises(PolicyError):
        rate_ceiling_pct(policy, D("3.65"), 4)


# --- subsidy ------------------------------------------------------------------------------------


def interest_fen(principal_fen: int, rate_pct: Fraction, days: int, basis: int = 360) -> int:
    return round_to_fen(Fraction(principal_fen, 100) * rate_pct / 100 * days / basis)


def test_cn2016_taper_is_exact() -> None:
    policy = resolve_policy("cn-2016", {})
    rule = policy.value("subsidy_individual")
    assert isinstance(rule, SubsidySchedule)
    assert rule.by_loan_year == (F(1), F(2, 3), F(1, 3))
    rates = [
        subsidy_rate_pct(
            policy,
            "individual",
            contract_rate_pct=D("4.75"),
            reference_rate_pct=D("4.75"),
            contracted_on=date(2017, 3, 1),
            loan_year=year,
        )
        for year in (1, 2, 3, 4)
    ]
    assert rates == [F(19, 4), F(19, 6), F(19, 12), F(0)]
    assert all(isinstance(rate, Fraction) for rate in rates)


def test_worked_example_1_cn2008_full_subsidy() -> None:
    rate = subsidy_rate_pct(
        resolve_policy("cn-2008", {}),
        "individual",
        contract_rate_pct=D("5.40"),
        reference_rate_pct=D("5.40"),
        contracted_on=date(2009, 3, 10),
        loan_year=1,
    )
    assert rate == F("5.40")
    assert interest_fen(5_000_000, rate, 22) == 16_500
    assert interest_fen(5_000_000, rate, 10) == 7_500


def test_worked_example_2_cn2020_borrower_cap() -> None:
    policy = resolve_policy("cn-2020", {"rate_tier_default": 3})  # the example's fund is in tier 3
    assert rate_within_ceiling(policy, D("6.15"), D("3.65"))
    assert not rate_within_ceiling(resolve_policy("cn-2020", {}), D("6.15"), D("3.65"))
    rate = subsidy_rate_pct(
        policy,
        "individual",
        contract_rate_pct=D("6.15"),
        reference_rate_pct=D("3.65"),
        contracted_on=date(2023, 1, 10),
        loan_year=1,
    )
    assert rate == F(4)
    assert interest_fen(20_000_000, rate, 92) == 204_444
    assert interest_fen(20_000_000, F("6.15") - rate, 92) == 109_889


def test_worked_example_3_firm_half_of_benchmark() -> None:
    rate = subsidy_rate_pct(
        resolve_policy("cn-2008", {}),
        "enterprise",
        contract_rate_pct=D("4.35"),
        reference_rate_pct=D("4.35"),
        contracted_on=date(2016, 10, 1),
        loan_year=1,
    )
    assert rate == F("2.175")
    assert interest_fen(200_000_000, rate, 90) == 1_087_500


def test_cn2002_subsidy_only_for_micro_profit() -> None:
    policy = resolve_policy("cn-2002", {})

    def rate(kind: BorrowerKind, micro_profit: bool) -> Fraction:
        return subsidy_rate_pct(
            policy,
            kind,
            contract_rate_pct=D("5.31"),
            reference_rate_pct=D("5.31"),
            contracted_on=date(2004, 7, 2),
            loan_year=1,
            micro_profit=micro_profit,
        )

    assert rate("individual", micro_profit=True) == F("5.31")
    assert rate("individual", micro_profit=False) == 0
    assert rate("enterprise", micro_profit=True) == 0  # no firms in cn-2002


def test_cn2020_rule_only_for_loans_from_2021() -> None:
    policy = resolve_policy("cn-2020", {})

    def rate(kind: BorrowerKind, contracted_on: date, contract: str, year: int = 2) -> Fraction:
        return subsidy_rate_pct(
            policy,
            kind,
            contract_rate_pct=D(contract),
            reference_rate_pct=D("3.85"),
            contracted_on=contracted_on,
            loan_year=year,
        )

    assert rate("individual", date(2020, 12, 31), "6.00") == F(4)  # taper, year 2: 2/3 of 6.00
    assert rate("enterprise", date(2020, 12, 31), "6.00") == F("1.925")  # half of the reference
    assert rate("enterprise", date(2021, 1, 1), "6.00") == F("3.65")  # 6.00 - (3.85 - 1.50)
    assert rate("individual", date(2021, 1, 1), "2.00") == 0  # never below zero


def test_loan_year() -> None:
    assert loan_year(date(2016, 3, 10), date(2016, 3, 10)) == 1
    assert loan_year(date(2016, 3, 10), date(2017, 3, 9)) == 1
    assert loan_year(date(2016, 3, 10), date(2017, 3, 10)) == 2
    assert loan_year(date(2016, 3, 10), date(2019, 3, 10)) == 4
    assert loan_year(date(2020, 2, 29), date(2021, 2, 27)) == 1
    assert loan_year(date(2020, 2, 29), date(2021, 2, 28)) == 2
    with pytest.raises(ValueError):
        loan_year(date(2020, 2, 29), date(2020, 2, 28))


# --- other rules --------------------------------------------------------------------------------


def test_credit_guarantee_waiver() -> None:
    def allowed(edition: str, amount_fen: int, community: bool = False, syb: bool = False) -> bool:
        return credit_guarantee_allowed(
            resolve_policy(edition, {}),
            borrower_kind="individual",
            amount_fen=amount_fen,
            credit_community=community,
            syb_trained_with_plan=syb,
        )

    assert not allowed("cn-2002", 100, community=True)
    assert allowed("cn-2008", 5_000_000, community=True)
    assert allowed("cn-2016", 5_000_000, syb=True)
    assert not allowed("cn-2018", 100)
    assert allowed("cn-2020", 10_000_000)
    assert not allowed("cn-2020", 10_000_001)
    assert not credit_guarantee_allowed(
        resolve_policy("cn-2020", {}),
        borrower_kind="enterprise",
        amount_fen=100,
        credit_community=True,
        syb_trained_with_plan=True,
    )


def test_other_loans_rule() -> None:
    cn2016, cn2018 = resolve_policy("cn-2016", {}), resolve_policy("cn-2018", {})
    assert other_loans_permitted(cn2016, [("business", 10_000_000)])
    assert other_loans_permitted(cn2018, [("housing", 100_000_000), ("consumer", 5_000_000)])
    assert not other_loans_permitted(cn2018, [("consumer", 5_000_001)])
    assert not other_loans_permitted(cn2018, [("business", 100)])


def test_partnership_cap_and_new_hire_share() -> None:
    assert partnership_cap_fen(resolve_policy("cn-2002", {}), 2) == 4_000_000
    assert partnership_cap_fen(resolve_policy("cn-2020", {}), 3) == 66_000_000
    cn2018 = resolve_policy("cn-2018", {})
    assert firm_new_hire_share_pct(cn2018, 100) == D(25)
    assert firm_new_hire_share_pct(cn2018, 101) == D(15)
    with pytest.raises(PolicyError):
        firm_new_hire_share_pct(resolve_policy("cn-2002", {}), 10)

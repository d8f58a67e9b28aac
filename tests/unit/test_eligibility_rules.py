"""The eligibility rules edition by edition, as pure functions (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from loanfund.eligibility.rules import (
    BorrowerFacts,
    CertificateFacts,
    Eligibility,
    GuaranteeFacts,
    GuarantorFacts,
    History,
    Request,
    evaluate,
)
from loanfund.policy import resolve_policy

COLLATERAL = GuaranteeFacts("collateral", collateral_description="a delivery van")


def person(
    birth: date = date(1980, 1, 1),
    gender: str = "male",
    categories: tuple[str, ...] = ("laid_off",),
    **extra: object,
) -> BorrowerFacts:
    return BorrowerFacts(kind="individual", birth_date=birth, gender=gender, categories=categories, **extra)  # type: ignore[arg-type]


def certificate(year: int, issued: date | None = None) -> CertificateFacts:
    return CertificateFacts("reemployment", issued or date(year, 1, 5), year)


def firm(staff: int, hires: int) -> BorrowerFacts:
    return BorrowerFacts(
        kind="enterprise", categories=("small_firm",), staff_count=staff, eligible_new_hires=hires
    )


def run(
    edition: str,
    borrower: BorrowerFacts,
    *,
    amount_yuan: int = 10_000,
    term: int = 12,
    applied_on: date = date(2004, 7, 2),
    guarantee: GuaranteeFacts = COLLATERAL,
    history: History | None = None,
    overrides: dict[str, object] | None = None,
) -> Eligibility:
    policy = resolve_policy(edition, overrides or {})
    return evaluate(
        policy,
        Request(amount_yuan * 100, term, applied_on, guarantee, borrower, history or History()),
    )


def check(result: Eligibility, rule: str) -> tuple[bool, str]:
    found = [c for c in result.checks if c.rule == rule]
    assert len(found) == 1, (rule, result.checks)
    return found[0].passed, found[0].detail


def failed(result: Eligibility) -> set[str]:
    return {c.rule for c in result.checks if not c.passed}


LAID_OFF_2004 = person(certificates=(certificate(2004),))


# ---- worked example 7 and the 4050 flag ---------------------------------------------------------------


def test_example_7_woman_born_1964_05_01_is_4050_on_2004_07_02() -> None:
    woman = person(date(1964, 5, 1), "female", certificates=(certificate(2004),))
    result = run("cn-2002", woman)
    assert result.is_4050 is True
    assert result.eligible, result.checks
    assert result.policy_edition == "cn-2002"


def test_example_7_man_born_1955_01_01_is_not_4050_on_2004_07_02() -> None:
    man = person(date(1955, 1, 1), "male", certificates=(certificate(2004),))
    result = run("cn-2002", man)
    assert result.is_4050 is False  # 49 on that day
    assert run("cn-2002", man, applied_on=date(2005, 1, 1)).is_4050 is True  # 50 on his birthday


def test_4050_is_never_a_category_of_its_own() -> None:
    woman = person(date(1964, 5, 1), "female", categories=("hard_to_employ",))
    result = run("cn-2002", woman)
    assert result.is_4050 is True
    assert not result.eligible
    assert "category" in failed(result)


def test_firms_are_never_4050() -> None:
    assert run("cn-2008", firm(10, 5), applied_on=date(2010, 1, 1)).is_4050 is False


# ---- cn-2002 -------------------------------------------------------------------------------------------


def test_cn2002_admits_laid_off_only() -> None:
    passed, detail = check(run("cn-2002", person(categories=("veteran",))), "category")
    assert not passed
    assert "cn-2002, which admits laid_off" in detail
    assert check(run("cn-2002", LAID_OFF_2004), "category")[0]


def test_laid_off_needs_a_certificate_inspected_for_the_application_year() -> None:
    stale = person(certificates=(certificate(2003),))
    passed, detail = check(run("cn-2002", stale), "reemployment_certificate")
    assert not passed
    assert "inspected for 2004" in detail and "2003" in detail
    assert not check(run("cn-2002", person()), "reemployment_certificate")[0]
    assert check(run("cn-2002", LAID_OFF_2004), "reemployment_certificate")[0]
    # Issued after the application date: not yet held.
    late = person(certificates=(certificate(2004, issued=date(2004, 8, 1)),))
    assert not check(run("cn-2002", late), "reemployment_certificate")[0]


def test_certificate_not_needed_when_admitted_under_another_category() -> None:
    both = person(categories=("laid_off", "veteran"))
    result = run("cn-2008", both, applied_on=date(2010, 3, 1))
    passed, detail = check(result, "reemployment_certificate")
    assert passed and "veteran" in detail
    assert result.eligible


def test_certificate_rule_absent_for_other_categories() -> None:
    result = run("cn-2008", person(categories=("graduate",)), applied_on=date(2010, 3, 1))
    assert "reemployment_certificate" not in {c.rule for c in result.checks}


def test_cn2002_age_limit_60_inclusive() -> None:
    sixty = person(date(1944, 7, 2), certificates=(certificate(2004),))
    assert check(run("cn-2002", sixty), "age") == (True, "Age 60 on 2004-07-02 is within the maximum of 60.")
    sixty_one = person(date(1943, 7, 2), certificates=(certificate(2004),))
    assert check(run("cn-2002", sixty_one), "age") == (
        False,
        "Age 61 on 2004-07-02 is above the maximum of 60.",
    )


def test_cn2002_amount_cap_and_term() -> None:
    assert check(run("cn-2002", LAID_OFF_2004, amount_yuan=20_000), "amount_cap")[0]
    passed, detail = check(run("cn-2002", LAID_OFF_2004, amount_yuan=20_001), "amount_cap")
    assert not passed
    assert detail == "Amount 20001.00 yuan is above the individual cap of 20000.00 yuan."
    assert check(run("cn-2002", LAID_OFF_2004, term=24), "term")[0]
    assert not check(run("cn-2002", LAID_OFF_2004, term=25), "term")[0]


def test_cn2002_no_credit_guarantee_and_no_firms() -> None:
    credit = GuaranteeFacts("credit")
    passed, detail = check(
        run("cn-2002", replace(LAID_OFF_2004, credit_community=True), guarantee=credit), "guarantee_kind"
    )
    assert not passed and "not admitted under cn-2002" in detail
    result = run("cn-2002", firm(10, 5))
    assert {"small_firm_admitted", "amount_cap", "new_hire_share", "term"} <= failed(result)


# ---- cn-2008 -------------------------------------------------------------------------------------------

D2010 = date(2010, 3, 1)


def test_cn2008_categories_and_caps() -> None:
    graduate = person(categories=("graduate",), graduation_year=2009)
    result = run("cn-2008", graduate, amount_yuan=50_000, applied_on=D2010)
    assert result.eligible, result.checks
    assert not check(run("cn-2008", person(categories=("returning_migrant",)), applied_on=D2010), "category")[
        0
    ]
    assert not check(run("cn-2008", graduate, amount_yuan=50_001, applied_on=D2010), "amount_cap")[0]


def test_cn2008_firm_cap_and_new_hire_share() -> None:
    ok = run("cn-2008", firm(100, 30), amount_yuan=2_000_000, applied_on=D2010)
    assert ok.eligible, ok.checks
    passed, detail = check(run("cn-2008", firm(100, 29), applied_on=D2010), "new_hire_share")
    assert not passed
    assert detail == (
        "29 eligible new hires among 100 staff is 29.00%, which is below the 30% required of a firm with"
        " at most 100 staff."
    )
    assert check(run("cn-2008", firm(101, 16), applied_on=D2010), "new_hire_share")[0]  # 15.84% ≥ 15%
    assert not check(run("cn-2008", firm(101, 15), applied_on=D2010), "new_hire_share")[0]  # 14.85%
    assert not check(run("cn-2008", firm(10, 5), amount_yuan=2_000_001, applied_on=D2010), "amount_cap")[0]
    assert check(run("cn-2008", firm(10, 5), term=24, applied_on=D2010), "term")[0]
    assert not check(run("cn-2008", firm(10, 5), term=25, applied_on=D2010), "term")[0]


def test_cn2008_credit_guarantee_needs_a_waiver() -> None:
    credit = GuaranteeFacts("credit")
    base = person(categories=("graduate",))
    assert not check(run("cn-2008", base, guarantee=credit, applied_on=D2010), "guarantee_kind")[0]
    community = replace(base, credit_community=True)
    assert check(run("cn-2008", community, guarantee=credit, applied_on=D2010), "guarantee_kind")[0]
    syb = replace(base, syb_trained=True, syb_plan_approved_on=date(2010, 2, 1))
    assert check(run("cn-2008", syb, guarantee=credit, applied_on=D2010), "guarantee_kind")[0]
    passed, detail = check(run("cn-2008", firm(10, 5), guarantee=credit, applied_on=D2010), "guarantee_kind")
    assert not passed and "individual" in detail


# ---- cn-2016, cn-2018, cn-2020 ---------------------------------------------------------------------


def test_cn2016_nine_groups_and_36_months() -> None:
    result = run(
        "cn-2016",
        person(categories=("returning_migrant",)),
        amount_yuan=100_000,
        term=36,
        applied_on=date(2017, 1, 1),
    )
    assert result.eligible, result.checks
    assert not check(
        run("cn-2016", person(categories=("graduate",)), term=37, applied_on=date(2017, 1, 1)), "term"
    )[0]


def test_cn2018_repeat_support_at_most_three_times() -> None:
    on = date(2019, 1, 1)
    grad = person(categories=("graduate",))
    passed, detail = check(
        run("cn-2018", grad, history=History(previous_loans=2), applied_on=on), "repeat_support"
    )
    assert passed and detail == "This would be support number 3; the policy allows at most 3."
    passed, detail = check(
        run("cn-2018", grad, history=History(previous_loans=3), applied_on=on), "repeat_support"
    )
    assert not passed and "3 programme loans" in detail
    # Before 2018 there is no limit.
    assert check(run("cn-2016", grad, history=History(previous_loans=7), applied_on=on), "repeat_support")[0]
    assert check(run("cn-2018", grad, amount_yuan=150_000, applied_on=on), "amount_cap")[0]


def test_cn2020_credit_guarantee_up_to_100000_without_community() -> None:
    on = date(2021, 6, 1)
    credit = GuaranteeFacts("credit")
    grad = person(categories=("graduate",))
    assert check(
        run("cn-2020", grad, amount_yuan=100_000, guarantee=credit, applied_on=on), "guarantee_kind"
    )[0]
    passed, detail = check(
        run("cn-2020", grad, amount_yuan=100_001, guarantee=credit, applied_on=on), "guarantee_kind"
    )
    assert not passed and "100000.00 yuan" in detail
    assert check(run("cn-2020", grad, amount_yuan=200_000, applied_on=on), "amount_cap")[0]
    assert check(run("cn-2020", firm(50, 8), applied_on=on), "new_hire_share")[0]  # 16% ≥ 15%
    assert not check(run("cn-2020", firm(50, 7), applied_on=on), "new_hire_share")[0]  # 14%
    assert check(run("cn-2020", firm(200, 16), applied_on=on), "new_hire_share")[0]  # 8% ≥ 8%


# ---- history, guarantee, overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "rule"),
    [
        (History(previous_loans=1, outstanding_loans=1), "no_outstanding_loan"),
        (History(previous_loans=1, defaulted_loans=1), "no_default"),
        (History(open_applications=1), "no_open_application"),
    ],
)
def test_history_rules(history: History, rule: str) -> None:
    result = run("cn-2002", LAID_OFF_2004, history=history)
    assert failed(result) == {rule}


def test_guarantors_must_exist_be_someone_else_and_work_in_public_service() -> None:
    def with_guarantors(*guarantors: GuarantorFacts) -> tuple[bool, str]:
        return check(
            run("cn-2002", LAID_OFF_2004, guarantee=GuaranteeFacts("guarantor", guarantors=guarantors)),
            "guarantors",
        )

    assert with_guarantors(
        GuarantorFacts("g1", True, "civil_service"), GuarantorFacts("g2", True, "public_institution")
    )[0]
    passed, detail = with_guarantors(GuarantorFacts("g1", False))
    assert not passed and "g1 is not registered" in detail
    passed, detail = with_guarantors(GuarantorFacts("g1", True, "other"))
    assert not passed and "works in other" in detail
    assert not with_guarantors(GuarantorFacts("g1", True, "state_enterprise"))[0]
    assert not with_guarantors(GuarantorFacts("g1", True, "civil_service", is_borrower=True))[0]


def test_joint_and_collateral() -> None:
    joint = GuaranteeFacts("joint", joint_borrowers=(("b2", True), ("b3", False)))
    passed, detail = check(run("cn-2002", LAID_OFF_2004, guarantee=joint), "joint_borrowers")
    assert not passed and "b3" in detail
    assert check(
        run("cn-2002", LAID_OFF_2004, guarantee=GuaranteeFacts("joint", joint_borrowers=(("b2", True),))),
        "joint_borrowers",
    )[0]
    assert not check(
        run("cn-2002", LAID_OFF_2004, guarantee=GuaranteeFacts("collateral", collateral_description=" ")),
        "collateral",
    )[0]


def test_fund_overrides_change_the_rules() -> None:
    result = run(
        "cn-2002",
        LAID_OFF_2004,
        amount_yuan=25_000,
        overrides={"individual_cap": "30000", "borrower_max_age": 45},
    )
    assert check(result, "amount_cap")[0]
    assert check(result, "age")[0]  # 24
    old = person(date(1955, 1, 1), certificates=(certificate(2004),))
    assert not check(run("cn-2002", old, overrides={"borrower_max_age": 45}), "age")[0]
    no_cert = run("cn-2002", person(), overrides={"laid_off_certificate_required": False})
    assert "reemployment_certificate" not in {c.rule for c in no_cert.checks}


def test_cn2002_partnership_scales_with_members_and_checks_each_partner() -> None:
    """cn-2002: "partnerships scale with members" — 20,000 per member; every member must qualify."""
    policy = resolve_policy("cn-2002", {})
    holder = person(certificates=(certificate(2004),))
    partner = person(date(1975, 3, 3), "female", certificates=(certificate(2004),))
    base = Request(60_000_00, 12, date(2004, 7, 2), COLLATERAL, holder)

    three = evaluate(policy, replace(base, partners=(partner, partner)))
    assert three.eligible, [c for c in three.checks if not c.passed]
    over = evaluate(policy, replace(base, amount_fen=60_000_01, partners=(partner, partner)))
    assert [c.rule for c in over.checks if not c.passed] == ["amount_cap"]
    alone = evaluate(policy, replace(base, amount_fen=20_000_01))
    assert [c.rule for c in alone.checks if not c.passed] == ["amount_cap"]

    uninspected = person(certificates=(certificate(2003),))
    refused = evaluate(policy, replace(base, partners=(partner, uninspected)))
    failed = [c for c in refused.checks if not c.passed]
    # The only category claimed is unproven: it does not count, and the missing certificate says why.
    assert [c.rule for c in failed] == ["partner_category", "partner_reemployment_certificate"]
    assert all(check.detail.startswith("Member 3: ") for check in failed)
    with_firm = evaluate(policy, replace(base, partners=(firm(10, 5),)))
    assert "partnership" in [c.rule for c in with_firm.checks if not c.passed]


# ---- issue 9: partners' records, unproven claims ----------------------------------------------------


@pytest.mark.parametrize(("edition", "limited"), [("cn-2016", False), ("cn-2018", True), ("cn-2020", True)])
def test_partner_repeat_support_counts_their_own_loans(edition: str, limited: bool) -> None:
    policy = resolve_policy(edition, {})
    holder = person(categories=("registered_unemployed",))
    base = Request(20_000_00, 12, date(2021, 6, 1), COLLATERAL, holder, partners=(holder,))
    result = evaluate(policy, replace(base, partner_histories=(History(previous_loans=3),)))
    assert (not result.eligible) is limited
    passed, detail = check(result, "partner_repeat_support")
    assert passed is not limited
    if limited:
        assert detail == "Member 2: The partner has had 3 programme loans; the policy allows at most 3."


def test_two_unproven_claims_do_not_prove_each_other() -> None:
    both = person(categories=("laid_off", "graduate"), graduation_year=2001)
    result = run("cn-2008", both, applied_on=D2010)
    assert failed(result) == {"category", "reemployment_certificate", "graduation_year"}
    proven = replace(both, graduation_year=2009)
    result = run("cn-2008", proven, applied_on=D2010)
    assert result.eligible, result.checks
    assert check(result, "category")[1].startswith("Admitted as graduate under cn-2008")

"""The interest engine, the rules of each edition and claim periods, as pure functions.

Worked examples 1–3 of domain.md §9 to the fen, the taper across an anniversary, each exclusion,
repayment and a second disbursement inside a period, rounding once per line, and invariants.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanfund.errors import MissingReferenceRate, PolicyError, ValidationFailed
from loanfund.money import round_to_fen
from loanfund.policy import (
    NOT_ADMITTED,
    evaluate_subsidy_rate_pct,
    resolve_policy,
    validate_overrides,
)
from loanfund.subsidies.interest import (
    COMPENSATED,
    EXTENSION,
    OVERDUE,
    LoanFacts,
    PrincipalChange,
    Spell,
    compute_line,
    interest_exact,
)
from loanfund.subsidies.periods import parse_period
from loanfund.subsidies.rules import subsidy_terms

D = Decimal
F = Fraction


def facts(
    edition: str = "cn-2008",
    *,
    kind: str = "individual",
    principal: int = 5_000_000,
    rate: str = "5.40",
    reference: str | None = None,
    disbursed: date = date(2009, 3, 10),
    contracted: date | None = None,
    maturity: date = date(2011, 3, 10),
    original_maturity: date | None = None,
    repayments: tuple[tuple[date, int], ...] = (),
    draws: tuple[tuple[date, int], ...] = (),
    micro_profit: bool = False,
    overrides: dict[str, object] | None = None,
    spells: tuple[Spell, ...] = (),
    compensated_on: date | None = None,
) -> LoanFacts:
    policy = resolve_policy(edition, overrides or {})
    rule = policy.value("subsidy_individual" if kind == "individual" else "subsidy_firm")
    assert not isinstance(rule, int | bool | D | tuple) and rule is not None
    changes = [PrincipalChange(disbursed, principal)]
    changes += [PrincipalChange(on, fen) for on, fen in draws]
    changes += [PrincipalChange(on, -fen) for on, fen in repayments]
    return LoanFacts(
        loan_id="loan_1",
        loan_number="L-1",
        borrower_kind=kind,
        micro_profit=micro_profit,
        annual_rate_pct=D(rate),
        reference_rate_pct=D(reference or rate),
        contracted_on=contracted or disbursed,
        disbursed_on=disbursed,
        original_maturity_on=original_maturity or maturity,
        maturity_on=maturity,
        changes=tuple(changes),
        rule=rule,  # type: ignore[arg-type]
        day_count_basis=policy.integer("day_count_basis"),
        extension_subsidised=policy.flag("extension_subsidised"),
        overdue_spells=spells,
        compensated_on=compensated_on,
        policy_edition=edition,
    )


# --- periods --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "kind"),
    [
        ("2009Q1", date(2009, 1, 1), date(2009, 4, 1), "quarter"),
        ("2023Q3", date(2023, 7, 1), date(2023, 10, 1), "quarter"),
        ("2023Q4", date(2023, 10, 1), date(2024, 1, 1), "quarter"),
        ("2023H2", date(2023, 7, 1), date(2024, 1, 1), "half"),
        ("2024H1", date(2024, 1, 1), date(2024, 7, 1), "half"),
        ("2023-07", date(2023, 7, 1), date(2023, 8, 1), "month"),
        ("2024-02", date(2024, 2, 1), date(2024, 3, 1), "month"),
        ("2023-12", date(2023, 12, 1), date(2024, 1, 1), "month"),
    ],
)
def test_periods_are_half_open(text: str, start: date, end: date, kind: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.kind, period.text) == (start, end, kind, text)
    assert period.days == (end - start).days


@pytest.mark.parametrize(
    "text",
    ["2023Q5", "2023Q0", "2023H3", "2023-13", "2023-7", "23Q1", "2023q3", "２０２３Q1", "", 2023, None],
)
def test_bad_periods(text: object) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_period(text)
    assert info.value.errors[0]["field"] == "period"


def test_period_kinds_are_policy() -> None:
    assert resolve_policy("cn-2016", {}).value("subsidy_period_kinds") == ("quarter",)
    policy = resolve_policy("cn-2016", {"subsidy_period_kinds": ["half", "quarter"]})
    assert policy.value("subsidy_period_kinds") == ("quarter", "half")
    assert validate_overrides({"subsidy_period_kinds": ["month", "half"]}) == {
        "subsidy_period_kinds": ["month", "half"]
    }
    with pytest.raises(PolicyError):
        validate_overrides({"subsidy_period_kinds": ["fortnight"]})


# --- worked examples ------------------------------------------------------------------------------


def test_example_1_cn2008_full_subsidy() -> None:
    line = compute_line(facts(), parse_period("2009Q1"))
    assert (line.days, line.excluded_days) == (22, 0)
    assert (line.interest_fen, line.subsidy_fen) == (16_500, 16_500)
    assert (line.opening_principal_fen, line.closing_principal_fen, line.disbursed_fen) == (
        0,
        5_000_000,
        5_000_000,
    )
    assert line.subsidy_rate_pct == F("5.40")
    [span] = line.spans
    assert (span.start, span.end, span.days, span.terms.share, span.terms.rule) == (
        date(2009, 3, 10),
        date(2009, 4, 1),
        22,
        1,
        "share",
    )


def test_example_1_repaid_in_full_on_the_20th() -> None:
    line = compute_line(facts(repayments=((date(2009, 3, 20), 5_000_000),)), parse_period("2009Q1"))
    assert line.days == 10  # the repayment day does not count
    assert (line.interest_fen, line.subsidy_fen) == (7_500, 7_500)
    assert (line.closing_principal_fen, line.repaid_fen) == (0, 5_000_000)


def test_example_2_cn2020_borrower_cap() -> None:
    loan = facts(
        "cn-2020",
        principal=20_000_000,
        rate="6.15",
        reference="3.65",
        disbursed=date(2023, 1, 10),
        maturity=date(2026, 1, 10),
        overrides={"rate_tier_default": 3},
    )
    line = compute_line(loan, parse_period("2023Q3"))
    assert line.days == 92
    assert line.subsidy_rate_pct == 4
    assert line.subsidy_fen == 204_444
    assert line.interest_fen == 314_333
    assert line.interest_fen - line.subsidy_fen == 109_889  # the borrower's 2.15%
    assert line.spans[0].terms.rule == "borrower_cap"


def test_example_3_firm_half_of_benchmark() -> None:
    loan = facts(
        kind="enterprise",
        principal=200_000_000,
        rate="4.35",
        disbursed=date(2016, 10, 1),
        maturity=date(2017, 10, 1),
    )
    line = compute_line(loan, parse_period("2017Q1"))
    assert line.days == 90
    assert line.subsidy_rate_pct == F("2.175")
    assert line.subsidy_fen == 1_087_500
    [span] = line.spans
    assert (span.terms.base_rate_pct, span.terms.share, span.terms.rule) == (
        F("4.35"),
        F(1, 2),
        "reference_share",
    )


# --- rules of each edition ------------------------------------------------------------------------


def test_cn2002_pays_only_micro_profit_projects() -> None:
    period = parse_period("2004Q3")
    kwargs = {
        "principal": 2_000_000,
        "rate": "5.31",
        "disbursed": date(2004, 7, 2),
        "maturity": date(2006, 7, 2),
    }
    paid = compute_line(facts("cn-2002", micro_profit=True, **kwargs), period)  # type: ignore[arg-type]
    unpaid = compute_line(facts("cn-2002", micro_profit=False, **kwargs), period)  # type: ignore[arg-type]
    # 20,000 × 5.31% × 91/360 = 268.45
    assert (paid.days, paid.subsidy_fen, paid.interest_fen) == (91, 26_845, 26_845)
    assert (unpaid.subsidy_fen, unpaid.interest_fen, unpaid.spans[0].terms.rule) == (
        0,
        26_845,
        "micro_profit_only",
    )


def test_not_admitted_rule_pays_nothing() -> None:
    terms = subsidy_terms(
        NOT_ADMITTED,
        contract_rate_pct=D("5"),
        reference_rate_pct=D("5"),
        contracted_on=date(2004, 1, 1),
        loan_year=1,
        micro_profit=True,
    )
    assert (terms.rate_pct, terms.rule) == (0, "not_admitted")


@pytest.mark.parametrize("edition", ["cn-2016", "cn-2018"])
def test_taper_crossing_an_anniversary(edition: str) -> None:
    loan = facts(
        edition,
        principal=10_000_000,
        rate="4.75",
        disbursed=date(2017, 8, 15),
        contracted=date(2017, 8, 10),
        maturity=date(2020, 8, 15),
    )
    line = compute_line(loan, parse_period("2018Q3"))
    first, second = line.spans
    assert (first.start, first.end, first.loan_year, first.terms.share) == (
        date(2018, 7, 1),
        date(2018, 8, 15),
        1,
        1,
    )
    assert (second.start, second.end, second.loan_year, second.terms.share) == (
        date(2018, 8, 15),
        date(2018, 10, 1),
        2,
        F(2, 3),
    )
    # 100,000 × 4.75% × (45 + 2/3 × 47) / 360 = 593.75 + 413.4259… = 1,007.18
    assert line.subsidy_fen == 100_718
    assert line.subsidy_rate_pct == F("4.75") * F(2, 3)
    # year 4 onward: nothing
    late = compute_line(dataclasses.replace(loan, maturity_on=date(2021, 8, 15)), parse_period("2020Q4"))
    assert late.subsidy_fen == 0 and late.interest_fen > 0


def test_taper_anniversary_of_29_february() -> None:
    loan = facts(
        "cn-2016", principal=3_600_000, rate="4", disbursed=date(2020, 2, 29), maturity=date(2023, 2, 28)
    )
    line = compute_line(loan, parse_period("2021-02"))
    assert [(s.start.day, s.loan_year) for s in line.spans] == [(1, 1), (28, 2)]


def test_cn2020_keeps_the_taper_for_loans_contracted_before_2021() -> None:
    loan = facts(
        "cn-2020",
        principal=3_600_000,
        rate="4.65",
        reference="3.85",
        disbursed=date(2020, 12, 31),
        maturity=date(2023, 12, 31),
    )
    line = compute_line(loan, parse_period("2021Q1"))
    assert {s.terms.rule for s in line.spans} == {"schedule"}
    assert line.subsidy_rate_pct == F("4.65")


def test_cn2020_never_below_zero() -> None:
    loan = facts(
        "cn-2020",
        principal=3_600_000,
        rate="2.00",
        reference="3.85",
        disbursed=date(2021, 3, 1),
        maturity=date(2024, 3, 1),
    )
    line = compute_line(loan, parse_period("2021Q2"))
    assert line.subsidy_fen == 0 and line.interest_fen > 0 and line.excluded_days == 0


# --- exclusions -----------------------------------------------------------------------------------


def test_extension_days_after_the_original_maturity() -> None:
    loan = facts(
        principal=3_600_000,
        rate="5.40",
        disbursed=date(2009, 6, 10),
        original_maturity=date(2010, 6, 10),
        maturity=date(2010, 12, 10),
    )
    line = compute_line(loan, parse_period("2010Q2"))
    assert (line.days, line.excluded_days) == (91, 21)
    [exclusion] = line.exclusions
    assert (exclusion.start, exclusion.end, exclusion.reason) == (
        date(2010, 6, 10),
        date(2010, 7, 1),
        EXTENSION,
    )
    # 36,000 × 5.40% × 70/360 = 378.00 for the days before the original maturity
    assert line.subsidy_fen == 37_800
    assert line.interest_fen == round_to_fen(interest_exact(3_600_000, F("5.40"), 91, 360))
    whole = compute_line(loan, parse_period("2010Q3"))
    assert (whole.subsidy_fen, whole.excluded_days, whole.exclusions[0].reason) == (0, 92, EXTENSION)


def test_extension_subsidised_by_override() -> None:
    loan = facts(
        principal=3_600_000,
        disbursed=date(2009, 6, 10),
        original_maturity=date(2010, 6, 10),
        maturity=date(2010, 12, 10),
        overrides={"extension_subsidised": True},
    )
    assert compute_line(loan, parse_period("2010Q3")).excluded_days == 0


def test_overdue_spell_from_overdue_since_until_cured() -> None:
    loan = facts(
        principal=3_600_000,
        disbursed=date(2009, 1, 5),
        spells=(Spell(date(2009, 5, 5), date(2009, 5, 20)),),
    )
    line = compute_line(loan, parse_period("2009Q2"))
    [exclusion] = line.exclusions
    assert (exclusion.start, exclusion.end, exclusion.days, exclusion.reason) == (
        date(2009, 5, 5),
        date(2009, 5, 20),
        15,
        OVERDUE,
    )
    assert line.subsidy_fen == round_to_fen(interest_exact(3_600_000, F("5.40"), 91 - 15, 360))


def test_open_overdue_spell_and_past_maturity() -> None:
    open_spell = facts(principal=3_600_000, disbursed=date(2009, 1, 5), spells=(Spell(date(2009, 6, 1)),))
    line = compute_line(open_spell, parse_period("2009Q2"))
    assert (line.excluded_days, line.exclusions[0].start) == (30, date(2009, 6, 1))
    matured = facts(principal=3_600_000, disbursed=date(2008, 6, 15), maturity=date(2009, 6, 15))
    line = compute_line(matured, parse_period("2009Q2"))
    assert (line.excluded_days, line.exclusions[0].start, line.exclusions[0].reason) == (
        16,
        date(2009, 6, 15),
        OVERDUE,
    )


def test_days_after_compensation() -> None:
    loan = facts(
        principal=3_600_000,
        disbursed=date(2009, 1, 5),
        spells=(Spell(date(2009, 3, 1)),),
        compensated_on=date(2009, 6, 10),
    )
    line = compute_line(loan, parse_period("2009Q2"))
    assert [(e.reason, e.start, e.end) for e in line.exclusions] == [
        (OVERDUE, date(2009, 4, 1), date(2009, 6, 10)),
        (COMPENSATED, date(2009, 6, 10), date(2009, 7, 1)),
    ]
    assert (line.subsidy_fen, line.excluded_days, line.days) == (0, 91, 91)  # the line still appears


# --- principal changing inside the period ---------------------------------------------------------


def test_part_repayments_and_second_disbursement() -> None:
    loan = facts(
        principal=5_000_000,
        disbursed=date(2009, 1, 10),
        repayments=((date(2009, 5, 1), 1_000_000), (date(2009, 6, 1), 500_000)),
        draws=((date(2009, 5, 15), 2_000_000),),
    )
    line = compute_line(loan, parse_period("2009Q2"))
    assert [(s.start, s.principal_fen) for s in line.spans] == [
        (date(2009, 4, 1), 5_000_000),
        (date(2009, 5, 1), 4_000_000),
        (date(2009, 5, 15), 6_000_000),
        (date(2009, 6, 1), 5_500_000),
    ]
    assert (line.opening_principal_fen, line.closing_principal_fen) == (5_000_000, 5_500_000)
    assert (line.disbursed_fen, line.repaid_fen) == (2_000_000, 1_500_000)
    exact = sum(interest_exact(s.principal_fen, F("5.40"), s.days, 360) for s in line.spans)
    assert line.subsidy_fen == round_to_fen(exact)


def test_rounding_once_per_line() -> None:
    # 10,000 × 4.35% × 2/360 = 2.4166… and 9,000 × 4.35% × 90/360 = 97.875: per span 2.42 + 97.88
    loan = facts(
        principal=1_000_000,
        rate="4.35",
        disbursed=date(2018, 1, 1),
        maturity=date(2019, 1, 1),
        repayments=((date(2018, 7, 3), 100_000),),
    )
    line = compute_line(loan, parse_period("2018Q3"))
    per_span = sum(round_to_fen(interest_exact(s.principal_fen, F("4.35"), s.days, 360)) for s in line.spans)
    assert per_span == 10_030
    assert line.subsidy_fen == 10_029


def test_day_count_365() -> None:
    loan = facts(
        principal=3_650_000, rate="5", disbursed=date(2009, 1, 1), overrides={"day_count_basis": 365}
    )
    assert compute_line(loan, parse_period("2009-03")).subsidy_fen == round_to_fen(
        F(36_500) * 5 / 100 * 31 / 365
    )


def test_loan_outside_the_period() -> None:
    later = compute_line(facts(disbursed=date(2009, 4, 1)), parse_period("2009Q1"))
    assert (later.days, later.subsidy_fen, later.spans) == (0, 0, ())
    repaid = facts(disbursed=date(2008, 1, 1), repayments=((date(2008, 12, 31), 5_000_000),))
    assert compute_line(repaid, parse_period("2009Q1")).days == 0


# --- invariants -----------------------------------------------------------------------------------

EDITIONS = ["cn-2002", "cn-2008", "cn-2016", "cn-2018", "cn-2020"]


@st.composite
def loans(draw: st.DrawFn) -> LoanFacts:
    edition = draw(st.sampled_from(EDITIONS))
    kind = "individual" if edition == "cn-2002" else draw(st.sampled_from(["individual", "enterprise"]))
    disbursed = date(2015, 1, 1) + timedelta(days=draw(st.integers(0, 3000)))
    term = draw(st.integers(6, 36))
    maturity = disbursed + timedelta(days=term * 30)
    extended = draw(st.booleans())
    principal = draw(st.integers(100_000, 300_000_000))
    repayments = []
    left = principal
    for _ in range(draw(st.integers(0, 3))):
        on = disbursed + timedelta(days=draw(st.integers(1, term * 30)))
        fen = draw(st.integers(1, max(1, left)))
        if fen <= left:
            repayments.append((on, fen))
            left -= fen
    spells = tuple(
        Spell(s, s + timedelta(days=draw(st.integers(1, 200))) if draw(st.booleans()) else None)
        for s in [
            disbursed + timedelta(days=draw(st.integers(1, 900))) for _ in range(draw(st.integers(0, 2)))
        ]
    )
    return facts(
        edition,
        kind=kind,
        principal=principal,
        rate=draw(st.sampled_from(["3.85", "4.35", "4.75", "5.40", "6.15"])),
        reference=draw(st.sampled_from(["3.45", "3.65", "4.35"])),
        disbursed=disbursed,
        maturity=maturity + timedelta(days=180) if extended else maturity,
        original_maturity=maturity,
        repayments=tuple(repayments),
        micro_profit=draw(st.booleans()),
        spells=spells,
        compensated_on=disbursed + timedelta(days=draw(st.integers(100, 1500)))
        if draw(st.booleans())
        else None,
    )


QUARTERS = [f"{y}Q{q}" for y in range(2015, 2025) for q in range(1, 5)]


@settings(max_examples=150, deadline=None)
@given(loan=loans(), quarter=st.sampled_from(QUARTERS))
def test_line_invariants(loan: LoanFacts, quarter: str) -> None:
    period = parse_period(quarter)
    line = compute_line(loan, period)
    assert 0 <= line.subsidy_fen <= line.interest_fen
    assert 0 <= line.excluded_days <= line.days <= period.days
    assert line.days == sum(s.days for s in line.spans)
    assert line.excluded_days == sum(s.days for s in line.spans if s.excluded)
    assert line.opening_principal_fen + line.disbursed_fen - line.repaid_fen == line.closing_principal_fen
    for span in line.spans:
        assert period.start <= span.start < span.end <= period.end
        if loan.rule is NOT_ADMITTED:
            assert span.terms.rate_pct == 0
        else:
            assert span.terms.rate_pct == evaluate_subsidy_rate_pct(
                loan.rule,
                contract_rate_pct=loan.annual_rate_pct,
                reference_rate_pct=loan.reference_rate_pct,
                contracted_on=loan.contracted_on,
                loan_year=span.loan_year,
                micro_profit=loan.micro_profit,
            )
    # Three months computed apart round three times, never more than 2 fen away from the quarter.
    months = [
        parse_period(f"{period.start.year}-{m:02d}")
        for m in range(period.start.month, period.start.month + 3)
    ]
    monthly = [compute_line(loan, m) for m in months]
    assert sum(m.days for m in monthly) == line.days
    assert sum(m.excluded_days for m in monthly) == line.excluded_days
    assert abs(sum(m.subsidy_fen for m in monthly) - line.subsidy_fen) <= 2


def test_a_line_priced_on_a_missing_reference_rate_is_refused() -> None:
    firm = dataclasses.replace(
        facts(kind="enterprise", principal=200_000_000, rate="4.35", disbursed=date(2016, 10, 1)),
        reference_rate_pct=None,
    )
    with pytest.raises(MissingReferenceRate) as info:
        compute_line(firm, parse_period("2017Q1"))
    assert info.value.facts["loan_id"] == "loan_1"
    # A rule on the contract rate alone does not need it.
    person = dataclasses.replace(facts(), reference_rate_pct=None)
    assert compute_line(person, parse_period("2009Q1")).subsidy_fen == 16_500

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loanfund.errors import ValidationFailed
from loanfund.terms import add_months, days_between, term_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 2, date(2023, 3, 31)),
        (date(2023, 3, 31), 1, date(2023, 4, 30)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2023, 11, 15), 2, date(2024, 1, 15)),
        (date(2023, 1, 10), 24, date(2025, 1, 10)),
        (date(2023, 1, 10), 0, date(2023, 1, 10)),
        (date(2023, 3, 31), -1, date(2023, 2, 28)),
        (date(2024, 1, 15), -13, date(2022, 12, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_add_months_outside_calendar() -> None:
    with pytest.raises(OverflowError):
        add_months(date(9999, 12, 1), 1)


@pytest.mark.parametrize(
    ("disbursed", "maturity", "expected"),
    [
        (date(2023, 1, 10), date(2025, 1, 10), 24),
        (date(2023, 1, 10), date(2025, 1, 11), 25),
        (date(2023, 1, 10), date(2025, 1, 9), 24),
        (date(2023, 1, 31), date(2023, 2, 28), 1),
        (date(2023, 1, 31), date(2023, 3, 1), 2),
        (date(2024, 1, 31), date(2024, 2, 28), 1),
        (date(2024, 1, 31), date(2024, 2, 29), 1),
        (date(2024, 1, 31), date(2024, 3, 1), 2),
        (date(2023, 3, 31), date(2023, 4, 30), 1),
        (date(2024, 2, 29), date(2025, 2, 28), 12),
        (date(2024, 2, 29), date(2025, 3, 1), 13),
        (date(2024, 2, 29), date(2028, 2, 29), 48),
        # Day 28 in, day 31 out: three days past a whole month start a second one.
        (date(2023, 2, 28), date(2023, 3, 28), 1),
        (date(2023, 2, 28), date(2023, 3, 31), 2),
        (date(2023, 1, 10), date(2023, 1, 11), 1),
        (date(2023, 12, 15), date(2024, 1, 15), 1),
        (date(2009, 3, 10), date(2011, 3, 10), 24),
    ],
)
def test_term_months(disbursed: date, maturity: date, expected: int) -> None:
    assert term_months(disbursed, maturity) == expected


@pytest.mark.parametrize("maturity", [date(2023, 1, 10), date(2023, 1, 9)])
def test_term_months_needs_maturity_after_disbursement(maturity: date) -> None:
    with pytest.raises(ValidationFailed) as info:
        term_months(date(2023, 1, 10), maturity)
    assert info.value.errors == [{"field": "maturity_on", "message": "must be after disbursed_on"}]
    assert info.value.code == "validation_error"


def test_days_between_counts_first_day_not_last() -> None:
    # domain.md example 1: disbursed 2009-03-10, quarter ends 2009-04-01 → 22 days; repaid 03-20 → 10.
    assert days_between(date(2009, 3, 10), date(2009, 4, 1)) == 22
    assert days_between(date(2009, 3, 10), date(2009, 3, 20)) == 10
    assert days_between(date(2023, 7, 1), date(2023, 10, 1)) == 92
    assert days_between(date(2017, 1, 1), date(2017, 4, 1)) == 90
    assert days_between(date(2024, 2, 28), date(2024, 3, 1)) == 2
    assert days_between(date(2023, 5, 5), date(2023, 5, 5)) == 0


def test_days_between_refuses_reversed_period() -> None:
    with pytest.raises(ValueError):
        days_between(date(2023, 5, 6), date(2023, 5, 5))


_dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@given(start=_dates, gap=st.integers(min_value=1, max_value=40 * 366))
def test_term_is_the_least_whole_months_reaching_maturity(start: date, gap: int) -> None:
    maturity = start + timedelta(days=gap)
    months = term_months(start, maturity)
    assert months >= 1
    assert add_months(start, months) >= maturity
    assert add_months(start, months - 1) < maturity


@given(start=_dates, months=st.integers(min_value=1, max_value=480))
def test_maturity_on_a_whole_month_gives_that_term(start: date, months: int) -> None:
    assert term_months(start, add_months(start, months)) == months


@given(start=_dates, months=st.integers(min_value=-480, max_value=480))
def test_add_months_keeps_the_day_or_clamps(start: date, months: int) -> None:
    moved = add_months(start, months)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months
    assert moved.day == start.day or (moved.day < start.day and (moved + timedelta(days=1)).day == 1)

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from loanfund.errors import MissingReferenceRate, ValidationFailed
from loanfund.rates import (
    KINDS,
    Fixing,
    RateTable,
    ReferenceRate,
    band_for,
    latest_fixing,
    load_starting_fixings,
    parse_fixings_csv,
    starting_dense_through,
    starting_table,
)

SHARED_CSV = Path("/work/shared/data/reference-rates.csv")


@pytest.fixture(scope="module")
def table() -> RateTable:
    return starting_table()


def fixing(kind: str, day: str, rate: str) -> Fixing:
    return Fixing(kind, date.fromisoformat(day), Decimal(rate))


# --- starting data ---------------------------------------------------------------------------------


def test_starting_data_loads_exactly() -> None:
    fixings = load_starting_fixings()
    assert len(fixings) == 81
    assert {f.kind for f in fixings} == set(KINDS)
    assert all(type(f.rate_pct) is Decimal for f in fixings)
    assert fixing("PBOC1Y", "2015-10-24", "4.35") in fixings
    assert fixings[0] == fixing("PBOC1Y", "2002-02-21", "5.31")


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="shared data not present")
def test_packaged_csv_matches_shared_data() -> None:
    assert parse_fixings_csv(SHARED_CSV.read_text("utf-8")) == load_starting_fixings()


@pytest.mark.parametrize(
    ("kind", "day", "rate"),
    [
        # Figures checked against PBOC announcements and the NIFC LPR releases.
        ("PBOC1Y", "2008-12-23", "5.31"),
        ("PBOC1Y", "2015-10-24", "4.35"),
        ("PBOC1_3Y", "2008-12-23", "5.40"),
        ("PBOC1_3Y", "2012-07-06", "6.15"),
        ("PBOC1_5Y", "2015-10-24", "4.75"),
        ("LPR1Y", "2019-08-20", "4.25"),
        ("LPR1Y", "2022-08-22", "3.65"),
        ("LPR1Y", "2023-08-21", "3.45"),
        ("LPR1Y", "2024-10-21", "3.10"),
        ("LPR1Y", "2025-05-20", "3.00"),
        ("LPR5Y", "2019-08-20", "4.85"),
        ("LPR5Y", "2025-05-20", "3.50"),
    ],
)
def test_known_public_figures(table: RateTable, kind: str, day: str, rate: str) -> None:
    assert table.lookup(kind, date.fromisoformat(day)) == fixing(kind, day, rate)


def test_known_through_per_kind(table: RateTable) -> None:
    assert table.known_through("PBOC1Y") == date(2015, 10, 24)
    assert table.known_through("PBOC1_3Y") == date(2012, 7, 6)
    assert table.known_through("PBOC1_5Y") == date(2015, 10, 24)
    assert table.known_through("LPR1Y") == date(2025, 5, 20)
    assert table.known_through("LPR5Y") == date(2025, 5, 20)
    assert RateTable([], dense_through={}).known_through("LPR1Y") is None
    assert dict(starting_dense_through()) == {"LPR1Y": date(2025, 5, 20), "LPR5Y": date(2025, 5, 20)}


# --- CSV parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("PBOC9Y,2002-02-21,5.31", 2, "unknown kind"),
        ("PBOC1Y,2002-02-30,5.31", 2, "not a real date"),
        ("PBOC1Y,20020221,5.31", 2, "YYYY-MM-DD"),
        ("PBOC1Y,2002-02-21,5.31e0", 2, "plain decimal"),
        ("PBOC1Y,2002-02-21,-5.31", 2, "plain decimal"),
        ("PBOC1Y,2002-02-21,0", 2, "above 0"),
        ("PBOC1Y,2002-02-21,4.123456", 2, "plain decimal"),
        ("PBOC1Y,2002-02-21", 2, "3 columns"),
        ("PBOC1Y,2002-02-21,5.31\nPBOC1Y,2004-10-29,x", 3, "plain decimal"),
        ("PBOC1Y,2002-02-21,5.31\n\nPBOC1Y,2002-02-21,5.31", 4, "listed twice"),
    ],
)
def test_bad_csv_row_names_its_line(body: str, line: int, words: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_fixings_csv("kind,effective_on,rate_pct\n" + body + "\n")
    assert f"line {line}" in info.value.detail
    assert words in info.value.detail


def test_bad_csv_header() -> None:
    with pytest.raises(ValidationFailed, match="line 1"):
        parse_fixings_csv("kind,date,rate\nPBOC1Y,2002-02-21,5.31\n")


def test_csv_rates_are_exact_decimals() -> None:
    (only,) = parse_fixings_csv("kind,effective_on,rate_pct\r\nLPR1Y,2019-08-20,4.25\r\n")
    assert only.rate_pct == Decimal("4.25")
    assert str(only.rate_pct) == "4.25"


def test_fixing_validates_itself() -> None:
    with pytest.raises(ValidationFailed):
        Fixing("LPR2Y", date(2020, 1, 1), Decimal("3"))
    with pytest.raises(ValidationFailed):
        Fixing("LPR1Y", date(2020, 1, 1), 3.85)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        Fixing("LPR1Y", datetime(2020, 1, 1), Decimal("3.85"))
    with pytest.raises(ValidationFailed):
        Fixing("LPR1Y", date(2020, 1, 1), Decimal("NaN"))


# --- bands ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "day", "band"),
    [
        (1, "2009-03-10", "PBOC1Y"),
        (12, "2009-03-10", "PBOC1Y"),
        (13, "2009-03-10", "PBOC1_3Y"),
        (36, "2014-11-21", "PBOC1_3Y"),
        (24, "2014-11-21", "PBOC1_3Y"),
        (24, "2014-11-22", "PBOC1_5Y"),
        (60, "2014-11-22", "PBOC1_5Y"),
        (12, "2019-08-19", "PBOC1Y"),
        (24, "2019-08-19", "PBOC1_5Y"),
        (12, "2019-08-20", "LPR1Y"),
        (60, "2019-08-20", "LPR1Y"),
        (61, "2019-08-20", "LPR5Y"),
        (360, "2030-01-01", "LPR5Y"),
    ],
)
def test_band_for(term: int, day: str, band: str) -> None:
    assert band_for(term, date.fromisoformat(day)) == band


@pytest.mark.parametrize(
    ("term", "day"),
    [(0, "2020-01-01"), (-1, "2020-01-01"), (37, "2014-11-21"), (61, "2014-11-22"), (61, "2019-08-19")],
)
def test_band_for_refuses_terms_without_a_band(term: int, day: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        band_for(term, date.fromisoformat(day))
    assert info.value.errors[0]["field"] == "term_months"


# --- domain.md worked examples ------------------------------------------------------------------------


def test_example_1_cn2008_two_years_on_the_1_3_year_benchmark(table: RateTable) -> None:
    assert table.for_loan(24, date(2009, 3, 10)) == ReferenceRate(
        "PBOC1_3Y", Decimal("5.40"), date(2008, 12, 23), stale=False
    )


def test_example_2_lpr_in_january_2023(table: RateTable) -> None:
    assert table.for_loan(24, date(2023, 1, 10)) == ReferenceRate(
        "LPR1Y", Decimal("3.65"), date(2022, 8, 22), stale=False
    )


def test_example_3_firm_twelve_months_in_2016(table: RateTable) -> None:
    assert table.for_loan(12, date(2016, 10, 1)) == ReferenceRate(
        "PBOC1Y", Decimal("4.35"), date(2015, 10, 24), stale=False
    )


def test_band_switch_dates(table: RateTable) -> None:
    assert table.for_loan(24, date(2014, 11, 21)).rate_pct == Decimal("6.15")
    assert table.for_loan(24, date(2014, 11, 22)) == ReferenceRate(
        "PBOC1_5Y", Decimal("6.00"), date(2014, 11, 22), stale=False
    )
    assert table.for_loan(12, date(2014, 11, 21)).rate_pct == Decimal("6.00")
    assert table.for_loan(12, date(2014, 11, 22)).rate_pct == Decimal("5.60")
    assert table.for_loan(36, date(2019, 8, 19)) == ReferenceRate(
        "PBOC1_5Y", Decimal("4.75"), date(2015, 10, 24), stale=False
    )
    assert table.for_loan(36, date(2019, 8, 20)) == ReferenceRate(
        "LPR1Y", Decimal("4.25"), date(2019, 8, 20), stale=False
    )


# --- lookups and missing rates -------------------------------------------------------------------------


def test_date_before_first_fixing_is_missing(table: RateTable) -> None:
    with pytest.raises(MissingReferenceRate) as info:
        table.for_loan(12, date(2002, 2, 20))
    assert info.value.code == "missing_reference_rate"
    assert info.value.facts["kind"] == "PBOC1Y"
    assert info.value.facts["date"] == "2002-02-20"
    assert info.value.facts["first_fixing_on"] == "2002-02-21"
    assert table.for_loan(12, date(2002, 2, 21)).rate_pct == Decimal("5.31")


def test_missing_in_empty_series() -> None:
    with pytest.raises(MissingReferenceRate) as info:
        RateTable([fixing("PBOC1Y", "2002-02-21", "5.31")]).lookup("LPR1Y", date(2020, 1, 1))
    assert info.value.facts["first_fixing_on"] is None


def test_lookup_on_change_day_and_the_day_before(table: RateTable) -> None:
    assert table.lookup("LPR1Y", date(2024, 10, 20)).rate_pct == Decimal("3.35")
    assert table.lookup("LPR1Y", date(2024, 10, 21)).rate_pct == Decimal("3.10")


def test_unknown_kind_refused(table: RateTable) -> None:
    with pytest.raises(ValidationFailed):
        table.lookup("LPR2Y", date(2020, 1, 1))
    with pytest.raises(ValidationFailed):
        latest_fixing(load_starting_fixings(), "LPR2Y", date(2020, 1, 1))


def test_latest_fixing_agrees_with_table(table: RateTable) -> None:
    fixings = load_starting_fixings()
    day = date(2002, 1, 1)
    while day < date(2026, 1, 1):
        for kind in KINDS:
            try:
                expected = table.lookup(kind, day)
            except MissingReferenceRate:
                with pytest.raises(MissingReferenceRate):
                    latest_fixing(fixings, kind, day)
            else:
                assert latest_fixing(reversed(fixings), kind, day) == expected
        day = date.fromordinal(day.toordinal() + 17)


# --- staleness -----------------------------------------------------------------------------------------


def test_old_row_inside_the_starting_coverage_is_not_stale(table: RateTable) -> None:
    # 2022-08-22 is 141 days before the contract, but the CSV lists only changes: still the current LPR.
    assert not table.for_loan(24, date(2023, 1, 10)).stale
    assert not table.reference("LPR5Y", date(2025, 5, 19)).stale


def test_beyond_the_data_is_stale_until_a_new_fixing_is_added(table: RateTable) -> None:
    contract = date(2026, 11, 27)
    before = table.for_loan(24, contract)
    assert before == ReferenceRate("LPR1Y", Decimal("3.00"), date(2025, 5, 20), stale=True)
    fresher = table.with_fixings(fixing("LPR1Y", "2026-11-20", "2.90"))
    assert fresher.for_loan(24, contract) == ReferenceRate(
        "LPR1Y", Decimal("2.90"), date(2026, 11, 20), stale=False
    )
    assert fresher.known_through("LPR1Y") == date(2026, 11, 20)
    assert table.known_through("LPR1Y") == date(2025, 5, 20)  # the original table is unchanged


def test_stale_boundary_is_more_than_45_days(table: RateTable) -> None:
    assert not table.reference("LPR1Y", date(2025, 7, 4)).stale  # 45 days after 2025-05-20
    assert table.reference("LPR1Y", date(2025, 7, 5)).stale


def test_gap_in_added_fixings_is_stale() -> None:
    # After the starting coverage every month must be added; a skipped month shows as stale.
    added = starting_table().with_fixings(
        fixing("LPR1Y", "2025-06-20", "3.00"), fixing("LPR1Y", "2025-09-22", "3.00")
    )
    assert not added.reference("LPR1Y", date(2025, 8, 4)).stale
    assert added.reference("LPR1Y", date(2025, 9, 10)).stale
    assert not added.reference("LPR1Y", date(2025, 9, 22)).stale


def test_pboc_series_are_never_stale(table: RateTable) -> None:
    assert not table.reference("PBOC1Y", date(2030, 1, 1)).stale


def test_without_coverage_rows_are_taken_literally() -> None:
    literal = RateTable(load_starting_fixings(), dense_through={})
    assert literal.for_loan(24, date(2023, 1, 10)).stale
    assert not literal.for_loan(24, date(2022, 9, 1)).stale


# --- table construction --------------------------------------------------------------------------------


def test_table_orders_and_deduplicates() -> None:
    shuffled = RateTable(
        [
            fixing("LPR1Y", "2020-04-20", "3.85"),
            fixing("LPR1Y", "2019-08-20", "4.25"),
            fixing("LPR1Y", "2019-08-20", "4.250"),
        ]
    )
    assert [f.effective_on for f in shuffled.fixings("LPR1Y")] == [date(2019, 8, 20), date(2020, 4, 20)]
    assert len(shuffled) == 2
    assert shuffled.lookup("LPR1Y", date(2020, 1, 1)).rate_pct == Decimal("4.25")


def test_conflicting_duplicate_refused() -> None:
    with pytest.raises(ValidationFailed, match="both"):
        RateTable([fixing("LPR1Y", "2019-08-20", "4.25"), fixing("LPR1Y", "2019-08-20", "4.20")])


def test_table_is_immutable(table: RateTable) -> None:
    with pytest.raises(AttributeError):
        table._dates = {}
    with pytest.raises(TypeError):
        table.dense_through["LPR1Y"] = date(2030, 1, 1)  # type: ignore[index]
    assert len(table) == 81
    assert tuple(table) == table.fixings()

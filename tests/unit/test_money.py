"""Money (api.md "Money", "Rates and shares"): exact parsing, formatting and half-up rounding to the fen."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from loanfund.errors import InvalidAmount
from loanfund.money import (
    MAX_FEN,
    decimal_to_fen,
    fen_to_decimal,
    format_fen,
    format_pct,
    from_money,
    parse_pct,
    parse_yuan,
    round_to_fen,
    share_of,
    to_money,
)

# Written out from api.md on purpose, not imported: the code must match the contract.
CONTRACT = re.compile(r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$")


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("20000", 2_000_000),
        ("20000.5", 2_000_050),
        ("20000.50", 2_000_050),
        ("20000.05", 2_000_005),
        ("0.01", 1),
        ("0.1", 10),
        ("1", 100),
        ("9999999999999.99", 999_999_999_999_999),
        ("1000000000000", 100_000_000_000_000),
    ],
)
def test_parse_yuan_accepts(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


REFUSED = [
    "1.001",  # three decimals
    "0.005",
    "-5",  # sign
    "+5",
    "1e3",  # exponent
    "1E3",
    " 100",  # spaces
    "100 ",
    "100\n",
    "1,000",  # separators
    "1_000",
    "1 000",
    "１０",  # full-width digits
    "١٠",  # Arabic-Indic digits
    "01",  # leading zeros
    "00",
    "00.5",
    "NaN",
    "nan",
    "Infinity",
    "inf",
    "",
    ".5",
    "5.",
    "5..0",
    "0x10",
    "10000000000000",  # 14 integer digits
    "99999999999999.99",
]


@pytest.mark.parametrize("text", REFUSED)
def test_parse_yuan_refuses(text: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_yuan(text, field="amount")
    assert refused.value.errors[0]["field"] == "amount"


@pytest.mark.parametrize("value", [1000, 1000.0, 2.675, Decimal("1000"), None, True, b"1000", ["1"]])
def test_parse_yuan_refuses_anything_but_a_string(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_yuan(value)


def test_zero_only_where_allowed() -> None:
    for zero in ("0", "0.0", "0.00"):
        with pytest.raises(InvalidAmount):
            parse_yuan(zero)
        assert parse_yuan(zero, allow_zero=True) == 0


def test_refusals_name_the_field() -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_yuan("1.001", field="principal")
    assert refused.value.errors == [
        {"field": "principal", "message": 'must be a string of yuan with at most 2 decimals, like "20000.00"'}
    ]


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_format_then_parse_roundtrips(fen: int) -> None:
    text = format_fen(fen)
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", text)
    assert CONTRACT.fullmatch(text)
    assert parse_yuan(text, allow_zero=True) == fen


@given(st.text(max_size=20) | st.from_regex(CONTRACT, fullmatch=True))
def test_parse_yuan_accepts_exactly_the_contract_pattern(text: str) -> None:
    if CONTRACT.fullmatch(text) and text.isascii() and Decimal(text) > 0:
        assert parse_yuan(text) == int(Decimal(text) * 100)
    else:
        with pytest.raises(InvalidAmount):
            parse_yuan(text)


@given(st.integers(min_value=-(10**17), max_value=10**17))
def test_format_fen_is_exact(fen: int) -> None:
    text = format_fen(fen)
    assert Decimal(text) * 100 == fen
    assert text.split(".")[1].__len__() == 2


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (1, "0.01"), (10, "0.10"), (-1230, "-12.30"), (5, "0.05")]
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@pytest.mark.parametrize("value", [1.0, "1", Decimal("1"), True, None])
def test_format_fen_takes_only_int_fen(value: object) -> None:
    with pytest.raises(TypeError):
        format_fen(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        (Decimal("0.005"), 1),
        (Decimal("0.004999"), 0),
        (Decimal("2.675"), 268),  # a float would give 2.67
        (Decimal("2.665"), 267),
        (Decimal("1.015"), 102),
        (Decimal("165.00"), 16500),
        (Decimal("1098.888888"), 109889),
        (Decimal("-0.005"), -1),  # half-up is symmetric: away from zero
        (Decimal("-2.675"), -268),
        (7, 700),
        (0, 0),
    ],
)
def test_round_to_fen_half_up(value: Decimal | int, fen: int) -> None:
    assert round_to_fen(value) == fen


def test_floats_would_round_wrong_so_they_are_refused() -> None:
    assert round(2.675, 2) == 2.67  # why money never touches floats
    with pytest.raises((TypeError, InvalidAmount)):
        round_to_fen(2.675)  # type: ignore[arg-type]
    with pytest.raises((TypeError, InvalidAmount)):
        round_to_fen(True)


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        (Fraction(2, 3), 67),
        (Fraction(1, 3), 33),
        (Fraction(1, 200), 1),  # 0.005 yuan
        (Fraction(1, 201), 0),
        (Fraction(-2, 3), -67),
        (Fraction(-1, 200), -1),
        (Fraction(50000 * 54 * 22, 1000 * 360), 16500),  # worked example 1: 165.00
        (Fraction(200000 * 4 * 92, 100 * 360), 204444),  # worked example 2: 2,044.44
        (Fraction(200000 * 215 * 92, 10000 * 360), 109889),  # worked example 2: 1,098.89
        (Fraction(2000000 * 2175 * 90, 100000 * 360), 1087500),  # worked example 3: 10,875.00
    ],
)
def test_round_fraction(value: Fraction, fen: int) -> None:
    assert round_to_fen(value) == fen


@given(st.fractions(max_denominator=10**6).filter(lambda f: abs(f) < 10**12))
def test_fraction_and_decimal_rounding_agree(value: Fraction) -> None:
    with localcontext() as ctx:
        ctx.prec = 60  # far more digits than any distance from a half-fen boundary needs
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    assert round_to_fen(value) == round_to_fen(exact)


def test_round_to_fen_refuses_nan_and_infinity() -> None:
    for value in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")):
        with pytest.raises(InvalidAmount):
            round_to_fen(value)


@pytest.mark.parametrize(
    ("fen", "pct", "part"),
    [
        (6_120_000, Decimal("80"), 4_896_000),  # worked example 6: 61,200.00 × 80% = 48,960.00
        (1_000_000, Decimal("80"), 800_000),  # recovery of 10,000.00: the fund's 8,000.00
        (1, Decimal("50"), 1),  # 0.005 rounds up to the named part; the remainder is 0
        (3, Decimal("50"), 2),
        (100, Decimal("33.3333"), 33),
        (100, Decimal("0"), 0),
        (100, Decimal("100"), 100),
    ],
)
def test_share_of(fen: int, pct: Decimal, part: int) -> None:
    assert share_of(fen, pct) == (part, fen - part)


@given(
    st.integers(min_value=0, max_value=MAX_FEN),
    st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False),
)
def test_share_of_splits_the_whole(fen: int, pct: Decimal) -> None:
    part, rest = share_of(fen, pct)
    assert part + rest == fen
    assert 0 <= part <= fen
    assert part == round_to_fen(Decimal(fen) * pct / 10000)


def test_money_objects() -> None:
    assert to_money(2_000_050) == Money("20000.50", "CNY")
    assert from_money(Money("20000.50", "CNY")) == 2_000_050
    assert from_money(to_money(-7)) == -7
    with pytest.raises(InvalidAmount, match="CNY"):
        from_money(Money("1.00", "USD"))
    with pytest.raises(InvalidAmount, match="fen"):
        from_money(Money("1.005", "CNY"))
    for amount in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(InvalidAmount, match="finite"):
            from_money(Money(amount, "CNY"))


@given(st.integers(min_value=-MAX_FEN, max_value=MAX_FEN))
def test_money_roundtrip(fen: int) -> None:
    assert from_money(to_money(fen)) == fen
    assert decimal_to_fen(fen_to_decimal(fen)) == fen


def test_decimal_to_fen_is_exact() -> None:
    assert decimal_to_fen(Decimal("12.30")) == 1230
    assert decimal_to_fen(Decimal("1.2E+1")) == 1200
    with pytest.raises(InvalidAmount):
        decimal_to_fen(Decimal("0.001"))
    for value in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(InvalidAmount, match="finite"):
            decimal_to_fen(value)


@pytest.mark.parametrize(("text", "value"), [("6.15", "6.15"), ("80", "80"), ("0", "0"), ("2.175", "2.175")])
def test_parse_pct(text: str, value: str) -> None:
    assert parse_pct(text, field="rate_pct") == Decimal(value)


@pytest.mark.parametrize("text", ["-1", "1e2", "6.12345", " 6", "６", "06", "NaN", 6.15, 80, ""])
def test_parse_pct_refuses(text: object) -> None:
    with pytest.raises(InvalidAmount) as refused:
        parse_pct(text, field="rate_pct")
    assert refused.value.errors[0]["field"] == "rate_pct"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("80", "80"),
        ("80.0000", "80"),
        ("6.15", "6.15"),
        ("2.175", "2.175"),
        ("1.23456", "1.2346"),
        ("0", "0"),
    ],
)
def test_format_pct(value: str, text: str) -> None:
    assert format_pct(Decimal(value)) == text


def test_percent_of_rounds_half_up_once_and_keeps_its_places() -> None:
    from loanfund.money import percent_of

    assert str(percent_of(1, 3)) == "33.3333"
    assert str(percent_of(2, 3)) == "66.6667"
    assert str(percent_of(1, 8, places=2)) == "12.50"  # 12.5 exactly: places kept
    assert str(percent_of(1, 80000)) == "0.0013"  # 0.00125: half-up, not half-even
    assert str(percent_of(5, 5)) == "100.0000" and str(percent_of(0, 7)) == "0.0000"
    assert str(percent_of(3, 2, places=2)) == "150.00"  # more than the whole (over capacity)
    for part, whole in ((0, 0), (1, -5), (-1, 5)):
        with pytest.raises(ValueError):
            percent_of(part, whole)
    # The same as dividing exactly then quantizing half-up, for every small ratio.
    for whole in range(1, 60):
        for part in range(0, 3 * whole):
            exact = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            assert percent_of(part, whole) == exact, (part, whole)

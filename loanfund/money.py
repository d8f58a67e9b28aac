"""Money: the only place that parses, formats and rounds amounts.

Amounts live as integer fen (1 yuan = 100 fen) everywhere inside the library and the database.
Yuan strings exist only at the edges (API, CSV, policy files); `Money` (py-moneyed) is offered for
library callers who want a currency-aware value. Rounding is half-up to the fen, once per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from moneyed import Money

from loanfund.errors import InvalidAmount

# An amount in integer fen (分), the unit every amount is stored and computed in; never a float.
Fen = int

CURRENCY = "CNY"
FEN_PER_YUAN = 100
# 13 integer digits: up to 9,999,999,999,999.99 yuan, far beyond any fund and well inside int64 fen.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$"
_AMOUNT_RE = re.compile(AMOUNT_PATTERN)
MAX_FEN = 10**15 - 1
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Amount:
    """An amount of fen carried as a fact of an error, so the API can show it as yuan."""

    fen: int


def parse_yuan(text: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Parse an API amount string ("20000", "20000.5") into fen; anything else is refused."""
    if not isinstance(text, str) or not text.isascii() or not _AMOUNT_RE.fullmatch(text):
        raise InvalidAmount(field, 'must be a string of yuan with at most 2 decimals, like "20000.00"')
    fen = int((Decimal(text) * FEN_PER_YUAN).to_integral_exact())
    if fen == 0 and not allow_zero:
        raise InvalidAmount(field, "must be more than zero")
    return fen


def require_positive(fen: int, field: str = "amount") -> int:
    """Library callers pass fen directly; a zero or negative amount would post a reversed entry."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen <= 0 or fen > MAX_FEN:
        raise InvalidAmount(field, "must be a positive whole number of fen within range")
    return fen


def format_fen(fen: int) -> str:
    """Format fen as the API's yuan string with exactly two decimals ("-12.30" for negatives)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def round_to_fen(value: Decimal | Fraction | int) -> int:
    """Round an exact yuan amount half-up to whole fen. The one rounding rule of the system."""
    if isinstance(value, bool | float) or not isinstance(value, Decimal | Fraction | int):
        # Floats are not exact (round(2.675, 2) == 2.67): money never passes through them.
        raise TypeError(f"round_to_fen takes Decimal, Fraction or int, not {type(value).__name__}")
    if isinstance(value, Fraction):
        # Fractions come from exact schedules (2/3 subsidy); round without going through floats.
        scaled = value * FEN_PER_YUAN
        floor, remainder = divmod(scaled.numerator, scaled.denominator)
        if 2 * remainder >= scaled.denominator:
            floor += 1
        return floor if value >= 0 else -round_to_fen(-value)
    if isinstance(value, int):
        return value * FEN_PER_YUAN
    if not value.is_finite():
        raise InvalidAmount("amount", "must be a finite number")
    return int(value.quantize(_CENT, rounding=ROUND_HALF_UP) * FEN_PER_YUAN)


def fen_to_decimal(fen: int) -> Decimal:
    return Decimal(fen) / FEN_PER_YUAN


def decimal_to_fen(value: Decimal) -> int:
    """Exact conversion; a value with fractions of a fen is refused rather than rounded."""
    if not value.is_finite():  # quiet NaN and infinity pass through arithmetic without raising
        raise InvalidAmount("amount", "must be a finite number")
    try:
        scaled = (value * FEN_PER_YUAN).to_integral_exact()
    except InvalidOperation as exc:
        raise InvalidAmount("amount", "must be a finite number") from exc
    if scaled != value * FEN_PER_YUAN:
        raise InvalidAmount("amount", "has fractions of a fen")
    return int(scaled)


def share_of(fen: int, pct: Decimal) -> tuple[int, int]:
    """Split an amount: the named share (pct of it, rounded half-up) and the remainder."""
    part = round_to_fen(fen_to_decimal(fen) * pct / 100)
    return part, fen - part


def to_money(fen: int) -> Money:
    return Money(fen_to_decimal(fen), CURRENCY)


def from_money(money: Money) -> int:
    """Fen from a py-moneyed value; refuses other currencies, NaN, and sub-fen amounts."""
    if str(money.currency.code) != CURRENCY:
        raise InvalidAmount("amount", f"must be in {CURRENCY}, not {money.currency.code}")
    amount = Decimal(str(money.amount))
    return decimal_to_fen(amount)


def parse_pct(text: object, *, field: str, max_decimals: int = 4) -> Decimal:
    """Parse a percent string such as "6.15" or "80" exactly (no sign, exponent or float)."""
    if (
        not isinstance(text, str)
        or not text.isascii()
        or not re.fullmatch(rf"(0|[1-9][0-9]{{0,5}})(\.[0-9]{{1,{max_decimals}}})?", text)
    ):
        raise InvalidAmount(
            field, f'must be a decimal string with at most {max_decimals} decimals, like "6.15"'
        )
    return Decimal(text)


def format_pct(value: Decimal) -> str:
    """Percent for output: up to 4 decimals, trailing zeros dropped ("80", "6.15", "2.175")."""
    quantized = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = format(quantized.normalize(), "f")
    return text


def _fraction_places(value: Fraction, places: int) -> Decimal:
    scaled = value * 10**places
    floor, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        floor += 1
    return Decimal(floor).scaleb(-places)


def format_exact_yuan(value: Fraction, places: int = 6) -> str:
    """An unrounded yuan amount for explanation (a subsidy span), half-up at `places` decimals.

    Only for showing how a line was made: the line itself is rounded once, from the exact sum.
    """
    if value < 0:
        return "-" + format_exact_yuan(-value, places)
    return format(_fraction_places(value, places), "f")


def percent_of(part_fen: int, whole_fen: int, places: int = 4) -> Decimal:
    """`part` as a percent of `whole` (> 0, both ≥ 0), half-up at `places` decimals kept: the ratios of
    amounts the reports and alerts show (a compensation or recovery rate, a share of capacity used)."""
    if whole_fen <= 0 or part_fen < 0:
        raise ValueError("a percent of a positive whole, of a part not below zero")
    return _fraction_places(Fraction(part_fen * 100, whole_fen), places)


def fraction_to_pct(value: Fraction) -> Decimal:
    """An exact rate (e.g. 2/3 of 4.75%) as a percent with at most 4 decimals, half-up, for output."""
    if value < 0:
        return -fraction_to_pct(-value)
    return _fraction_places(value, 4).normalize() if value else Decimal(0)


# ---- display forms, for people (the dashboard); the API keeps `format_fen` ----------------------

FEN_PER_WAN = 10_000 * FEN_PER_YUAN


def format_display(fen: int) -> str:
    """As people write amounts: "¥1,234,567.89" ("-¥12.30" for negatives)."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"


def format_wan(fen: int) -> str:
    """万元 (ten thousand yuan) to two decimals, half-up, with thousands separators: 1,234,567.89
    yuan is "123.46". For wide tables whose header says 万元."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    hundredths, remainder = divmod(abs(fen), FEN_PER_WAN // 100)
    if 2 * remainder >= FEN_PER_WAN // 100:
        hundredths += 1
    sign = "-" if fen < 0 and hundredths else ""
    whole, part = divmod(hundredths, 100)
    return f"{sign}{whole:,}.{part:02d}"

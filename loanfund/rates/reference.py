"""Reference lending rates: PBOC benchmark bands and the LPR, and which one prices a loan.

Pure data and lookups, no database. The starting fixings ship with the package
(`reference-rates.csv`, changes only); administrators add later fixings, and callers build one
immutable `RateTable` from everything they hold and query it as often as they like.

Band choice (domain.md section 4, 同期同档次): the band of the loan's own term in force on its contract
date, and the latest fixing of that band on or before that date.

Staleness: the LPR series are published monthly, and a fixing older than 45 days is flagged stale
wherever it is used. The shipped CSV lists LPR rows only for the months in which the rate changed, so it
is dense monthly information through its last row although its rows are sparse: on 2023-01-10 the
2022-08-22 fixing of 3.65% *was* the current LPR, re-confirmed every month. A table therefore knows, per
monthly kind, a `dense_through` date (by default the starting CSV's last row of that kind) up to which
the series is known to be complete. A fixing used on date `on` counts as confirmed up to
`min(on, dense_through)` if it lies inside that coverage, else only on its own `effective_on`; it is stale
when `on` is more than 45 days after it was last confirmed. Consequences:
- any date up to the coverage end (2025-05-20) is never stale, whatever the age of the row used;
- after it, the fixing used must itself be at most 45 days old: administrators are expected to add every
  month's LPR, changed or not, and a missing month is exactly what the flag is there to reveal;
- PBOC series change by announcement, not on a calendar, so they are never stale.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from types import MappingProxyType
from typing import Any, NoReturn

from loanfund.errors import MissingReferenceRate, ValidationFailed, invalid

__all__ = [
    "KINDS",
    "LPR_FROM",
    "MONTHLY_KINDS",
    "PBOC1_5Y_FROM",
    "STALE_AFTER_DAYS",
    "Fixing",
    "RateTable",
    "ReferenceRate",
    "band_for",
    "latest_fixing",
    "load_starting_fixings",
    "parse_fixings_csv",
    "starting_dense_through",
    "starting_table",
]

KINDS: tuple[str, ...] = ("PBOC1Y", "PBOC1_3Y", "PBOC1_5Y", "LPR1Y", "LPR5Y")
MONTHLY_KINDS: frozenset[str] = frozenset({"LPR1Y", "LPR5Y"})
STALE_AFTER_DAYS = 45
# First contract dates of the 1-5 year benchmark band and of LPR pricing.
PBOC1_5Y_FROM = date(2014, 11, 22)
LPR_FROM = date(2019, 8, 20)

STARTING_DATA_FILE = "reference-rates.csv"
_CSV_HEADER = ["kind", "effective_on", "rate_pct"]
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RATE_RE = re.compile(r"(0|[1-9][0-9]?)(\.[0-9]{1,4})?")
_MAX_RATE_DECIMALS = 4  # the API prints rates with up to 4 decimals; more would be silently rounded


def _invalid(field: str, message: str) -> NoReturn:
    raise invalid(field, message)


@dataclass(frozen=True, slots=True)
class Fixing:
    """One published rate: `rate_pct` percent a year, in force from `effective_on` to the next fixing."""

    kind: str
    effective_on: date
    rate_pct: Decimal

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            _invalid("kind", f"must be one of {', '.join(KINDS)}")
        # A datetime is a date subclass but cannot be ordered against dates, which bisect relies on.
        if not isinstance(self.effective_on, date) or isinstance(self.effective_on, datetime):
            _invalid("effective_on", "must be a date")
        rate: Any = self.rate_pct
        if not isinstance(rate, Decimal) or not rate.is_finite():
            _invalid("rate_pct", "must be a finite Decimal")
        exponent = rate.as_tuple().exponent
        if not 0 < rate < 100 or (isinstance(exponent, int) and exponent < -_MAX_RATE_DECIMALS):
            _invalid("rate_pct", f"must be above 0 and below 100 with at most {_MAX_RATE_DECIMALS} decimals")


@dataclass(frozen=True, slots=True)
class ReferenceRate:
    """The rate that prices a loan, the fixing it came from, and whether that fixing is stale."""

    kind: str
    rate_pct: Decimal
    effective_on: date
    stale: bool


def band_for(term_months: int, contract_date: date) -> str:
    """The reference band for a loan of `term_months` contracted on `contract_date` (同期同档次).

    From 2019-08-20: LPR1Y up to 60 months, LPR5Y above. Before: up to 12 months PBOC1Y (also for the
    rare loans under 6 months); 13-36 months PBOC1_3Y up to 2014-11-21; 13-60 months PBOC1_5Y from
    2014-11-22. Terms the shipped bands do not cover (37-60 months up to 2014-11-21, the old 3-5 year
    band; over 60 months before 2019-08-20, the over-5-year band) raise ValidationFailed instead of
    borrowing a neighbouring band: no programme edition allows such a term (36 months at most), so a
    request for one is an input error, and pricing it on the wrong band would be a silent one.
    """
    if isinstance(term_months, bool) or not isinstance(term_months, int) or term_months < 1:
        _invalid("term_months", "must be a whole number of months, at least 1")
    if contract_date >= LPR_FROM:
        return "LPR1Y" if term_months <= 60 else "LPR5Y"
    if term_months <= 12:
        return "PBOC1Y"
    if contract_date >= PBOC1_5Y_FROM:
        if term_months <= 60:
            return "PBOC1_5Y"
        _invalid(
            "term_months",
            f"no benchmark band is held for terms over 60 months before {LPR_FROM.isoformat()}",
        )
    if term_months <= 36:
        return "PBOC1_3Y"
    _invalid(
        "term_months",
        f"no benchmark band is held for terms over 36 months before {PBOC1_5Y_FROM.isoformat()}",
    )


def parse_fixings_csv(text: str, *, source: str = STARTING_DATA_FILE) -> tuple[Fixing, ...]:
    """Fixings from CSV text with header `kind,effective_on,rate_pct`; rates are read as exact decimals.

    A bad row raises ValidationFailed naming `source` and its line number. Blank lines are skipped;
    a (kind, effective_on) given twice is refused, as the CSV is meant to be the single record.
    """
    reader = csv.reader(io.StringIO(text, newline=""))

    def bad(message: str) -> NoReturn:
        where = f"{source} line {reader.line_num}"
        raise ValidationFailed([{"field": where, "message": message}], detail=f"{where}: {message}")

    header = next(reader, None)
    if header != _CSV_HEADER:
        bad(f"header must be {','.join(_CSV_HEADER)}")
    fixings: list[Fixing] = []
    seen: set[tuple[str, date]] = set()
    for row in reader:
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            bad(f"expected 3 columns, found {len(row)}")
        kind, day_text, rate_text = (cell.strip() for cell in row)
        if kind not in KINDS:
            bad(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if not _DATE_RE.fullmatch(day_text):
            bad(f"effective_on {day_text!r} is not a YYYY-MM-DD date")
        try:
            effective_on = date.fromisoformat(day_text)
        except ValueError:
            bad(f"effective_on {day_text!r} is not a real date")
        if not _RATE_RE.fullmatch(rate_text):
            bad(f"rate_pct {rate_text!r} is not a plain decimal like 4.35")
        try:
            fixing = Fixing(kind, effective_on, Decimal(rate_text))
        except ValidationFailed as exc:
            bad(exc.detail)
        if (kind, effective_on) in seen:
            bad(f"{kind} {day_text} is listed twice")
        seen.add((kind, effective_on))
        fixings.append(fixing)
    return tuple(fixings)


@functools.cache
def load_starting_fixings() -> tuple[Fixing, ...]:
    """The fixings shipped with the software, in file order (read once per process)."""
    text = resources.files(__package__ or "loanfund.rates").joinpath(STARTING_DATA_FILE).read_text("utf-8")
    return parse_fixings_csv(text)


@functools.cache
def _starting_dense_through() -> MappingProxyType[str, date]:
    last: dict[str, date] = {}
    for fixing in load_starting_fixings():
        if fixing.kind in MONTHLY_KINDS and fixing.effective_on > last.get(fixing.kind, date.min):
            last[fixing.kind] = fixing.effective_on
    return MappingProxyType(last)


def starting_dense_through() -> Mapping[str, date]:
    """Per monthly kind, the last date of the shipped CSV: the series is complete up to there."""
    return _starting_dense_through()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        _invalid("kind", f"must be one of {', '.join(KINDS)}")


def _missing(kind: str, on: date, first: date | None) -> MissingReferenceRate:
    first_text = first.isoformat() if first else None
    detail = f"no {kind} fixing on or before {on.isoformat()}"
    if first_text:
        detail += f" (the first is {first_text})"
    return MissingReferenceRate(detail, kind=kind, date=on.isoformat(), first_fixing_on=first_text)


def latest_fixing(fixings: Iterable[Fixing], kind: str, on: date) -> Fixing:
    """The latest fixing of `kind` effective on or before `on`, by a single scan.

    For repeated lookups build a `RateTable` once and call `lookup`.
    """
    _check_kind(kind)
    best: Fixing | None = None
    first: date | None = None
    for fixing in fixings:
        if fixing.kind != kind:
            continue
        if first is None or fixing.effective_on < first:
            first = fixing.effective_on
        if fixing.effective_on <= on and (best is None or fixing.effective_on > best.effective_on):
            best = fixing
    if best is None:
        raise _missing(kind, on, first)
    return best


class RateTable:
    """An immutable index of fixings: per kind sorted by date, looked up by bisection.

    `dense_through` maps a monthly kind to the date up to which its series is known to be complete
    (see the module docstring); it defaults to the shipped CSV's coverage, which is right for any table
    that includes the starting data. Pass `{}` for a table whose rows are all to be taken literally.
    A (kind, effective_on) given twice with the same rate is kept once; with different rates it raises
    ValidationFailed, since which one prices a loan would otherwise depend on input order.
    """

    __slots__ = ("_dates", "_dense_through", "_fixings")

    _dates: Mapping[str, tuple[date, ...]]
    _fixings: Mapping[str, tuple[Fixing, ...]]
    _dense_through: Mapping[str, date]

    def __init__(
        self, fixings: Iterable[Fixing] = (), *, dense_through: Mapping[str, date] | None = None
    ) -> None:
        by_kind: dict[str, dict[date, Fixing]] = {kind: {} for kind in KINDS}
        for fixing in fixings:
            if not isinstance(fixing, Fixing):
                raise TypeError(f"expected Fixing, got {type(fixing).__name__}")
            known = by_kind[fixing.kind].get(fixing.effective_on)
            if known is not None and known.rate_pct != fixing.rate_pct:
                _invalid(
                    "rate_pct",
                    f"{fixing.kind} on {fixing.effective_on.isoformat()} is given as both"
                    f" {known.rate_pct} and {fixing.rate_pct}",
                )
            if known is None:
                by_kind[fixing.kind][fixing.effective_on] = fixing
        dense = dict(starting_dense_through() if dense_through is None else dense_through)
        for kind in dense:
            if kind not in MONTHLY_KINDS:
                raise ValueError(f"dense_through applies to {sorted(MONTHLY_KINDS)} only, not {kind!r}")
        ordered = {kind: tuple(by_kind[kind][day] for day in sorted(by_kind[kind])) for kind in KINDS}
        dates = {kind: tuple(f.effective_on for f in series) for kind, series in ordered.items()}
        object.__setattr__(self, "_fixings", MappingProxyType(ordered))
        object.__setattr__(self, "_dates", MappingProxyType(dates))
        object.__setattr__(self, "_dense_through", MappingProxyType(dense))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RateTable is immutable; use with_fixings() for a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("RateTable is immutable")

    def __len__(self) -> int:
        return sum(len(v) for v in self._fixings.values())

    def __iter__(self) -> Iterator[Fixing]:
        for kind in KINDS:
            yield from self._fixings[kind]

    def __repr__(self) -> str:
        known = ", ".join(f"{k}→{d.isoformat()}" for k in KINDS if (d := self.known_through(k)))
        return f"RateTable({len(self)} fixings; known through {known or 'nothing'})"

    @property
    def dense_through(self) -> Mapping[str, date]:
        return self._dense_through

    def fixings(self, kind: str | None = None) -> tuple[Fixing, ...]:
        """All fixings (by kind in KINDS order, then date), or those of one kind by date."""
        if kind is None:
            return tuple(self)
        _check_kind(kind)
        return self._fixings[kind]

    def with_fixings(self, *fixings: Fixing) -> RateTable:
        """A new table with `fixings` added (same coverage); this one is left as it was."""
        return RateTable((*self, *fixings), dense_through=self._dense_through)

    def known_through(self, kind: str) -> date | None:
        """The date of the latest fixing of `kind`, or None when there is none."""
        _check_kind(kind)
        dates = self._dates[kind]
        return dates[-1] if dates else None

    def lookup(self, kind: str, on: date) -> Fixing:
        """The latest fixing of `kind` effective on or before `on`; MissingReferenceRate if none."""
        _check_kind(kind)
        dates = self._dates[kind]
        index = bisect_right(dates, on) - 1
        if index < 0:
            raise _missing(kind, on, dates[0] if dates else None)
        return self._fixings[kind][index]

    def is_stale(self, fixing: Fixing, on: date) -> bool:
        """Whether `fixing`, used for date `on`, is stale (module docstring: last confirmed > 45 days)."""
        if fixing.kind not in MONTHLY_KINDS:
            return False
        confirmed = fixing.effective_on
        dense = self._dense_through.get(fixing.kind)
        if dense is not None and fixing.effective_on <= dense:
            confirmed = max(confirmed, min(on, dense))
        return (on - confirmed).days > STALE_AFTER_DAYS

    def reference(self, kind: str, on: date) -> ReferenceRate:
        """The fixing of `kind` in force on `on`, with its staleness flag."""
        fixing = self.lookup(kind, on)
        return ReferenceRate(kind, fixing.rate_pct, fixing.effective_on, self.is_stale(fixing, on))

    def for_loan(self, term_months: int, contract_date: date) -> ReferenceRate:
        """The reference rate of a loan: its term's band (`band_for`) in force on its contract date."""
        return self.reference(band_for(term_months, contract_date), contract_date)


@functools.cache
def starting_table() -> RateTable:
    """A table of the shipped fixings only (shared; tables are immutable)."""
    return RateTable(load_starting_fixings())

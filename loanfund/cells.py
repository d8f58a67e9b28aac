"""Text in spreadsheet cells: what a person typed (a loan number, a name, a reason) stays text in the
CSV files finance opens in Excel, even when it starts like a formula ("=HYPERLINK(…)", "+1", "@SUM")."""

from __future__ import annotations

__all__ = ["FORMULA_START", "csv_text"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """A leading ' makes a spreadsheet read a cell that starts like a formula as text."""
    return "'" + value if value.startswith(FORMULA_START) else value

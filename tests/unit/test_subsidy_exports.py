"""The finance bureau's files keep every text as text: a loan number or a review reason that starts
like a formula ("=HYPERLINK(…)", "+1", "-2", "@SUM(…)") is not one in the XLSX (opened with openpyxl)
nor in the CSV (Excel reads a leading ' as "this is text")."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from loanfund.subsidies.exports import to_csv, to_xlsx
from loanfund.subsidies.queries import Claim, ClaimLine

NUMBERS = ['=HYPERLINK("http://x","1")', "+1", "-2", "@SUM(A1:A2)", "N-3"]

CLAIM = Claim(
    id="sc_1",
    fund_code="HRB",
    bank_code="ICBC",
    region_code="230100",
    period="2009Q1",
    period_start=date(2009, 1, 1),
    period_end=date(2009, 4, 1),
    status="approved",
    line_count=len(NUMBERS),
    interest_fen=500,
    total_fen=500,
    approved_total_fen=500,
    filed_on=date(2009, 4, 2),
    filed_at=datetime(2009, 4, 2, tzinfo=UTC),
    filed_by=None,
    reviewed_at=None,
    reviewed_by=None,
    paid_on=None,
    paid_at=None,
    paid_by=None,
    entry_id=None,
)


def line(number: str) -> ClaimLine:
    return ClaimLine(
        loan_id=f"loan_{number}",
        loan_number=number,
        opening_fen=100_000,
        closing_fen=100_000,
        disbursed_fen=0,
        repaid_fen=0,
        days=90,
        excluded_days=0,
        annual_rate_pct=Decimal("5.4"),
        reference_rate_pct=Decimal("5.4"),
        subsidy_rate_pct=Decimal("5.4"),
        interest_fen=100,
        subsidy_fen=100,
        approved_fen=100,
        review_reason="=1+1",
        policy_edition="cn-2008",
        day_count_basis=360,
        exclusions=[],
        spans=[],
    )


def test_text_that_looks_like_a_formula_stays_text() -> None:
    lines = [line(n) for n in NUMBERS]
    sheet = load_workbook(io.BytesIO(to_xlsx(CLAIM, lines))).active
    cells = [row for row in sheet.iter_rows(min_row=3, max_row=2 + len(NUMBERS))]
    assert [(row[1].value, row[1].data_type) for row in cells] == [(n, "s") for n in NUMBERS]
    assert {(row[15].value, row[15].data_type) for row in cells} == {("=1+1", "s")}
    assert cells[0][13].data_type == "n"  # amounts stay numbers

    rows = list(csv.reader(io.StringIO(to_csv(CLAIM, lines).decode("utf-8-sig"))))[2 : 2 + len(NUMBERS)]
    assert [row[1] for row in rows] == ["'" + n for n in NUMBERS[:4]] + ["N-3"]
    assert {row[15] for row in rows} == {"'=1+1"}
    assert rows[0][13] == "1.00"

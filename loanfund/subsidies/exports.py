"""A claim in the layout a finance bureau works in: one row per loan, then totals.

Chinese headings; amounts as plain numbers (no ¥, no thousands separator in CSV) so that a
spreadsheet sums them. CSV is UTF-8 with a byte-order mark, which Excel needs to read Chinese.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from loanfund.cells import csv_text
from loanfund.money import format_fen, format_pct
from loanfund.subsidies.queries import Claim, ClaimLine

__all__ = ["HEADINGS", "REASONS_ZH", "to_csv", "to_xlsx"]

HEADINGS = (
    "序号",
    "贷款编号",
    "期初本金",
    "期末本金",
    "本期发放",
    "本期收回",
    "计息天数",
    "剔除天数",
    "剔除原因",
    "合同利率(%)",
    "基准利率(%)",
    "贴息利率(%)",
    "利息",
    "申请贴息",
    "核定贴息",
    "核定说明",
    "政策版本",
)
# Columns summed in the totals row, by heading.
_SUMMED = ("期初本金", "期末本金", "本期发放", "本期收回", "利息", "申请贴息", "核定贴息")
REASONS_ZH = {"extension": "展期", "overdue": "逾期", "compensated": "代偿后"}
_MONEY_FORMAT = "0.00"


def _yuan(fen: int) -> Decimal:
    """Exactly two decimals, as the money format writes them ("240.00", not "240")."""
    return Decimal(format_fen(fen))


def _reasons(line: ClaimLine) -> str:
    return "；".join(
        f"{REASONS_ZH.get(e['reason'], e['reason'])} {e['from']}至{e['to']}（{e['days']}天）"
        for e in line.exclusions
    )


def _row(index: int, line: ClaimLine) -> list[object]:
    return [
        index,
        line.loan_number,
        _yuan(line.opening_fen),
        _yuan(line.closing_fen),
        _yuan(line.disbursed_fen),
        _yuan(line.repaid_fen),
        line.days,
        line.excluded_days,
        _reasons(line),
        Decimal(format_pct(line.annual_rate_pct)),
        Decimal(format_pct(line.reference_rate_pct)),
        Decimal(format_pct(line.subsidy_rate_pct)),
        _yuan(line.interest_fen),
        _yuan(line.subsidy_fen),
        None if line.approved_fen is None else _yuan(line.approved_fen),
        line.review_reason or "",
        line.policy_edition,
    ]


def _totals(claim: Claim, lines: Sequence[ClaimLine]) -> list[object]:
    def total(fen: Sequence[int]) -> Decimal:
        return _yuan(sum(fen))

    row: list[object] = [""] * len(HEADINGS)
    row[0] = "合计"
    row[1] = len(lines)  # the count of loans, in the loan-number column
    sums = {
        "期初本金": total([x.opening_fen for x in lines]),
        "期末本金": total([x.closing_fen for x in lines]),
        "本期发放": total([x.disbursed_fen for x in lines]),
        "本期收回": total([x.repaid_fen for x in lines]),
        "计息天数": sum(x.days for x in lines),
        "剔除天数": sum(x.excluded_days for x in lines),
        "利息": total([x.interest_fen for x in lines]),
        "申请贴息": total([x.subsidy_fen for x in lines]),
        "核定贴息": None if claim.approved_total_fen is None else _yuan(claim.approved_total_fen),
    }
    for heading, value in sums.items():
        row[HEADINGS.index(heading)] = value
    return row


def _title(claim: Claim) -> str:
    return (
        f"创业担保贷款贴息申请表 基金 {claim.fund_code} 银行 {claim.bank_code} 期间 {claim.period}"
        f"（{claim.period_start}至{claim.period_end}，不含） 申请编号 {claim.id}"
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return csv_text(value)
    return str(value)


def to_csv(claim: Claim, lines: Sequence[ClaimLine]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_title(claim)])
    writer.writerow(HEADINGS)
    for index, line in enumerate(lines, start=1):
        writer.writerow([_text(v) for v in _row(index, line)])
    writer.writerow([_text(v) for v in _totals(claim, lines)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(claim: Claim, lines: Sequence[ClaimLine]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(f"贴息{claim.period}")
    sheet.append([_title(claim)])
    sheet.append(list(HEADINGS))
    money_columns = {HEADINGS.index(h) for h in _SUMMED}
    for index, line in enumerate(lines, start=1):
        sheet.append(_cells(sheet, _row(index, line), money_columns, bold=False))
    sheet.append(_cells(sheet, _totals(claim, lines), money_columns, bold=True))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cells(sheet: Any, values: list[object], money_columns: set[int], *, bold: bool) -> list[object]:
    cells: list[object] = []
    for column, value in enumerate(values):
        cell = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, whatever the text starts with
        if column in money_columns:
            cell.number_format = _MONEY_FORMAT
        if bold:
            cell.font = Font(bold=True)
        cells.append(cell)
    return cells

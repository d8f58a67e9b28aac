"""A portfolio report as rows with Chinese headings, written as CSV (UTF-8 with a BOM, so that Excel
reads the Chinese) or as an XLSX workbook (xlsxwriter). Amounts are yuan strings with two decimals in
CSV and numbers with a 0.00 format in XLSX (exact: every amount is a whole number of fen)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import xlsxwriter

from loanfund.money import fen_to_decimal, format_fen, format_pct
from loanfund.reports.portfolio_report import Portfolio

HEADINGS = ("基金", "合作银行", "统计日", "类别", "项目", "笔数", "金额(元)", "在贷余额(元)", "比率(%)")

STATUS_NAMES = {
    "active": "正常",
    "overdue": "逾期",
    "repaid": "已结清",
    "compensated": "已代偿",
    "written_off": "已核销",
}
BUCKET_NAMES = {
    "current": "未逾期",
    "1-30": "逾期1–30天",
    "31-60": "逾期31–60天",
    "61-90": "逾期61–90天",
    "90+": "逾期90天以上",
}
ALL_BANKS = "全部"

Cell = str | int | Decimal | None
Row = tuple[str, str, str, str, str, int | None, int | None, int | None, Decimal | None]


def _rows_of(report: Portfolio) -> list[Row]:
    fund, bank, day = report.fund_code, report.bank_code or ALL_BANKS, report.as_of.isoformat()

    def row(
        section: str,
        item: str,
        loans: int | None,
        fen: int | None = None,
        owed: int | None = None,
        pct: Decimal | None = None,
    ) -> Row:
        return (fund, bank, day, section, item, loans, fen, owed, pct)

    rows: list[Row] = []
    for status, line in report.by_status.items():
        rows.append(
            row("贷款状态", STATUS_NAMES[status], line.loans, line.principal_fen, line.outstanding_fen)
        )
    for bucket, line in report.by_bucket.items():
        rows.append(
            row("逾期分类", BUCKET_NAMES[bucket], line.loans, line.principal_fen, line.outstanding_fen)
        )
    rows += [
        row("担保", "发放担保贷款", report.issued.loans, report.issued.fen),
        row("担保", "已还清解除担保", report.repaid.loans, report.repaid.fen),
        row("担保", "代偿", report.compensated.loans, report.compensated.fen),
        row("担保", "追偿(基金部分)", None, report.recovered_fund_fen),
        row("担保", "追偿(银行部分)", None, report.recovered_bank_fen),
        row("担保", "核销", report.written_off.loans, report.written_off.fen),
    ]
    rate = report.compensation_rate
    if rate is not None:
        rows.append(row("比率", "代偿率(近12个月)", None, rate.compensation_paid_fen, None, rate.rate_pct))
        rows.append(row("比率", "近12个月解除担保本金", None, rate.released_principal_fen))
    rows.append(row("比率", "追偿率(累计)", None, report.recovered_fund_fen, None, report.recovery_rate_pct))
    if report.bank_code is None:
        rows.append(row("比率", "代偿率超过20%警示", 1 if report.red_flag else 0))
    rows += [
        row("就业", "4050人员", report.borrowers_4050),
        row("就业", "带动就业人数", report.jobs_created),
    ]
    for part in report.banks:
        rows += _rows_of(part)
    return rows


def rows(report: Portfolio) -> list[Row]:
    return _rows_of(report)


def to_csv(report: Portfolio) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADINGS)
    for fund, bank, day, section, item, loans, fen, owed, pct in rows(report):
        writer.writerow(
            [
                fund,
                bank,
                day,
                section,
                item,
                "" if loans is None else loans,
                "" if fen is None else format_fen(fen),
                "" if owed is None else format_fen(owed),
                "" if pct is None else format_pct(pct),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Portfolio) -> bytes:
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = workbook.add_worksheet("担保贷款组合报表")
    bold = workbook.add_format({"bold": True})
    yuan = workbook.add_format({"num_format": "#,##0.00"})
    pct = workbook.add_format({"num_format": "0.0000"})
    sheet.write_row(0, 0, HEADINGS, bold)
    for r, (fund, bank, day, section, item, loans, fen, owed, rate) in enumerate(rows(report), start=1):
        sheet.write_row(r, 0, (fund, bank, day, section, item))
        if loans is not None:
            sheet.write_number(r, 5, loans)
        if fen is not None:
            sheet.write_number(r, 6, fen_to_decimal(fen), yuan)
        if owed is not None:
            sheet.write_number(r, 7, fen_to_decimal(owed), yuan)
        if rate is not None:
            sheet.write_number(r, 8, rate, pct)
    sheet.set_column(0, 2, 12)
    sheet.set_column(3, 4, 22)
    sheet.set_column(5, 8, 16)
    sheet.freeze_panes(1, 0)
    workbook.close()
    return out.getvalue()

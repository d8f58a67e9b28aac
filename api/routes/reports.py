"""Portfolio reports (fund_manager, auditor; a bank for its own part): JSON, CSV or XLSX."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Response, Router, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from api.auth import READERS, authorize
from api.context import RequestContext
from api.routes.claims import RateOut, rate_out
from api.types import Currency, YuanOut
from loanfund.agreements import queries as agreement_queries
from loanfund.errors import NotFound, invalid
from loanfund.funds import queries as fund_queries
from loanfund.money import CURRENCY, format_fen, format_pct
from loanfund.reports import export
from loanfund.reports.portfolio_report import Portfolio, StatusLine, Tally, portfolio

Ctx = NamedDependency[RequestContext]
VIEWERS = (*READERS, "bank")
FORMATS = ("json", "csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class LineOut(msgspec.Struct):
    loans: int
    principal: YuanOut
    outstanding: YuanOut


class TallyOut(msgspec.Struct):
    loans: int
    amount: YuanOut


class RecoveredOut(msgspec.Struct):
    fund_part: YuanOut
    bank_part: YuanOut
    total: YuanOut


class GuaranteesOut(msgspec.Struct):
    issued: TallyOut  # loans disbursed, principal
    repaid: TallyOut  # repaid in full, principal
    compensated: TallyOut  # claims paid, amount paid
    recovered: RecoveredOut
    written_off: TallyOut


class PortfolioOut(msgspec.Struct):
    fund_code: str
    bank_code: str | None
    as_of: date
    currency: Currency
    by_status: dict[str, LineOut]
    by_bucket: dict[str, LineOut]
    guarantees: GuaranteesOut
    compensation_rate: RateOut
    recovery_rate_pct: str | None
    red_flag: bool | None  # the fund's compensation rate above 20% (fund reports only)
    borrowers_4050: int
    jobs_created: int
    banks: list[PortfolioOut]


def _line(line: StatusLine) -> LineOut:
    return LineOut(line.loans, format_fen(line.principal_fen), format_fen(line.outstanding_fen))


def _tally(tally: Tally) -> TallyOut:
    return TallyOut(tally.loans, format_fen(tally.fen))


def portfolio_out(report: Portfolio) -> PortfolioOut:
    assert report.compensation_rate is not None
    recovery = report.recovery_rate_pct
    return PortfolioOut(
        fund_code=report.fund_code,
        bank_code=report.bank_code,
        as_of=report.as_of,
        currency=CURRENCY,
        by_status={status: _line(line) for status, line in report.by_status.items()},
        by_bucket={bucket: _line(line) for bucket, line in report.by_bucket.items()},
        guarantees=GuaranteesOut(
            issued=_tally(report.issued),
            repaid=_tally(report.repaid),
            compensated=_tally(report.compensated),
            recovered=RecoveredOut(
                format_fen(report.recovered_fund_fen),
                format_fen(report.recovered_bank_fen),
                format_fen(report.recovered_fund_fen + report.recovered_bank_fen),
            ),
            written_off=_tally(report.written_off),
        ),
        compensation_rate=rate_out(report.compensation_rate),
        recovery_rate_pct=None if recovery is None else format_pct(recovery),
        red_flag=report.red_flag if report.bank_code is None else None,
        borrowers_4050=report.borrowers_4050,
        jobs_created=report.jobs_created,
        banks=[portfolio_out(part) for part in report.banks],
    )


@get("/reports/portfolio", media_type="application/json")
async def portfolio_report(
    ctx: Ctx,
    fund_code: FromQuery[str | None] = None,
    bank_code: FromQuery[str | None] = None,
    as_of: FromQuery[date | None] = None,
    format: FromQuery[str] = "json",
) -> Response[Any]:
    """A fund's portfolio as of a date (default today), with a part per bank; or one bank's part
    (`bank_code`, and always for a bank). `format`: json, csv or xlsx (Chinese headings)."""
    if fund_code is None:  # required, but refused like any other missing field (422)
        authorize(ctx, VIEWERS)  # after a refusal for the role (403 before 422)
        raise invalid("fund_code", "is required")
    fund = await fund_queries.get_fund(ctx.conn, fund_code)
    if ctx.client.role == "bank":
        bank_code = bank_code or ctx.client.bank_code
    authorize(ctx, VIEWERS, region_code=fund.region_code, bank_code=bank_code, what="fund")
    if format not in FORMATS:
        raise invalid("format", f"must be one of {', '.join(FORMATS)}")
    if bank_code is not None and bank_code not in await agreement_queries.fund_bank_codes(
        ctx.conn, fund_code
    ):
        raise NotFound(f"fund {fund_code} has never had an agreement with bank {bank_code}")
    report = await portfolio(ctx.conn, fund_code, bank_code=bank_code, as_of=as_of or ctx.today)
    name = f"portfolio-{fund_code}{'-' + bank_code if bank_code else ''}-{report.as_of.isoformat()}"
    if format == "csv":
        return Response(
            export.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "xlsx":
        return Response(
            export.to_xlsx(report),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(msgspec.json.encode(portfolio_out(report)), media_type="application/json")


router = Router(path="/", route_handlers=[portfolio_report])

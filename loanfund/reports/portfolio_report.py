"""The portfolio report of a fund (with a part per bank) or of a fund at one bank, as of a date.

Everything is as it stood at the end of `as_of`: a loan's status and bucket, principal still owed,
what was repaid, compensated, recovered and written off by then. What a bank reported later about
days up to `as_of` (a missed instalment it was late to report) is taken into account.

Status on the day: `written_off` once written off, else `compensated` once its claim was paid, else
`repaid` once repaid in full, else `overdue` while it has days past due, else `active`.
Rates: the compensation rate is the trailing-12-month ratio of `loanfund.claims.risk`; the recovery
rate is the fund's part of all recoveries so far ÷ all compensation it paid so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.agreements import queries as agreement_queries
from loanfund.claims import risk
from loanfund.funds import queries as fund_queries
from loanfund.loans import delinquency
from loanfund.loans.queries import STATUSES
from loanfund.money import percent_of
from loanfund.reports import portfolio_queries as queries


@dataclass
class Tally:
    loans: int = 0
    fen: int = 0

    def add(self, fen: int) -> None:
        self.loans += 1
        self.fen += fen


@dataclass
class StatusLine:
    loans: int = 0
    principal_fen: int = 0  # as disbursed
    outstanding_fen: int = 0  # still owed on the day (0 once repaid, compensated or written off)


@dataclass
class Portfolio:
    fund_code: str
    bank_code: str | None
    as_of: date
    by_status: dict[str, StatusLine] = field(default_factory=lambda: {s: StatusLine() for s in STATUSES})
    by_bucket: dict[str, StatusLine] = field(
        default_factory=lambda: {b: StatusLine() for b in delinquency.BUCKETS}
    )
    issued: Tally = field(default_factory=Tally)  # loans disbursed, principal
    repaid: Tally = field(default_factory=Tally)  # loans repaid in full, principal
    compensated: Tally = field(default_factory=Tally)  # claims paid, amount paid
    written_off: Tally = field(default_factory=Tally)  # loans written off, amount
    recovered_fund_fen: int = 0
    recovered_bank_fen: int = 0
    borrowers_4050_ids: set[str] = field(default_factory=set)
    jobs_created: int = 0
    compensation_rate: risk.CompensationRate | None = None
    red_flag: bool = False  # the fund's rate above risk.FUND_RED_FLAG_PCT (fund reports only)
    banks: list[Portfolio] = field(default_factory=list)

    @property
    def borrowers_4050(self) -> int:
        """Distinct 4050 borrowers among the loans."""
        return len(self.borrowers_4050_ids)

    @property
    def recovery_rate_pct(self) -> Decimal | None:
        if self.compensated.fen <= 0:
            return None
        return percent_of(self.recovered_fund_fen, self.compensated.fen)


def _status(loan: Any, claim: Any, written_off: bool, dpd: int, as_of: date) -> str:
    if written_off:
        return "written_off"
    if claim is not None:
        return "compensated"
    if loan.repaid_on is not None and loan.repaid_on <= as_of:
        return "repaid"
    return "overdue" if dpd > 0 else "active"


def _add(
    report: Portfolio,
    loan: Any,
    claim: Any,
    written: int | None,
    repaid_fen: int,
    dpd: int,
    recovered: tuple[int, int],
) -> None:
    as_of = report.as_of
    status = _status(loan, claim, written is not None, dpd, as_of)
    owed = loan.principal_fen - repaid_fen if status in ("active", "overdue") else 0
    line = report.by_status[status]
    line.loans += 1
    line.principal_fen += loan.principal_fen
    line.outstanding_fen += owed
    if status in ("active", "overdue"):
        bucket = report.by_bucket[delinquency.bucket_of(dpd)]
        bucket.loans += 1
        bucket.principal_fen += loan.principal_fen
        bucket.outstanding_fen += owed
    report.issued.add(loan.principal_fen)
    if status == "repaid":
        report.repaid.add(loan.principal_fen)
    if claim is not None:
        report.compensated.add(claim.amount_fen)
    if written is not None:
        report.written_off.add(written)
    report.recovered_fund_fen += recovered[0]
    report.recovered_bank_fen += recovered[1]
    if loan.is_4050:
        report.borrowers_4050_ids.add(loan.borrower_id)
    report.jobs_created += loan.jobs_created


async def _tally(
    conn: AsyncConnection, fund_code: str, bank_code: str | None, as_of: date, parts: dict[str, Portfolio]
) -> Portfolio:
    """One pass over the loans fills the report and, for a fund report, the part of each bank."""
    scope = (fund_code, bank_code, as_of)
    rows = await queries.loans_disbursed(conn, *scope)
    repaid = await queries.principal_repaid(conn, scope)
    claims = await queries.paid_claims(conn, scope)
    recovered = await queries.recovered(conn, scope)
    written = await queries.written_off(conn, scope)
    missed = await queries.missed_instalments(conn, scope)
    report = Portfolio(fund_code, bank_code, as_of)
    for loan in rows:
        claim = claims.get(loan.id)
        arrears = delinquency.arrears_of(
            loan, missed.get(loan.id, []), None if claim is None else claim.decided_on
        )
        figures = (
            claim,
            written.get(loan.id),
            repaid.get(loan.id, 0),
            delinquency.days_past_due(arrears, as_of),
            recovered.get(loan.id, (0, 0)),
        )
        _add(report, loan, *figures)
        if bank_code is None:
            if loan.bank_code not in parts:
                parts[loan.bank_code] = Portfolio(fund_code, loan.bank_code, as_of)
            _add(parts[loan.bank_code], loan, *figures)
    return report


async def portfolio(
    conn: AsyncConnection, fund_code: str, *, bank_code: str | None = None, as_of: date
) -> Portfolio:
    """The fund's report (with one part per bank it has had an agreement with), or one bank's."""
    await fund_queries.get_fund(conn, fund_code)  # NotFound for an unknown fund
    parts = {
        code: Portfolio(fund_code, code, as_of)
        for code in (
            [] if bank_code is not None else await agreement_queries.fund_bank_codes(conn, fund_code)
        )
    }
    report = await _tally(conn, fund_code, bank_code, as_of, parts)
    report.compensation_rate = await risk.compensation_rate(conn, fund_code, bank_code, as_of=as_of)
    if bank_code is None:
        report.red_flag = report.compensation_rate.above(risk.FUND_RED_FLAG_PCT)
        for code in sorted(parts):
            part = parts[code]
            part.compensation_rate = await risk.compensation_rate(conn, fund_code, code, as_of=as_of)
            report.banks.append(part)
    return report

"""A loan's arrears as of any date: days past due, bucket, the history of moves, missed instalments."""

from __future__ import annotations

from datetime import date

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import READERS, authorize
from api.context import RequestContext
from api.types import Currency, YuanOut
from loanfund.loans import delinquency
from loanfund.loans import queries as loan_queries
from loanfund.money import CURRENCY, format_fen

Ctx = NamedDependency[RequestContext]
VIEWERS = (*READERS, "bank")


class MoveOut(msgspec.Struct):
    on: date
    bucket: str
    days_past_due: int


class MissedOut(msgspec.Struct):
    id: str
    overdue_since: date
    currency: Currency
    principal: YuanOut
    interest: YuanOut
    paid_principal: YuanOut
    paid_interest: YuanOut
    reported_on: date
    cured_on: date | None


class DelinquencyOut(msgspec.Struct):
    loan_id: str
    as_of: date
    days_past_due: int
    bucket: str
    history: list[MoveOut]
    missed_instalments: list[MissedOut]


@get("/loans/{loan_id:str}/delinquency")
async def loan_delinquency(
    ctx: Ctx, loan_id: FromPath[str], as_of: FromQuery[date | None] = None
) -> DelinquencyOut:
    """`as_of` may be any date (default today); what the bank has reported since is taken into account."""
    loan = await loan_queries.get_loan(ctx.conn, loan_id, ctx.today)
    authorize(ctx, VIEWERS, region_code=loan.region_code, bank_code=loan.bank_code, what="loan")
    day = as_of or ctx.today
    instalments = (await delinquency.missed_instalments(ctx.conn, [loan.id]))[loan.id]
    compensated = (await delinquency.compensated_on(ctx.conn, [loan.id])).get(loan.id)
    arrears = delinquency.arrears_of(loan, instalments, compensated)
    dpd = delinquency.days_past_due(arrears, day)
    return DelinquencyOut(
        loan_id=loan.id,
        as_of=day,
        days_past_due=dpd,
        bucket=delinquency.bucket_of(dpd),
        history=[MoveOut(m.on, m.bucket, m.days_past_due) for m in delinquency.history(arrears, day)],
        missed_instalments=[
            MissedOut(
                id=i.id,
                overdue_since=i.overdue_since,
                currency=CURRENCY,
                principal=format_fen(i.principal_fen),
                interest=format_fen(i.interest_fen),
                paid_principal=format_fen(i.paid_principal_fen),
                paid_interest=format_fen(i.paid_interest_fen),
                reported_on=i.reported_on,
                cured_on=i.cured_on,
            )
            for i in instalments
            if i.reported_on <= day or i.overdue_since <= day
        ],
    )


router = Router(path="/", route_handlers=[loan_delinquency])

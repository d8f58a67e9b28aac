"""A fund's books: the trial balance and the journal."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import READERS
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from api.routes.funds import scoped_fund
from api.types import Currency, YuanOut
from loanfund import ledger
from loanfund.errors import invalid
from loanfund.ledger import accounts
from loanfund.money import CURRENCY, format_fen

Ctx = NamedDependency[RequestContext]


class TrialBalanceLineOut(msgspec.Struct):
    account: str
    debit: YuanOut
    credit: YuanOut
    balance: YuanOut


class TrialBalanceOut(msgspec.Struct):
    fund_code: str
    as_of: date | None
    currency: Currency
    accounts: list[TrialBalanceLineOut]
    total_debit: YuanOut
    total_credit: YuanOut


class PostingOut(msgspec.Struct):
    account: str
    debit: YuanOut
    credit: YuanOut


class EntryOut(msgspec.Struct):
    id: str
    entry_date: date
    kind: str
    description: str
    reference: str | None
    reverses_entry_id: str | None
    client_id: str | None
    currency: Currency
    postings: list[PostingOut]


class EntryPage(msgspec.Struct):
    items: list[EntryOut]
    next_cursor: str | None


@get("/funds/{code:str}/trial-balance")
async def get_trial_balance(
    ctx: Ctx, code: FromPath[str], as_of: FromQuery[date | None] = None
) -> TrialBalanceOut:
    await scoped_fund(ctx, code, READERS)
    tb = await ledger.trial_balance(ctx.conn, code, as_of=as_of)
    return TrialBalanceOut(
        fund_code=code,
        as_of=as_of,
        currency=CURRENCY,
        accounts=[
            TrialBalanceLineOut(
                line.account,
                format_fen(line.debit_fen),
                format_fen(line.credit_fen),
                format_fen(line.balance_fen),
            )
            for line in tb.lines
        ],
        total_debit=format_fen(tb.total_debit_fen),
        total_credit=format_fen(tb.total_credit_fen),
    )


@get("/funds/{code:str}/ledger")
async def get_ledger(
    ctx: Ctx,
    code: FromPath[str],
    account: FromQuery[str | None] = None,
    date_from: Annotated[date | None, QueryParameter(name="from")] = None,
    date_to: Annotated[date | None, QueryParameter(name="to")] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> EntryPage:
    await scoped_fund(ctx, code, READERS)
    limit = check_limit(limit)
    if account is not None and not accounts.is_valid(account):
        raise invalid("account", "is not an account of the chart")
    rows = await ledger.queries.list_entries(
        ctx.conn,
        code,
        account=account,
        date_from=date_from,
        date_to=date_to,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda entry: entry.id)
    return EntryPage(
        items=[
            EntryOut(
                id=e.id,
                entry_date=e.entry_date,
                kind=e.kind,
                description=e.description,
                reference=e.reference,
                reverses_entry_id=e.reverses_entry_id,
                client_id=e.client_id,
                currency=CURRENCY,
                postings=[
                    PostingOut(name, format_fen(max(fen, 0)), format_fen(max(-fen, 0)))
                    for name, fen in e.postings
                ],
            )
            for e in items
        ],
        next_cursor=next_cursor,
    )


router = Router(
    path="/",
    route_handlers=[
        get_trial_balance,
        get_ledger,
    ],
)

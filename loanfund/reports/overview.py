"""Fund overview: each fund's position and where its money came from, from the kept balances."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.funds.service import Position, position_from_balances
from loanfund.ledger import accounts
from loanfund.reports import queries

SOURCES = tuple(s for s in accounts.CAPITAL_SOURCES if s != "subsidy")


@dataclass(frozen=True)
class FundOverview:
    code: str
    name: str
    region_code: str
    position: Position
    contributed_by_source: dict[str, int]  # capital:{source}, credit-normal, subsidy apart
    subsidy_received_fen: int
    subsidy_paid_fen: int
    recoverable_fen: int  # compensation paid and not yet recovered or written off


async def fund_overview(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None = None
) -> list[FundOverview]:
    """One line per fund in scope, two statements in all."""
    signed: dict[str, dict[str, int]] = defaultdict(dict)
    for row in await queries.balances(conn, region_prefix, fund_code):
        signed[row.fund_code][row.name] = int(row.balance_fen)
    result = []
    for fund in await queries.funds_in_scope(conn, region_prefix):
        if fund_code is not None and fund.code != fund_code:
            continue
        books = signed.get(fund.code, {})
        result.append(
            FundOverview(
                code=fund.code,
                name=fund.name,
                region_code=fund.region_code,
                position=position_from_balances(books),
                contributed_by_source={s: -books.get(accounts.capital(s), 0) for s in SOURCES},
                subsidy_received_fen=-books.get(accounts.capital("subsidy"), 0),
                subsidy_paid_fen=sum(f for n, f in books.items() if n.startswith("subsidy_paid:")),
                recoverable_fen=sum(f for n, f in books.items() if n.startswith("recoverable:")),
            )
        )
    return result

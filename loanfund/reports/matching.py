"""Matching of every allocation in scope (two statements, whatever the number of funds)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.funds.service import AllocationMatching, matching_status, required_match_fen
from loanfund.reports import queries


async def matching(
    conn: AsyncConnection, region_prefix: str, as_of: date, fund_code: str | None = None
) -> list[tuple[str, AllocationMatching]]:
    """(fund code, matching) per allocation, as `loanfund.funds.service.matching` reports each fund's."""
    matched = await queries.matched_by_allocation(conn, region_prefix, fund_code, as_of)
    result = []
    for row in await queries.allocations_as_of(conn, region_prefix, fund_code, as_of):
        required = required_match_fen(row.amount_fen, row.match_ratio_pct)
        got = matched.get(row.id, 0)
        result.append(
            (
                row.fund_code,
                AllocationMatching(
                    allocation_id=row.id,
                    reference=row.reference,
                    amount_fen=row.amount_fen,
                    required_fen=required,
                    matched_fen=got,
                    shortfall_fen=max(required - got, 0),
                    due_on=row.match_due_on,
                    status=matching_status(required, got, row.match_due_on, as_of),
                ),
            )
        )
    return result

"""The reads a portfolio report needs: a fund's loans (at one bank or all) and what happened to them."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import (
    applications,
    compensation_claims,
    loan_missed_instalments,
    loan_recoveries,
    loan_repayments,
    loan_write_offs,
    loans,
)
from loanfund.loans.delinquency import MissedInstalment, instalment_from_row


async def loans_disbursed(
    conn: AsyncConnection, fund_code: str, bank_code: str | None, as_of: date
) -> list[Any]:
    """Loans disbursed by `as_of`, with the 4050 flag and jobs of their applications."""
    query = (
        sa.select(
            loans.c.id,
            loans.c.bank_code,
            loans.c.borrower_id,
            loans.c.principal_fen,
            loans.c.disbursed_on,
            loans.c.maturity_on,
            loans.c.repaid_on,
            loans.c.overdue_since,
            loans.c.status,
            applications.c.is_4050,
            applications.c.jobs_created,
        )
        .join(applications, applications.c.id == loans.c.application_id)
        .where(loans.c.fund_code == fund_code, loans.c.disbursed_on <= as_of)
        .order_by(loans.c.id)
    )
    if bank_code is not None:
        query = query.where(loans.c.bank_code == bank_code)
    result = await conn.execute(query)
    return list(result.all())


Scope = tuple[str, str | None, date]  # fund, bank (or all), as of


def _in(column: sa.Column[Any], scope: Scope) -> sa.ColumnElement[bool]:
    """The report's loans as a subquery, not a list of ids: a fund may have hundreds of thousands."""
    fund_code, bank_code, as_of = scope
    ids = sa.select(loans.c.id).where(loans.c.fund_code == fund_code, loans.c.disbursed_on <= as_of)
    if bank_code is not None:
        ids = ids.where(loans.c.bank_code == bank_code)
    return column.in_(ids)


async def principal_repaid(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    as_of = scope[2]
    query = (
        sa.select(loan_repayments.c.loan_id, sa.func.sum(loan_repayments.c.principal_fen).label("fen"))
        .where(_in(loan_repayments.c.loan_id, scope), loan_repayments.c.paid_on <= as_of)
        .group_by(loan_repayments.c.loan_id)
    )
    return {row.loan_id: int(row.fen or 0) for row in await conn.execute(query)}


async def paid_claims(conn: AsyncConnection, scope: Scope) -> dict[str, Row[Any]]:
    as_of = scope[2]
    query = sa.select(compensation_claims).where(
        _in(compensation_claims.c.loan_id, scope),
        compensation_claims.c.status == "paid",
        compensation_claims.c.decided_on <= as_of,
    )
    return {row.loan_id: row for row in await conn.execute(query)}


async def recovered(conn: AsyncConnection, scope: Scope) -> dict[str, tuple[int, int]]:
    """(fund part, bank part) recovered by `as_of`, by loan."""
    as_of = scope[2]
    query = (
        sa.select(
            loan_recoveries.c.loan_id,
            sa.func.sum(loan_recoveries.c.fund_part_fen).label("fund"),
            sa.func.sum(loan_recoveries.c.bank_part_fen).label("bank"),
        )
        .where(_in(loan_recoveries.c.loan_id, scope), loan_recoveries.c.recovered_on <= as_of)
        .group_by(loan_recoveries.c.loan_id)
    )
    return {row.loan_id: (int(row.fund or 0), int(row.bank or 0)) for row in await conn.execute(query)}


async def written_off(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    as_of = scope[2]
    query = sa.select(loan_write_offs.c.loan_id, loan_write_offs.c.amount_fen).where(
        _in(loan_write_offs.c.loan_id, scope), loan_write_offs.c.written_off_on <= as_of
    )
    return {row.loan_id: int(row.amount_fen) for row in await conn.execute(query)}


async def missed_instalments(conn: AsyncConnection, scope: Scope) -> dict[str, list[MissedInstalment]]:
    query = (
        sa.select(loan_missed_instalments)
        .where(_in(loan_missed_instalments.c.loan_id, scope))
        .order_by(loan_missed_instalments.c.overdue_since, loan_missed_instalments.c.id)
    )
    found: dict[str, list[MissedInstalment]] = {}
    for row in await conn.execute(query):
        found.setdefault(row.loan_id, []).append(instalment_from_row(row))
    return found

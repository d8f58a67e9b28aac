"""Every read of the reports: scope-wide statements over funds, the ledger, loans and applications."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import (
    agreements,
    applications,
    audit_log,
    banks,
    borrower_regions,
    borrowers,
    clients,
    events,
    funds,
    guarantees,
    journal_entries,
    ledger_accounts,
    loans,
    postings,
    users,
)
from loanfund.funds.queries import funds_in
from loanfund.loans.queries import overdue_on

# The accounts a pair's leverage is made of (see loanfund.agreements.capacity).
PAIR_ACCOUNT_PREFIXES = ("deposit:", "memo:outstanding:", "memo:reserved:")


def _in_scope(column: sa.ColumnElement[Any], region_prefix: str) -> sa.ColumnElement[bool]:
    return column.startswith(region_prefix, autoescape=True)


async def funds_in_scope(conn: AsyncConnection, region_prefix: str) -> list[Any]:
    query = sa.select(funds).where(_in_scope(funds.c.region_code, region_prefix)).order_by(funds.c.code)
    return list((await conn.execute(query)).all())


async def balances(conn: AsyncConnection, region_prefix: str, fund_code: str | None) -> list[Any]:
    """Every account balance (signed, debit positive) of the funds in scope, from the kept balances."""
    query = (
        sa.select(ledger_accounts.c.fund_code, ledger_accounts.c.name, ledger_accounts.c.balance_fen)
        .select_from(ledger_accounts.join(funds, funds.c.code == ledger_accounts.c.fund_code))
        .where(funds_in(fund_code, region_prefix))
    )
    return list((await conn.execute(query)).all())


async def agreements_started(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, today: date
) -> list[Any]:
    """Agreements of the funds in scope started by `today`, latest start last within each pair."""
    query = (
        sa.select(agreements, banks.c.name.label("bank_name"), funds.c.name.label("fund_name"))
        .select_from(
            agreements.join(funds, funds.c.code == agreements.c.fund_code).join(
                banks, banks.c.code == agreements.c.bank_code
            )
        )
        .where(funds_in(fund_code, region_prefix), agreements.c.effective_from <= today)
        .order_by(agreements.c.fund_code, agreements.c.bank_code, agreements.c.effective_from)
    )
    return list((await conn.execute(query)).all())


async def expired_reserved(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, today: date
) -> dict[tuple[str, str], int]:
    """Per pair, reservations past their last day still marked reserved (lapsed, job or not)."""
    query = (
        sa.select(guarantees.c.fund_code, guarantees.c.bank_code, sa.func.sum(guarantees.c.amount_fen))
        .select_from(guarantees.join(funds, funds.c.code == guarantees.c.fund_code))
        .where(
            funds_in(fund_code, region_prefix),
            guarantees.c.status == "reserved",
            guarantees.c.expires_on < today,
        )
        .group_by(guarantees.c.fund_code, guarantees.c.bank_code)
    )
    return {(row[0], row[1]): int(row[2]) for row in await conn.execute(query)}


def _month(conn: AsyncConnection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(column, "YYYY-MM")
    return sa.func.substr(column, 1, 7)  # SQLite keeps dates as ISO text


async def monthly_pair_balances(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, through: date
) -> list[Any]:
    """For each pair account and each month with postings: the balance at the end of that month
    (running sum of the monthly movements, computed by the database). Months without postings are
    absent: the balance then is the previous month's."""
    month = _month(conn, journal_entries.c.entry_date).label("month")
    movement = sa.func.sum(postings.c.amount_fen)
    query = (
        sa.select(
            ledger_accounts.c.fund_code,
            ledger_accounts.c.name,
            month,
            sa.func.sum(movement)
            .over(partition_by=(ledger_accounts.c.fund_code, ledger_accounts.c.name), order_by=month)
            .label("balance_fen"),
        )
        .select_from(
            postings.join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
            .join(funds, funds.c.code == ledger_accounts.c.fund_code)
        )
        .where(
            funds_in(fund_code, region_prefix),
            journal_entries.c.entry_date <= through,
            sa.or_(*(ledger_accounts.c.name.startswith(p) for p in PAIR_ACCOUNT_PREFIXES)),
        )
        .group_by(ledger_accounts.c.fund_code, ledger_accounts.c.name, month)
        .order_by(ledger_accounts.c.fund_code, ledger_accounts.c.name, month)
    )
    return list((await conn.execute(query)).all())


def _loans_filter(region_prefix: str, fund_code: str | None) -> sa.ColumnElement[bool]:
    condition = _in_scope(loans.c.region_code, region_prefix)
    if fund_code is not None:
        condition = sa.and_(condition, loans.c.fund_code == fund_code)
    return condition


async def loans_by_status(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, today: date
) -> list[Any]:
    """Count, principal and outstanding per stored status, active loans split by past due."""
    past_due = overdue_on(today).label("past_due")
    query = (
        sa.select(
            loans.c.status,
            past_due,
            sa.func.count().label("n"),
            sa.func.sum(loans.c.principal_fen).label("principal_fen"),
            sa.func.sum(loans.c.outstanding_fen).label("outstanding_fen"),
        )
        .where(_loans_filter(region_prefix, fund_code))
        .group_by(loans.c.status, past_due)
    )
    return list((await conn.execute(query)).all())


async def past_due_loans(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, today: date
) -> list[Any]:
    """Past-due active loans grouped by what their days past due derive from."""
    query = (
        sa.select(
            loans.c.overdue_since,
            loans.c.maturity_on,
            sa.func.count().label("n"),
            sa.func.sum(loans.c.outstanding_fen).label("outstanding_fen"),
        )
        .where(_loans_filter(region_prefix, fund_code), overdue_on(today))
        .group_by(loans.c.overdue_since, loans.c.maturity_on)
    )
    return list((await conn.execute(query)).all())


async def lending_outcomes(conn: AsyncConnection, region_prefix: str, fund_code: str | None) -> Any:
    """Over disbursed loans: how many, how many to 4050 persons, and the jobs their applications promised."""
    query = sa.select(
        sa.func.count().label("loans"),
        sa.func.coalesce(sa.func.sum(sa.case((applications.c.is_4050, 1), else_=0)), 0).label("is_4050"),
        sa.func.coalesce(sa.func.sum(applications.c.jobs_created), 0).label("jobs_created"),
        sa.func.count(sa.distinct(loans.c.borrower_id)).label("borrowers"),
    ).select_from(loans.join(applications, applications.c.id == loans.c.application_id))
    return (await conn.execute(query.where(_loans_filter(region_prefix, fund_code)))).one()


async def borrower_categories(conn: AsyncConnection, region_prefix: str, fund_code: str | None) -> list[Any]:
    """Kind and categories of the borrowers the scope sees; with a fund, those who applied to it."""
    query = sa.select(borrowers.c.kind, borrowers.c.categories)
    if fund_code is None:
        query = query.where(
            borrowers.c.id.in_(
                sa.select(borrower_regions.c.borrower_id).where(
                    _in_scope(borrower_regions.c.region_code, region_prefix)
                )
            )
        )
    else:
        query = query.where(
            borrowers.c.id.in_(
                sa.select(applications.c.borrower_id).where(
                    applications.c.fund_code == fund_code,
                    _in_scope(applications.c.region_code, region_prefix),
                )
            )
        )
    return list((await conn.execute(query)).all())


async def latest_audit(conn: AsyncConnection, region_prefix: str, limit: int) -> list[Any]:
    """The scope's most recent audit records, newest first."""
    query = (
        sa.select(audit_log)
        .where(_in_scope(audit_log.c.region_code, region_prefix))
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def actor_names(conn: AsyncConnection, ids: set[str]) -> dict[str, str]:
    """Names of the API clients and dashboard users among `ids` (audit records keep only ids)."""
    if not ids:
        return {}
    query = sa.union_all(
        sa.select(clients.c.id, clients.c.name).where(clients.c.id.in_(sorted(ids))),
        sa.select(users.c.id, users.c.name).where(users.c.id.in_(sorted(ids))),
    )
    return {row.id: row.name for row in await conn.execute(query)}


# The scheduler's events a person should see on the job-runs page.
ALERT_TYPES = (
    "capacity_alert",
    "capacity_alert_cleared",
    "loan_overdue",
    "compensation_rate_alert",
    "compensation_red_flag",
    "subsidy_draft",
)


async def recent_alerts(
    conn: AsyncConnection, region_prefix: str, fund_code: str | None, limit: int
) -> list[Any]:
    """The newest alert events, newest first. An event without a region is national: only a user who
    sees every region is shown it."""
    query = sa.select(events).where(events.c.type.in_(ALERT_TYPES)).order_by(events.c.id.desc()).limit(limit)
    if region_prefix:
        query = query.where(_in_scope(events.c.region_code, region_prefix))
    if fund_code is not None:
        query = query.where(events.c.fund_code == fund_code)
    return list((await conn.execute(query)).all())

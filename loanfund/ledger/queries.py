"""Reading the ledger: balances now or as of a date, trial balance, journal listing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import journal_entries, ledger_accounts, postings
from loanfund.ledger.accounts import natural_balance


async def signed_balances(
    conn: AsyncConnection,
    fund_code: str,
    *,
    as_of: date | None = None,
    for_update: bool = False,
    names: Sequence[str] | None = None,
) -> dict[str, int]:
    """Signed balances (debit positive) by account name.

    Without `as_of` they come from the trigger-kept balance column (one row per account, and
    `for_update` locks those rows); with `as_of` they are summed from postings up to that date.
    """
    if as_of is None:
        query = sa.select(ledger_accounts.c.name, ledger_accounts.c.balance_fen.label("fen")).where(
            ledger_accounts.c.fund_code == fund_code
        )
        if names is not None:
            query = query.where(ledger_accounts.c.name.in_(list(names)))
        if for_update:
            query = query.order_by(ledger_accounts.c.id).with_for_update()
    else:
        query = (
            sa.select(ledger_accounts.c.name, sa.func.sum(postings.c.amount_fen).label("fen"))
            .select_from(postings.join(journal_entries).join(ledger_accounts))
            .where(journal_entries.c.fund_code == fund_code, journal_entries.c.entry_date <= as_of)
            .group_by(ledger_accounts.c.name)
        )
        if names is not None:
            query = query.where(ledger_accounts.c.name.in_(list(names)))
    return {row.name: int(row.fen) for row in await conn.execute(query)}


def balance_column(
    fund_code: str | sa.BindParameter[Any], name: str | sa.BindParameter[Any]
) -> sa.ScalarSelect[Any]:
    """An account's signed balance as a scalar subquery (NULL while the account does not exist), to
    read balances within a statement that reads other things too."""
    return (
        sa.select(ledger_accounts.c.balance_fen)
        .where(ledger_accounts.c.fund_code == fund_code, ledger_accounts.c.name == name)
        .scalar_subquery()
    )


def account_id_column(
    fund_code: str | sa.ColumnElement[Any], name: str | sa.ColumnElement[Any]
) -> sa.ScalarSelect[Any]:
    """An account's id as a scalar subquery (NULL while it does not exist); see `post_entry(account_ids=)`."""
    return (
        sa.select(ledger_accounts.c.id)
        .where(ledger_accounts.c.fund_code == fund_code, ledger_accounts.c.name == name)
        .scalar_subquery()
    )


async def balance(conn: AsyncConnection, fund_code: str, name: str, *, for_update: bool = False) -> int:
    return (await signed_balances(conn, fund_code, names=[name], for_update=for_update)).get(name, 0)


@dataclass(frozen=True)
class TrialBalanceLine:
    account: str
    debit_fen: int
    credit_fen: int
    balance_fen: int  # on the account's normal side


@dataclass(frozen=True)
class TrialBalance:
    lines: tuple[TrialBalanceLine, ...]
    total_debit_fen: int
    total_credit_fen: int


async def trial_balance(conn: AsyncConnection, fund_code: str, *, as_of: date | None = None) -> TrialBalance:
    balances = await signed_balances(conn, fund_code, as_of=as_of)
    lines = tuple(
        TrialBalanceLine(
            account=name,
            debit_fen=max(fen, 0),
            credit_fen=max(-fen, 0),
            balance_fen=natural_balance(name, fen),
        )
        for name, fen in sorted(balances.items())
    )
    return TrialBalance(
        lines=lines,
        total_debit_fen=sum(line.debit_fen for line in lines),
        total_credit_fen=sum(line.credit_fen for line in lines),
    )


@dataclass(frozen=True)
class EntryView:
    id: str
    entry_date: date
    kind: str
    description: str
    reference: str | None
    reverses_entry_id: str | None
    client_id: str | None
    postings: tuple[tuple[str, int], ...]


async def list_entries(
    conn: AsyncConnection,
    fund_code: str,
    *,
    account: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    after_id: str | None = None,
    limit: int = 50,
) -> list[EntryView]:
    query = sa.select(journal_entries).where(journal_entries.c.fund_code == fund_code)
    if account is not None:
        query = query.where(
            journal_entries.c.id.in_(
                sa.select(postings.c.entry_id)
                .join(ledger_accounts)
                .where(ledger_accounts.c.fund_code == fund_code, ledger_accounts.c.name == account)
            )
        )
    if date_from is not None:
        query = query.where(journal_entries.c.entry_date >= date_from)
    if date_to is not None:
        query = query.where(journal_entries.c.entry_date <= date_to)
    if after_id is not None:
        query = query.where(journal_entries.c.id > after_id)
    entries = (await conn.execute(query.order_by(journal_entries.c.id).limit(limit))).all()
    if not entries:
        return []
    lines_query = (
        sa.select(postings.c.entry_id, ledger_accounts.c.name, postings.c.amount_fen)
        .join(ledger_accounts)
        .where(postings.c.entry_id.in_([entry.id for entry in entries]))
        .order_by(postings.c.id)
    )
    by_entry: dict[str, list[tuple[str, int]]] = {}
    for row in await conn.execute(lines_query):
        by_entry.setdefault(row.entry_id, []).append((row.name, row.amount_fen))
    return [
        EntryView(
            id=entry.id,
            entry_date=entry.entry_date,
            kind=entry.kind,
            description=entry.description,
            reference=entry.reference,
            reverses_entry_id=entry.reverses_entry_id,
            client_id=entry.client_id,
            postings=tuple(by_entry.get(entry.id, [])),
        )
        for entry in entries
    ]

"""Posting journal entries. The only code that writes to the ledger.

Amounts are signed fen: debit positive, credit negative. An entry must balance, have at least two
postings and stay within one fund; on PostgreSQL the database checks the same again at commit.
Account balances are kept by a database trigger on postings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.clock import utcnow
from loanfund.db.tables import journal_entries, ledger_accounts, postings
from loanfund.errors import InvalidState, NotFound, UnbalancedEntry
from loanfund.ids import new_id
from loanfund.ledger.accounts import check_name
from loanfund.uow import OpenEntry, Tx


@dataclass(frozen=True)
class Posting:
    account: str
    amount_fen: int  # debit positive, credit negative


def debit(account: str, fen: int) -> Posting:
    return Posting(account, fen)


def credit(account: str, fen: int) -> Posting:
    return Posting(account, -fen)


def transfer(debit_account: str, credit_account: str, fen: int) -> list[Posting]:
    return [debit(debit_account, fen), credit(credit_account, fen)]


def check_balanced(lines: Sequence[Posting]) -> None:
    if len(lines) < 2:
        raise UnbalancedEntry(f"an entry needs at least two postings, got {len(lines)}")
    for line in lines:
        check_name(line.account)
        if isinstance(line.amount_fen, bool) or not isinstance(line.amount_fen, int) or line.amount_fen == 0:
            raise UnbalancedEntry(f"posting to {line.account} must be a non-zero whole number of fen")
    total = sum(line.amount_fen for line in lines)
    if total != 0:
        raise UnbalancedEntry(f"entry is unbalanced by {total} fen")


def _insert_ignore(conn: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def account_ids(conn: AsyncConnection, fund_code: str, names: Sequence[str]) -> dict[str, int]:
    """Ids of the fund's accounts by name, opening any that do not exist yet."""
    wanted = sorted(set(names))
    query = sa.select(ledger_accounts.c.name, ledger_accounts.c.id).where(
        ledger_accounts.c.fund_code == fund_code, ledger_accounts.c.name.in_(wanted)
    )
    found = {row.name: row.id for row in await conn.execute(query)}
    missing = [name for name in wanted if name not in found]
    if missing:
        await conn.execute(
            _insert_ignore(conn, ledger_accounts),
            [{"fund_code": fund_code, "name": check_name(name), "balance_fen": 0} for name in missing],
        )
        found = {row.name: row.id for row in await conn.execute(query)}
    return found


# Built once: a statement object keeps its compiled form cached, and the values go in as parameters.
_INSERT_ENTRY = journal_entries.insert()
_INSERT_POSTINGS = postings.insert()


async def post(
    tx: Tx,
    *,
    fund_code: str,
    entry_date: date,
    kind: str,
    description: str,
    lines: Sequence[Posting],
    reference: str | None = None,
    reverses_entry_id: str | None = None,
    known_account_ids: Mapping[str, int | None] | None = None,
    last: bool = False,
) -> str:
    """Write one balanced entry in the unit of work; returns its id.

    With `last=True` the entry row is written now and its postings when the transaction commits,
    after every other write (see `loanfund.uow`): for entries on balance rows that many concurrent
    requests post to. Balances read in between do not include the entry. On PostgreSQL an entry whose
    postings never come fails the commit (an entry needs two postings).

    `known_account_ids`: ids of the fund's accounts already read in this transaction (e.g. with
    `account_id_column`); when they cover every line they are not read again.
    """
    check_balanced(lines)
    names = [line.account for line in lines]
    known = known_account_ids or {}
    ids = {name: found for name in names if (found := known.get(name)) is not None}
    if len(ids) < len(set(names)):
        ids = await account_ids(tx.conn, fund_code, names)
    entry_id = new_id("je")
    await tx.conn.execute(
        _INSERT_ENTRY,
        {
            "id": entry_id,
            "fund_code": fund_code,
            "entry_date": entry_date,
            "kind": kind,
            "description": description,
            "reference": reference,
            "reverses_entry_id": reverses_entry_id,
            "created_at": utcnow(),
            "client_id": tx.actor.client_id,
            "request_id": tx.actor.request_id,
        },
    )
    # Sorted by account id so that concurrent entries lock balance rows in one order (no deadlocks).
    rows = tuple(
        {"entry_id": entry_id, "account_id": ids[line.account], "amount_fen": line.amount_fen}
        for line in sorted(lines, key=lambda line: ids[line.account])
    )
    entry = OpenEntry(entry_id, fund_code, rows)
    if last:
        tx.post_last(entry)
    else:
        await write_postings(tx.conn, entry)
    return entry_id


async def write_postings(conn: AsyncConnection, entry: OpenEntry) -> None:
    """The postings of an entry posted with `last=True`, written by `Tx.settle` (and at commit on SQLite;
    on PostgreSQL the commit writes them within its one statement)."""
    await conn.execute(_INSERT_POSTINGS, list(entry.rows))


async def entry_lines(conn: AsyncConnection, entry_id: str) -> tuple[str, list[Posting]]:
    query = (
        sa.select(journal_entries.c.fund_code, ledger_accounts.c.name, postings.c.amount_fen)
        .select_from(postings.join(journal_entries).join(ledger_accounts))
        .where(postings.c.entry_id == entry_id)
        .order_by(postings.c.id)
    )
    rows = (await conn.execute(query)).all()
    if not rows:
        raise NotFound(f"journal entry {entry_id} not found")
    return rows[0].fund_code, [Posting(row.name, row.amount_fen) for row in rows]


async def reverse(tx: Tx, entry_id: str, *, entry_date: date, reason: str, last: bool = False) -> str:
    """Post the mirror image of an entry: the only way to correct the ledger."""
    already = await tx.conn.scalar(
        sa.select(journal_entries.c.id).where(journal_entries.c.reverses_entry_id == entry_id)
    )
    if already is not None:
        raise InvalidState(f"entry {entry_id} is already reversed", reversal_entry_id=already)
    fund_code, lines = await entry_lines(tx.conn, entry_id)
    return await post(
        tx,
        fund_code=fund_code,
        entry_date=entry_date,
        kind="reversal",
        description=reason,
        lines=[Posting(line.account, -line.amount_fen) for line in lines],
        reverses_entry_id=entry_id,
        last=last,
    )

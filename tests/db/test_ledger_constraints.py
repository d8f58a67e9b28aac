"""The ledger's rules held by the database itself, not only by the library (domain.md section 10):
every entry balances, has at least two postings, stays in one fund and names known accounts
(PostgreSQL checks this at COMMIT); posted entries and the audit log can never be changed."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import ledger, uow
from loanfund.audit import Actor
from loanfund.clock import utcnow
from loanfund.db.tables import audit_log, journal_entries, ledger_accounts, postings
from loanfund.errors import InvalidState, UnbalancedEntry
from loanfund.funds import service
from loanfund.ledger import Posting, accounts

ACTOR = Actor(None, "test")
DAY = date(2026, 3, 1)


async def make_funds(engine: AsyncEngine, *codes: str) -> None:
    async with uow.transaction(engine, ACTOR) as tx:
        for code in codes:
            await service.create_fund(
                tx, code=code, name=code, region_code="230100", policy_edition="cn-2008"
            )


async def account(conn: AsyncConnection, fund: str, name: str) -> int:
    """An account row written directly, bypassing the library's name check."""
    existing = await conn.scalar(
        sa.select(ledger_accounts.c.id).where(
            ledger_accounts.c.fund_code == fund, ledger_accounts.c.name == name
        )
    )
    if existing is not None:
        return int(existing)
    result = await conn.execute(
        ledger_accounts.insert()
        .values(fund_code=fund, name=name, balance_fen=0)
        .returning(ledger_accounts.c.id)
    )
    return int(result.scalar_one())


async def raw_entry(
    conn: AsyncConnection, entry_id: str, fund: str, lines: list[tuple[str, str, int]]
) -> None:
    """An entry written with plain SQL: (fund, account name, signed fen) per posting."""
    await conn.execute(
        journal_entries.insert().values(
            id=entry_id,
            fund_code=fund,
            entry_date=DAY,
            kind="manual",
            description="written by hand",
            created_at=utcnow(),
        )
    )
    for line_fund, name, fen in lines:
        await conn.execute(
            postings.insert().values(
                entry_id=entry_id, account_id=await account(conn, line_fund, name), amount_fen=fen
            )
        )


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


BAD_ENTRIES = {
    "unbalanced": ([("A", "cash", 100), ("A", "capital:provincial", -90)], "unbalanced"),
    "one posting": ([("A", "cash", 100)], "at least 2"),
    "no postings": ([], "at least 2"),
    "two funds": ([("A", "cash", 100), ("B", "capital:provincial", -100)], "mixes funds"),
    "unknown account": ([("A", "cash", 100), ("A", "petty_cash", -100)], "unknown account"),
    "unknown bank account": ([("A", "deposit:", 100), ("A", "cash", -100)], "unknown account"),
}


@pytest.mark.postgres_only
@pytest.mark.parametrize("case", list(BAD_ENTRIES))
async def test_postgres_refuses_a_bad_entry_at_commit(engine: AsyncEngine, case: str) -> None:
    await make_funds(engine, "A", "B")
    lines, message = BAD_ENTRIES[case]
    conn = await engine.connect()
    try:
        await conn.begin()
        await raw_entry(conn, "je_bad", "A", lines)  # each statement passes: the check is deferred
        with pytest.raises(sa.exc.DBAPIError, match=message):
            await conn.commit()
    finally:
        await conn.close()
    assert await count(engine, journal_entries) == 0
    assert await count(engine, postings) == 0


@pytest.mark.postgres_only
async def test_postgres_accepts_a_good_entry_and_refuses_a_posting_added_later(engine: AsyncEngine) -> None:
    await make_funds(engine, "A")
    async with uow.transaction(engine, ACTOR) as tx:
        conn = tx.conn
        await raw_entry(conn, "je_ok", "A", [("A", "cash", 100), ("A", "capital:provincial", -100)])
    assert await count(engine, postings) == 2
    conn = await engine.connect()
    try:
        await conn.begin()
        cash = await account(conn, "A", "cash")
        # Refused at once since migration 0007 (a posted entry is closed), not only at COMMIT.
        with pytest.raises(sa.exc.DBAPIError, match="posted and closed"):
            await conn.execute(postings.insert().values(entry_id="je_ok", account_id=cash, amount_fen=5))
    finally:
        await conn.close()
    async with engine.connect() as conn:
        assert await ledger.balance(conn, "A", accounts.CASH) == 100


@pytest.mark.postgres_only
async def test_postgres_refuses_a_zero_posting(engine: AsyncEngine) -> None:
    await make_funds(engine, "A")
    conn = await engine.connect()
    try:
        await conn.begin()
        with pytest.raises(sa.exc.IntegrityError):
            await raw_entry(conn, "je_0", "A", [("A", "cash", 0), ("A", "capital:provincial", 0)])
            await conn.commit()
    finally:
        await conn.close()
    assert await count(engine, journal_entries) == 0


async def posted(engine: AsyncEngine) -> str:
    await make_funds(engine, "A")
    async with uow.transaction(engine, ACTOR) as tx:
        conn = tx.conn
        await service.record_allocation(
            tx,
            fund_code="A",
            amount_fen=100_00,
            received_on=DAY,
            reference="P",
            match_ratio_pct=Decimal("100"),
            match_due_on=DAY,
        )
        entry_id = await conn.scalar(sa.select(journal_entries.c.id))
    assert entry_id is not None
    return str(entry_id)


CHANGES: list[tuple[str, Any]] = [
    ("update journal_entries", lambda e: journal_entries.update().values(description="edited")),
    ("update journal_entries date", lambda e: journal_entries.update().values(entry_date=date(2020, 1, 1))),
    ("delete journal_entries", lambda e: journal_entries.delete()),
    ("update postings", lambda e: postings.update().values(amount_fen=postings.c.amount_fen * 2)),
    ("delete postings", lambda e: postings.delete()),
    ("update audit_log", lambda e: audit_log.update().values(action="nothing.happened")),
    ("delete audit_log", lambda e: audit_log.delete()),
]


@pytest.mark.parametrize("case", [name for name, _ in CHANGES])
async def test_posted_entries_and_the_audit_log_are_append_only(engine: AsyncEngine, case: str) -> None:
    entry_id = await posted(engine)
    statement = dict(CHANGES)[case](entry_id)
    async with engine.connect() as conn:
        before = {
            table.name: [tuple(row) for row in await conn.execute(sa.select(table))]
            for table in (journal_entries, postings, audit_log)
        }
    conn = await engine.connect()
    try:
        await conn.begin()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            await conn.execute(statement)
        await conn.rollback()
    finally:
        await conn.close()
    async with engine.connect() as conn:
        after = {
            table.name: [tuple(row) for row in await conn.execute(sa.select(table))]
            for table in (journal_entries, postings, audit_log)
        }
    assert after == before
    assert before["postings"] and before["audit_log"]


LIBRARY_REFUSALS: list[tuple[str, list[Posting]]] = [
    ("unbalanced", [ledger.debit("cash", 100), ledger.credit("capital:provincial", 99)]),
    ("one posting", [ledger.debit("cash", 100)]),
    ("no postings", []),
    ("zero posting", [ledger.debit("cash", 0), ledger.credit("capital:provincial", 0)]),
    ("unknown account", [ledger.debit("petty_cash", 100), ledger.credit("capital:provincial", 100)]),
    ("unknown source", [ledger.debit("cash", 100), ledger.credit("capital:lottery", 100)]),
    ("bool amount", [Posting("cash", True), Posting("capital:provincial", -1)]),  # type: ignore[arg-type]
    ("float amount", [Posting("cash", 1.0), Posting("capital:provincial", -1)]),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("case", [name for name, _ in LIBRARY_REFUSALS])
async def test_post_entry_refuses_bad_entries_before_writing(engine: AsyncEngine, case: str) -> None:
    await make_funds(engine, "A")
    lines = dict(LIBRARY_REFUSALS)[case]
    async with uow.transaction(engine, ACTOR) as tx:
        conn = tx.conn
        with pytest.raises(UnbalancedEntry):
            await ledger.post(tx, fund_code="A", entry_date=DAY, kind="manual", description="x", lines=lines)
        assert await conn.scalar(sa.select(sa.func.count()).select_from(journal_entries)) == 0
        assert await conn.scalar(sa.select(sa.func.count()).select_from(ledger_accounts)) == 0


async def test_an_entry_is_reversed_once(engine: AsyncEngine) -> None:
    entry_id = await posted(engine)
    async with uow.transaction(engine, ACTOR) as tx:
        conn = tx.conn
        reversal = await ledger.reverse(tx, entry_id, entry_date=DAY, reason="oops")
        assert await ledger.balance(conn, "A", accounts.CASH) == 0
    async with uow.transaction(engine, ACTOR) as tx:
        conn = tx.conn
        with pytest.raises(InvalidState):
            await ledger.reverse(tx, entry_id, entry_date=DAY, reason="again")
    async with engine.connect() as conn:
        assert (
            await conn.scalar(
                sa.select(journal_entries.c.reverses_entry_id).where(journal_entries.c.id == reversal)
            )
            == entry_id
        )


ACCOUNT_NAMES = [
    "cash",
    "subsidy_budget",
    "capital:provincial",
    "capital:local_match",
    "capital:central",
    "capital:donation",
    "capital:subsidy",
    "deposit:B1",
    "deposit:B2",
    "recoverable:B1",
    "expense:compensation",
    "income:recovery",
    "expense:write_off",
    "subsidy_paid:B1",
    "memo:reserved:B1",
    "memo:outstanding:B1",
    "memo:commitments",
    "memo:commitments:B1",
]


async def test_account_balances_equal_the_sum_of_their_postings(engine: AsyncEngine) -> None:
    await make_funds(engine, "A", "B")
    rng = random.Random(20261127)
    for _ in range(60):
        fund = rng.choice(["A", "B"])
        names = rng.sample(ACCOUNT_NAMES, rng.randint(2, 5))
        amounts = [rng.choice([-1, 1]) * rng.randint(1, 10**9) for _ in names[:-1]]
        if sum(amounts) == 0:
            amounts[0] += 1
        lines = [Posting(name, fen) for name, fen in zip(names, [*amounts, -sum(amounts)], strict=True)]
        async with uow.transaction(engine, ACTOR) as tx:
            conn = tx.conn
            await ledger.post(
                tx,
                fund_code=fund,
                entry_date=DAY + timedelta(days=rng.randint(0, 300)),
                kind="manual",
                description="random",
                lines=lines,
            )
    async with engine.connect() as conn:
        summed = {
            (row.fund_code, row.name): int(row.fen)
            for row in await conn.execute(
                sa.select(
                    ledger_accounts.c.fund_code,
                    ledger_accounts.c.name,
                    sa.func.sum(postings.c.amount_fen).label("fen"),
                )
                .join(postings, postings.c.account_id == ledger_accounts.c.id)
                .group_by(ledger_accounts.c.fund_code, ledger_accounts.c.name)
            )
        }
        kept = {
            (row.fund_code, row.name): int(row.balance_fen)
            for row in await conn.execute(sa.select(ledger_accounts))
        }
        assert kept == summed
        for fund in ("A", "B"):
            tb = await ledger.trial_balance(conn, fund)
            assert tb.total_debit_fen == tb.total_credit_fen
            live = await ledger.signed_balances(conn, fund)
            assert live == await ledger.signed_balances(conn, fund, as_of=date(9999, 12, 31))
            assert sum(live.values()) == 0


ACCOUNT_CHANGES: list[tuple[str, Any, bool]] = [
    # (case, statement, refused on SQLite too)
    ("rename", lambda: ledger_accounts.update().values(name="capital:central"), True),
    ("move to another fund", lambda: ledger_accounts.update().values(fund_code="B"), True),
    ("delete", lambda: ledger_accounts.delete(), True),
    ("overwrite balance", lambda: ledger_accounts.update().values(balance_fen=0), False),
]


@pytest.mark.parametrize("case", [name for name, _, _ in ACCOUNT_CHANGES])
async def test_accounts_keep_their_name_fund_and_trigger_kept_balance(
    engine: AsyncEngine, is_postgres: bool, case: str
) -> None:
    await posted(engine)
    await make_funds(engine, "B")
    _, statement, everywhere = next(change for change in ACCOUNT_CHANGES if change[0] == case)
    if not (everywhere or is_postgres):
        pytest.skip("SQLite cannot tell the posting trigger's update from a client's")
    async with engine.connect() as conn:
        before = [
            tuple(row)
            for row in await conn.execute(sa.select(ledger_accounts).order_by(ledger_accounts.c.id))
        ]
        await conn.rollback()
        await conn.begin()
        with pytest.raises(sa.exc.DBAPIError, match="ledger_accounts"):
            await conn.execute(statement())
        await conn.rollback()
        after = [
            tuple(row)
            for row in await conn.execute(sa.select(ledger_accounts).order_by(ledger_accounts.c.id))
        ]
    assert after == before and before

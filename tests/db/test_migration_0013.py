"""Migration 0013 (the borrower's kind on each loan): loans made before it take their borrower's
kind, and the column is the one the code declares; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from loanfund.db import create_engine
from loanfund.db.migrate import upgrade
from loanfund.db.tables import metadata
from tests.conftest import admin_statement, postgres_url

ROWS = [
    "INSERT INTO funds (code, name, region_code, currency, created_at)"
    " VALUES ('HRB', 'F', '230100', 'CNY', '2020-01-01')",
    "INSERT INTO banks (code, name, created_at) VALUES ('ICBC', 'B', '2020-01-01')",
    "INSERT INTO borrowers (id, kind, id_number, name, categories, certificates, region_code, created_at)"
    " VALUES ('b1', 'individual', 'n1', 'X', '[]', '[]', '230100', '2020-01-01'),"
    " ('b2', 'enterprise', 'n2', 'Y', '[]', '[]', '230100', '2020-01-01')",
    "INSERT INTO applications (id, fund_code, bank_code, borrower_id, region_code, amount_fen, term_months,"
    " purpose, micro_profit, guarantee_kind, joint_borrower_ids, jobs_created, applied_on, policy_edition,"
    " eligibility, status, submitted_at)"
    " VALUES ('a1', 'HRB', 'ICBC', 'b1', '230100', 1, 12, 'p', false, 'collateral', '[]', 0, '2020-01-01',"
    " 'cn-2016', '{}', 'disbursed', '2020-01-01'),"
    " ('a2', 'HRB', 'ICBC', 'b2', '230100', 1, 12, 'p', false, 'collateral', '[]', 0, '2020-01-01',"
    " 'cn-2016', '{}', 'disbursed', '2020-01-01')",
    "INSERT INTO loans (id, application_id, fund_code, bank_code, borrower_id, region_code, guarantee_id,"
    " loan_number, principal_fen, outstanding_fen, annual_rate_pct, disbursed_on, contracted_on, maturity_on,"
    " original_maturity_on, term_months, reference_rate_kind, reference_rate_pct, reference_rate_date,"
    " rate_ceiling_pct, policy_edition, status, created_at)"
    " VALUES ('l1', 'a1', 'HRB', 'ICBC', 'b1', '230100', 'g1', 'N1', 1, 1, '5', '2020-01-02', '2020-01-02',"
    " '2021-01-02', '2021-01-02', 12, 'LPR1Y', '3.85', '2020-01-02', '9', 'cn-2016', 'active', '2020-01-02'),"
    " ('l2', 'a2', 'HRB', 'ICBC', 'b2', '230100', 'g2', 'N2', 1, 1, '5', '2020-01-02', '2020-01-02',"
    " '2021-01-02', '2021-01-02', 12, 'LPR1Y', '3.85', '2020-01-02', '9', 'cn-2016', 'active', '2020-01-02')",
    # Rows that point at loans: SQLite rebuilds the table under them.
    "INSERT INTO loan_repayments (id, loan_id, principal_fen, interest_fen, paid_on, outstanding_after_fen,"
    " created_at) VALUES ('r1', 'l1', 0, 1, '2020-02-02', 1, '2020-02-02')",
    "INSERT INTO loan_overdue_spells (loan_id, overdue_since) VALUES ('l2', '2020-03-01')",
]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL not configured (set LOANFUND_TEST_DATABASE_URL)")
    name = f"loanfund_migration_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin_statement(base, f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin_statement(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_loans_take_their_borrowers_kind_and_match_the_declared_table(empty_database: str) -> None:
    upgrade(empty_database, "0012")
    asyncio.run(_insert(empty_database))
    upgrade(empty_database)
    kinds, differences, pointing = asyncio.run(_read(empty_database))
    assert kinds == [("l1", "individual"), ("l2", "enterprise")]
    assert [d for d in differences if "loans" in repr(d)] == []
    assert pointing == (1, 1)


async def _insert(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        for statement in ROWS:
            await conn.execute(sa.text(statement))
    await engine.dispose()


async def _read(url: str) -> tuple[list[tuple[str, str]], list[object], tuple[int, int]]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT id, borrower_kind FROM loans ORDER BY id"))
        kinds = [(row.id, row.borrower_kind) for row in rows]
        differences = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
        pointing = (
            int(await conn.scalar(sa.text("SELECT count(*) FROM loan_repayments")) or 0),
            int(await conn.scalar(sa.text("SELECT count(*) FROM loan_overdue_spells")) or 0),
        )
    await engine.dispose()
    return kinds, differences, pointing

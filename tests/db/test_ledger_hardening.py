"""The attacks of issue 8 on the database-enforced ledger, typed into psql as an attacker would.

PostgreSQL refuses every one of them: TRUNCATE of an append-only table, postings added to an entry
already posted, an account born with a balance, and, as the service's own role (which owns
nothing), switching triggers off. SQLite refuses the account born with a balance.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from loanfund import clients, uow
from loanfund.config import Settings
from loanfund.db.migrate import grant_runtime_role, grant_statements
from loanfund.db.tables import ledger_accounts
from loanfund.funds import service as funds_service
from tests.support import SETUP, Api, make_allocation, make_fund


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Runs `sql` through psql in one transaction; returncode 0 only if every statement committed."""
    return subprocess.run(
        ["psql", plain(url), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """`message` is a regular expression the error must match."""
    assert result.returncode != 0, f"committed: {result.stdout}"
    assert re.search(message, result.stderr), result.stderr


async def posted_fund(engine: AsyncEngine, db_url: str) -> dict[str, int | str]:
    """A fund with one posted allocation, made through the API; its entry and account ids."""
    app = create_app(Settings(db_url, 2, 60, 8))
    async with AsyncTestClient(app) as http:
        async with uow.transaction(engine, SETUP) as tx:
            _, admin_token = await clients.add_client(tx, role="admin", name="a", region_prefix=None)
            _, manager_token = await clients.add_client(
                tx, role="fund_manager", name="m", region_prefix="2301"
            )
        await make_fund(Api(http, admin_token, "admin"))
        await make_allocation(Api(http, manager_token, "fund_manager"), amount="1000")
    async with engine.connect() as conn:
        entry = await conn.scalar(sa.text("SELECT entry_id FROM allocations"))
        rows = await conn.execute(sa.text("SELECT name, id FROM ledger_accounts"))
        ids = {row.name: row.id for row in rows}
    return {"entry": entry, "cash": ids["cash"], "capital": ids["capital:provincial"]}


async def balances(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT name, balance_fen FROM ledger_accounts"))
        return {row.name: row.balance_fen for row in rows}


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["postings", "journal_entries", "audit_log", "events"])
async def test_truncate_is_refused(engine: AsyncEngine, db_url: str, table: str) -> None:
    await posted_fund(engine, db_url)
    refused(psql(db_url, f"TRUNCATE {table} CASCADE"), "TRUNCATE refused")
    refused(psql(db_url, "TRUNCATE ledger_accounts CASCADE"), "TRUNCATE refused")  # cascades to postings
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM postings")) == 2


@pytest.mark.postgres_only
async def test_no_posting_joins_an_entry_after_it_is_posted(engine: AsyncEngine, db_url: str) -> None:
    ids = await posted_fund(engine, db_url)
    before = await balances(engine)
    balanced_pair = (
        f"INSERT INTO postings (entry_id, account_id, amount_fen) VALUES "
        f"('{ids['entry']}', {ids['cash']}, -100), ('{ids['entry']}', {ids['capital']}, 100)"
    )
    refused(psql(db_url, balanced_pair), "is posted and closed")
    assert await balances(engine) == before
    # Nor by a new entry that borrows the old one's id in a savepoint, nor in a later statement.
    refused(psql(db_url, f"SAVEPOINT s; {balanced_pair}; RELEASE SAVEPOINT s"), "is posted and closed")


@pytest.mark.postgres_only
async def test_an_entry_takes_postings_in_its_own_transaction_and_savepoints(
    engine: AsyncEngine, db_url: str
) -> None:
    ids = await posted_fund(engine, db_url)
    entry = (
        "INSERT INTO journal_entries (id, fund_code, entry_date, kind, description, created_at) "
        "VALUES ('je_hand', 'HRB', '2026-02-01', 'manual', 'by hand', now())"
    )
    pair = (
        "INSERT INTO postings (entry_id, account_id, amount_fen) VALUES "
        f"('je_hand', {ids['cash']}, 100), ('je_hand', {ids['capital']}, -100)"
    )
    # The check is about the entry being closed, not about hand-written SQL: a balanced entry with
    # its postings in one transaction (even across a savepoint) still commits.
    result = psql(
        db_url, f"SAVEPOINT a; {entry}; RELEASE SAVEPOINT a; SAVEPOINT b; {pair}; RELEASE SAVEPOINT b"
    )
    assert result.returncode == 0, result.stderr
    after = await balances(engine)
    assert after["cash"] == 100_100


@pytest.mark.postgres_only
async def test_an_account_opens_at_zero(engine: AsyncEngine, db_url: str) -> None:
    await posted_fund(engine, db_url)
    before = await balances(engine)
    attack = (
        "INSERT INTO ledger_accounts (fund_code, name, balance_fen) VALUES ('HRB', 'deposit:FAKE', 99999900)"
    )
    refused(psql(db_url, attack), "opens at zero")
    opened = psql(
        db_url, "INSERT INTO ledger_accounts (fund_code, name, balance_fen) VALUES ('HRB', 'deposit:OK', 0)"
    )
    assert opened.returncode == 0, opened.stderr
    assert {k: v for k, v in (await balances(engine)).items() if k != "deposit:OK"} == before


async def test_an_account_opens_at_zero_on_both_databases(engine: AsyncEngine) -> None:
    async with uow.transaction(engine, SETUP) as tx:
        await funds_service.create_fund(
            tx, code="HRB", name="HRB", region_code="230100", policy_edition="cn-2008"
        )
    with pytest.raises(sa.exc.DBAPIError, match="opens at zero"):
        async with engine.begin() as conn:
            await conn.execute(ledger_accounts.insert().values(fund_code="HRB", name="cash", balance_fen=1))
    async with engine.begin() as conn:
        await conn.execute(ledger_accounts.insert().values(fund_code="HRB", name="cash", balance_fen=0))


@pytest.fixture
def runtime_role(db_url: str) -> Iterator[str]:
    role = f"loanfund_rt_{uuid.uuid4().hex[:8]}"
    assert psql(db_url, f"CREATE ROLE {role} LOGIN").returncode == 0
    yield role
    psql(db_url, f"DROP OWNED BY {role}")
    psql(db_url, f"DROP ROLE {role}")


@pytest.mark.postgres_only
async def test_the_service_role_owns_nothing_and_cannot_switch_triggers_off(
    engine: AsyncEngine, db_url: str, runtime_role: str
) -> None:
    ids = await posted_fund(engine, db_url)
    await grant_runtime_role(db_url, runtime_role)
    as_service = make_url(db_url).set(username=runtime_role).render_as_string(hide_password=False)
    before = await balances(engine)
    for attack, message in (
        ("SET session_replication_role = replica", "permission denied"),
        ("ALTER TABLE postings DISABLE TRIGGER ALL", "must be owner"),
        ("ALTER TABLE ledger_accounts DISABLE TRIGGER ledger_accounts_guard", "must be owner"),
        ("TRUNCATE postings", "permission denied"),
        ("DELETE FROM audit_log", "permission denied"),
        ("UPDATE journal_entries SET description = 'x'", "permission denied"),
        ("UPDATE ledger_accounts SET balance_fen = 0", "balances change only by posting"),
        ("DROP TRIGGER postings_entry_open ON postings", "must be owner"),
        (
            "CREATE OR REPLACE FUNCTION refuse_truncate() RETURNS trigger AS 'BEGIN RETURN NULL; END' "
            "LANGUAGE plpgsql",
            "must be owner|permission denied",
        ),
        (
            "INSERT INTO postings (entry_id, account_id, amount_fen) VALUES "
            f"('{ids['entry']}', {ids['cash']}, -1), ('{ids['entry']}', {ids['capital']}, 1)",
            "is posted and closed",
        ),
    ):
        refused(psql(as_service, attack), message)
    assert await balances(engine) == before

    # ...and the service itself runs as that role: the everyday writes all pass.
    async with uow.transaction(engine, SETUP) as tx:
        _, token = await clients.add_client(tx, role="fund_manager", name="m2", region_prefix="2301")
    async with AsyncTestClient(create_app(Settings(as_service, 2, 60, 8))) as http:
        manager = Api(http, token, "fund_manager")
        allocation = await make_allocation(manager, amount="500", reference="P-2")
        reversed_ = await manager.post(
            f"/funds/HRB/allocations/{allocation['id']}/reverse", {"reason": "twice"}
        )
        assert reversed_.status_code == 201, reversed_.text
        keyed = await manager.post(
            "/funds/HRB/subsidy-budget",
            {"amount": "5", "received_on": "2026-02-01", "reference": "S"},
            key="k1",
        )
        assert keyed.status_code == 201, keyed.text
    after = await balances(engine)
    assert after["cash"] == before["cash"] and after["subsidy_budget"] == 500


def test_grants_refuse_odd_role_names() -> None:
    with pytest.raises(ValueError):
        grant_statements('x"; DROP TABLE postings; --')
    assert any(
        "REVOKE UPDATE, DELETE ON journal_entries, postings, audit_log, events" in s
        for s in grant_statements("svc")
    )


def test_environment_has_psql() -> None:
    assert subprocess.run(["psql", "--version"], capture_output=True).returncode == 0, os.environ.get("PATH")


@pytest.mark.postgres_only
def test_cli_grants_only_to_a_role_that_owns_nothing(db_url: str, runtime_role: str) -> None:
    import json
    import sys
    from pathlib import Path

    loanfund = str(Path(sys.executable).parent / "loanfund")

    def upgrade(role: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LOANFUND_DATABASE_URL": db_url}
        return subprocess.run(
            [loanfund, "db", "upgrade", "--grant-to", role],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = upgrade(runtime_role)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"database": "upgraded", "granted_to": runtime_role}
    for role in ("postgres", "no_such_role_here", "Bad-Name"):
        refused_run = upgrade(role)
        assert refused_run.returncode == 2, (role, refused_run.stdout, refused_run.stderr)
        assert json.loads(refused_run.stderr)["error"] == "invalid_role"

"""Test fixtures: every API test runs on SQLite and on PostgreSQL.

PostgreSQL tests read LOANFUND_TEST_DATABASE_URL (a database on the server to test against; the
suite creates its own database next to it). Without it they skip, unless
LOANFUND_REQUIRE_POSTGRES=1 (as in CI), where a missing server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from loanfund.config import Settings, normalise_database_url
from loanfund.db import create_engine
from loanfund.db.migrate import upgrade
from loanfund.db.tables import metadata
from tests.support import TODAY, Api, World


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A PostgreSQL-only test gets no SQLite copy at all: a skipped copy reads like a failure in the report.
    # As a mark, so that it takes precedence over the fixture's own params (pytest's rule for direct
    # parametrization) and is read by pytest's own hook, which runs after this one.
    if metafunc.definition.get_closest_marker("postgres_only") and "db_url" in metafunc.fixturenames:
        metafunc.definition.add_marker(pytest.mark.parametrize("db_url", ["postgres"], indirect=True))


def postgres_url() -> str | None:
    url = os.environ.get("LOANFUND_TEST_DATABASE_URL")
    if not url:
        if os.environ.get("LOANFUND_REQUIRE_POSTGRES") == "1":
            pytest.fail("LOANFUND_REQUIRE_POSTGRES=1 but LOANFUND_TEST_DATABASE_URL is not set")
        return None
    return normalise_database_url(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    base = postgres_url()
    if base is None:
        yield None
        return
    name = f"loanfund_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(admin_statement(base, f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(admin_statement(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def admin_statement(url: str, statement: str) -> None:
    """A statement outside any transaction (CREATE or DROP DATABASE) on the server at `url`."""
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(statement))
    await engine.dispose()


async def reset_postgres(engine: AsyncEngine) -> None:
    tables = [t.name for t in metadata.sorted_tables if t.name != "reference_rate_fixings"]
    async with engine.begin() as conn:
        # The append-only tables refuse TRUNCATE (migration 0007); the test superuser resets them
        # with triggers off, as only a table owner or superuser could (docs/operations.md).
        await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        await conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        await conn.execute(sa.text("DELETE FROM reference_rate_fixings WHERE source <> 'starting_data'"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(
    request: pytest.FixtureRequest, sqlite_template: Path, postgres_database: str | None, tmp_path: Path
) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    if postgres_database is None:
        pytest.skip("PostgreSQL not configured (set LOANFUND_TEST_DATABASE_URL)")
    return postgres_database


@pytest.fixture
def is_postgres(db_url: str) -> bool:
    return db_url.startswith("postgresql")


@pytest.fixture(autouse=True)
def business_date(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOANFUND_BUSINESS_DATE", TODAY)
    return TODAY


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url, pool_size=20)
    if db_url.startswith("postgresql"):
        await reset_postgres(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url, pool_size=20, idempotency_claim_timeout_seconds=60, idempotency_retention_days=8
    )


@pytest.fixture
async def world(engine: AsyncEngine, settings: Settings) -> AsyncIterator[World]:
    # The app makes its own engine: the test client runs it on another event loop than this test's.
    app = create_app(settings)
    async with AsyncTestClient(app) as http:
        yield World(http, engine)


@pytest.fixture
async def admin(world: World) -> Api:
    return await world.caller("admin")


@pytest.fixture
async def manager(world: World) -> Api:
    return await world.caller("fund_manager", region="2301")

"""Run Alembic migrations programmatically (`loanfund db upgrade`)."""

from __future__ import annotations

import asyncio
import re
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.config import normalise_database_url
from loanfund.errors import SchemaOutOfDate


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("loanfund.db") / "migrations"))
    config.set_main_option("sqlalchemy.url", normalise_database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Create or migrate the schema. Blocking; call from a thread inside an event loop."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


# Written only by inserting: the runtime role may read and add rows, never change or remove them.
APPEND_ONLY_TABLES = ("journal_entries", "postings", "audit_log", "events")
ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_statements(role: str) -> list[str]:
    """What the service's own role may do: everything it needs, on tables it does not own.

    An owner may switch triggers off (`ALTER TABLE … DISABLE TRIGGER`) and truncate; a role that owns
    nothing can do neither, so the ledger's triggers bind it. Balances are written by the posting
    trigger, which runs as the caller: hence UPDATE on `ledger_accounts` (its guard refuses any other
    change of a balance)."""
    if not ROLE_RE.fullmatch(role):
        raise ValueError(f"not a plain PostgreSQL role name: {role!r}")
    quoted = f'"{role}"'
    append_only = ", ".join(APPEND_ONLY_TABLES)
    return [
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"REVOKE UPDATE, DELETE ON {append_only} FROM {quoted}",
        f"REVOKE DELETE ON ledger_accounts FROM {quoted}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    ]


async def grant_runtime_role(url: str, role: str) -> None:
    """Give `role` the service's privileges on the schema at `url` (run as the owner, after upgrade).
    Refuses a superuser or a role that owns any of the tables: triggers would not bind it."""
    from loanfund.db.engine import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name != "postgresql":
                raise ValueError("--grant-to is for PostgreSQL; SQLite has no roles")
            statements = grant_statements(role)
            found = (
                await conn.execute(
                    sa.text(
                        "SELECT r.rolsuper, (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid "
                        "AND c.relnamespace = 'public'::regnamespace) AS owned "
                        "FROM pg_roles r WHERE r.rolname = :role"
                    ),
                    {"role": role},
                )
            ).one_or_none()
            if found is None:
                raise ValueError(f"role {role} does not exist: CREATE ROLE {role} LOGIN first")
            if found.rolsuper or found.owned:
                raise ValueError(
                    f"role {role} is a superuser or owns tables; the service needs one that owns nothing"
                )
            for statement in statements:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    """The newest migration this version of loanfund ships."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("loanfund.db") / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None when it was never upgraded."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse to work on a database that `loanfund db upgrade` has not brought to this version's schema."""
    current, head = await current_revision(engine), head_revision()
    if current == head:
        return
    where = make_url(engine.url).render_as_string(hide_password=True)
    if current is None:
        detail = f"the database at {where} has no loanfund schema yet: run `loanfund db upgrade` first"
    else:
        detail = (
            f"the database at {where} is at schema revision {current}, this loanfund needs {head}:"
            " run `loanfund db upgrade` first"
        )
    raise SchemaOutOfDate(detail, current_revision=current, required_revision=head)

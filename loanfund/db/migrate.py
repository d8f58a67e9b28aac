"""Run Alembic migrations programmatically (`loanfund db upgrade`)."""

from __future__ import annotations

import asyncio
from importlib import resources

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

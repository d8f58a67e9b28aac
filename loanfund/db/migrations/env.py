"""Alembic environment: runs migrations over the async engine in its own event loop."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from loanfund.db.engine import create_engine
from loanfund.db.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())

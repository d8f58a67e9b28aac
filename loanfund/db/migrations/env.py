"""Alembic environment: runs migrations over the async engine in its own event loop."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from loanfund.db.engine import create_engine
from loanfund.db.tables import metadata

config = context.config


def _foreign_keys(connection: Connection, on: bool) -> None:
    # On the driver's connection: through SQLAlchemy it would first BEGIN, and SQLite ignores this
    # pragma inside a transaction.
    cursor = connection.connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a column by rebuilding the table (batch mode): dropping the old copy must not
        # trip the foreign keys of the rows that point at it. Off for the migration, every key checked
        # before commit: SQLite's own procedure for altering a table.
        _foreign_keys(connection, on=False)
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration left rows with broken foreign keys: {broken[:5]}")
    if sqlite:
        _foreign_keys(connection, on=True)


async def _main() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())

"""Database access: engine creation, the schema, and migrations."""

from loanfund.db.engine import create_engine, is_postgres
from loanfund.db.migrate import upgrade

__all__ = ["create_engine", "is_postgres", "upgrade"]

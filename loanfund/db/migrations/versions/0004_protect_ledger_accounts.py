"""Protect ledger accounts: only the posting trigger may change a balance; names and funds never change.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

POSTGRES = [
    """CREATE FUNCTION ledger_accounts_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger_accounts: DELETE refused' USING ERRCODE = '42501';
    END IF;
    IF NEW.id <> OLD.id OR NEW.fund_code <> OLD.fund_code OR NEW.name <> OLD.name THEN
        RAISE EXCEPTION 'ledger_accounts: an account keeps its id, fund and name' USING ERRCODE = '42501';
    END IF;
    -- Depth 1 is a statement from a client; the posting trigger's own UPDATE runs at depth 2.
    IF NEW.balance_fen <> OLD.balance_fen AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'ledger_accounts: balances change only by posting entries' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_accounts_guard BEFORE UPDATE OR DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_accounts_guard()""",
]

# SQLite cannot tell a trigger's update from a client's, so there only names, funds and rows are fixed.
SQLITE = [
    """CREATE TRIGGER ledger_accounts_fixed BEFORE UPDATE OF id, fund_code, name ON ledger_accounts BEGIN
        SELECT RAISE(ABORT, 'ledger_accounts: an account keeps its id, fund and name');
    END""",
    """CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts BEGIN
        SELECT RAISE(ABORT, 'ledger_accounts: DELETE refused');
    END""",
]


def upgrade() -> None:
    for statement in POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_guard ON ledger_accounts")
        op.execute("DROP FUNCTION IF EXISTS ledger_accounts_guard")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_fixed")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_no_delete")

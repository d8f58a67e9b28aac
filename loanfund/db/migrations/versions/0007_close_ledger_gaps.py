"""Close the ledger's last gaps to hand-written SQL (issue 8): no TRUNCATE of the append-only tables,
no posting added to an entry after the transaction that wrote it, no account born with a balance.

Row triggers do not fire on TRUNCATE, so each append-only table gets a statement-level one. An entry
is closed once its transaction commits: a posting may only name an entry whose inserting
transaction is still in progress, which (rows of other running transactions being invisible) means
this transaction or one of its savepoints. What the database cannot stop is its tables' owner
switching triggers off: the service runs as a role that owns nothing (`loanfund db upgrade
--grant-to ROLE`, docs/operations.md).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APPEND_ONLY = ("journal_entries", "postings", "audit_log", "events")

POSTGRES = [
    """CREATE FUNCTION refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME USING ERRCODE = '42501';
END;
$$ LANGUAGE plpgsql""",
    *[
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate()"""
        for table in APPEND_ONLY
    ],
    # xmin is the 32-bit id of the inserting (sub)transaction. Ids of this transaction's savepoints come
    # after its own id, so an entry of ours lies a few ids past it; anything "before" it (mod 2^32) is
    # older and closed. pg_xact_status (which wants the 64-bit id) says whether it is still running.
    """CREATE FUNCTION postings_entry_open() RETURNS trigger AS $$
DECLARE
    v_xmin bigint;
    v_top bigint := pg_current_xact_id()::text::bigint;
    v_delta bigint;
BEGIN
    SELECT xmin::text::bigint INTO v_xmin FROM journal_entries WHERE id = NEW.entry_id;
    IF v_xmin IS NULL THEN
        RETURN NEW;  -- no such entry: the foreign key refuses it
    END IF;
    v_delta := (v_xmin - v_top % 4294967296 + 4294967296) % 4294967296;
    IF v_delta >= 2147483648
       OR pg_xact_status((v_top + v_delta)::text::xid8) IS DISTINCT FROM 'in progress' THEN
        RAISE EXCEPTION 'postings: entry % is posted and closed; correct it with a reversing entry',
            NEW.entry_id USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    """CREATE TRIGGER postings_entry_open BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_entry_open()""",
    """CREATE FUNCTION ledger_accounts_open_at_zero() RETURNS trigger AS $$
BEGIN
    IF NEW.balance_fen <> 0 THEN
        RAISE EXCEPTION 'ledger_accounts: an account opens at zero; only postings move it'
            USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_accounts_open_at_zero BEFORE INSERT ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_accounts_open_at_zero()""",
]

# SQLite has no TRUNCATE (DELETE is refused row by row already) and no transaction ids to compare.
SQLITE = [
    """CREATE TRIGGER ledger_accounts_open_at_zero BEFORE INSERT ON ledger_accounts
    WHEN NEW.balance_fen <> 0 BEGIN
        SELECT RAISE(ABORT, 'ledger_accounts: an account opens at zero; only postings move it');
    END""",
]


def upgrade() -> None:
    for statement in POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS ledger_accounts_open_at_zero"
        + (" ON ledger_accounts" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS postings_entry_open ON postings")
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(
            "DROP FUNCTION IF EXISTS refuse_truncate, postings_entry_open, ledger_accounts_open_at_zero"
        )

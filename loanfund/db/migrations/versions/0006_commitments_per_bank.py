"""One contra account per bank: `memo:commitments:{bank}` replaces the fund-wide `memo:commitments`.

Every reservation and every repayment of a fund used to post to one `memo:commitments` row, so a
fund's writes queued on one lock held until commit (docs/performance.md). Each fund's existing
balance is moved, by one journal entry per fund, to the contra accounts of the banks whose memo
accounts it balanced; the legacy account stays at zero and keeps its history.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from loanfund.ids import new_id

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACCOUNT_NAME_RE = (
    "^(cash|subsidy_budget|memo:commitments|income:recovery"
    "|expense:(compensation|write_off)"
    "|capital:(provincial|local_match|central|deposit_interest|donation|other|subsidy)"
    "|(deposit|recoverable|subsidy_paid|memo:reserved|memo:outstanding|memo:commitments):[A-Za-z0-9_-]{1,32})$"
)
OLD_ACCOUNT_NAME_RE = (
    "^(cash|subsidy_budget|memo:commitments|income:recovery"
    "|expense:(compensation|write_off)"
    "|capital:(provincial|local_match|central|deposit_interest|donation|other|subsidy)"
    "|(deposit|recoverable|subsidy_paid|memo:reserved|memo:outstanding):[A-Za-z0-9_-]{1,32})$"
)

CHECK_ENTRY = """
CREATE OR REPLACE FUNCTION ledger_check_entry(p_entry_id text) RETURNS void AS $$
DECLARE
    v_fund text;
    v_count integer;
    v_sum numeric;
    v_foreign integer;
    v_unknown integer;
BEGIN
    SELECT fund_code INTO v_fund FROM journal_entries WHERE id = p_entry_id;
    IF v_fund IS NULL THEN
        RAISE EXCEPTION 'ledger: posting refers to missing entry %', p_entry_id USING ERRCODE = '23514';
    END IF;
    SELECT count(*), coalesce(sum(p.amount_fen), 0),
           count(*) FILTER (WHERE a.fund_code <> v_fund),
           count(*) FILTER (WHERE a.name !~ '{account_re}')
      INTO v_count, v_sum, v_foreign, v_unknown
      FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
     WHERE p.entry_id = p_entry_id;
    IF v_count < 2 THEN
        RAISE EXCEPTION 'ledger: entry % has % posting(s), needs at least 2', p_entry_id, v_count
            USING ERRCODE = '23514';
    END IF;
    IF v_sum <> 0 THEN
        RAISE EXCEPTION 'ledger: entry % is unbalanced by % fen', p_entry_id, v_sum USING ERRCODE = '23514';
    END IF;
    IF v_foreign > 0 THEN
        RAISE EXCEPTION 'ledger: entry % mixes funds', p_entry_id USING ERRCODE = '23514';
    END IF;
    IF v_unknown > 0 THEN
        RAISE EXCEPTION 'ledger: entry % names an unknown account', p_entry_id USING ERRCODE = '23514';
    END IF;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(CHECK_ENTRY.replace("{account_re}", ACCOUNT_NAME_RE))
    _move_balances(bind)


def _move_balances(bind: sa.engine.Connection) -> None:
    accounts = sa.table(
        "ledger_accounts",
        sa.column("id", sa.BigInteger),
        sa.column("fund_code", sa.String),
        sa.column("name", sa.String),
        sa.column("balance_fen", sa.BigInteger),
    )
    entries = sa.table(
        "journal_entries",
        sa.column("id", sa.String),
        sa.column("fund_code", sa.String),
        sa.column("entry_date", sa.Date),
        sa.column("kind", sa.String),
        sa.column("description", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("request_id", sa.String),
    )
    postings = sa.table(
        "postings",
        sa.column("entry_id", sa.String),
        sa.column("account_id", sa.BigInteger),
        sa.column("amount_fen", sa.BigInteger),
    )
    rows = bind.execute(
        sa.select(accounts.c.id, accounts.c.fund_code, accounts.c.name, accounts.c.balance_fen)
    )
    legacy: dict[str, tuple[int, int]] = {}
    per_bank: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if row.name == "memo:commitments":
            legacy[row.fund_code] = (row.id, row.balance_fen)
        elif row.name.startswith(("memo:reserved:", "memo:outstanding:")):
            bank = row.name.split(":", 2)[2]
            per_bank[row.fund_code][bank] += row.balance_fen
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for fund_code, (legacy_id, legacy_balance) in sorted(legacy.items()):
        banks = {bank: fen for bank, fen in per_bank[fund_code].items() if fen}
        if sum(banks.values()) != -legacy_balance:
            raise RuntimeError(
                f"fund {fund_code}: memo:commitments ({legacy_balance}) differs from its banks' memo accounts"
            )
        if not banks:
            continue
        for bank in sorted(banks):
            name = f"memo:commitments:{bank}"
            exists = bind.scalar(
                sa.select(accounts.c.id).where(accounts.c.fund_code == fund_code, accounts.c.name == name)
            )
            if exists is None:
                bind.execute(sa.insert(accounts).values(fund_code=fund_code, name=name, balance_fen=0))
        ids = {
            row.name: row.id
            for row in bind.execute(
                sa.select(accounts.c.name, accounts.c.id).where(
                    accounts.c.fund_code == fund_code, accounts.c.name.like("memo:commitments:%")
                )
            )
        }
        entry_id = new_id("je")
        bind.execute(
            sa.insert(entries).values(
                id=entry_id,
                fund_code=fund_code,
                entry_date=today,
                kind="chart_migration",
                description="memo:commitments split into one contra account per bank (migration 0006)",
                created_at=datetime.now(UTC),
                request_id="migration:0006",
            )
        )
        lines = [{"entry_id": entry_id, "account_id": legacy_id, "amount_fen": -legacy_balance}]
        lines += [
            {"entry_id": entry_id, "account_id": ids[f"memo:commitments:{bank}"], "amount_fen": -fen}
            for bank, fen in sorted(banks.items())
        ]
        bind.execute(sa.insert(postings), lines)


def downgrade() -> None:
    # The per-bank balances stay where they are (the ledger is append-only); only the check goes back.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECK_ENTRY.replace("{account_re}", OLD_ACCOUNT_NAME_RE))

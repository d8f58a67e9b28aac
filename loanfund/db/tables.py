"""The schema, as SQLAlchemy Core tables. Migrations in loanfund/db/migrations create exactly this.

Money is integer fen (`*_fen`, BIGINT); exact decimals are text; ids are server-made strings.
"""

from __future__ import annotations

import sqlalchemy as sa

from loanfund.db.types import BigIntPK, DecimalText, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Fen = sa.BigInteger

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("region_prefix", sa.String(6)),
    sa.Column("bank_code", sa.String(32)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

banks = sa.Table(
    "banks",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

funds = sa.Table(
    "funds",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

fund_policies = sa.Table(
    "fund_policies",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("effective_from", sa.Date(), nullable=False),
    sa.Column("edition", sa.String(20), nullable=False),
    sa.Column("overrides", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.UniqueConstraint("fund_code", "effective_from"),
)

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    # Maintained by a database trigger on postings; never written by application code.
    sa.Column("balance_fen", Fen(), nullable=False, server_default="0"),
    sa.UniqueConstraint("fund_code", "name"),
)

journal_entries = sa.Table(
    "journal_entries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("entry_date", sa.Date(), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("reference", sa.String(200)),
    sa.Column("reverses_entry_id", sa.String(40), sa.ForeignKey("journal_entries.id"), unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("client_id", sa.String(40)),
    sa.Column("request_id", sa.String(64)),
    sa.Index("ix_journal_entries_fund_date", "fund_code", "entry_date"),
)

postings = sa.Table(
    "postings",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id"), nullable=False, index=True),
    sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
    # Debits positive, credits negative.
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.CheckConstraint("amount_fen <> 0", name="nonzero"),
    sa.Index("ix_postings_account", "account_id", "entry_id"),
)

allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False, index=True),
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.Column("received_on", sa.Date(), nullable=False),
    sa.Column("reference", sa.String(200), nullable=False),
    sa.Column("match_ratio_pct", DecimalText(), nullable=False),
    sa.Column("match_due_on", sa.Date(), nullable=False),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id"), nullable=False),
    sa.Column("reversal_entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

contributions = sa.Table(
    "contributions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False, index=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.Column("received_on", sa.Date(), nullable=False),
    sa.Column("reference", sa.String(200), nullable=False),
    sa.Column("allocation_id", sa.String(40), sa.ForeignKey("allocations.id"), index=True),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id"), nullable=False),
    sa.Column("reversal_entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

reference_rate_fixings = sa.Table(
    "reference_rate_fixings",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("effective_on", sa.Date(), nullable=False),
    sa.Column("rate_pct", DecimalText(), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("kind", "effective_on"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("client_id", sa.String(40)),
    sa.Column("request_id", sa.String(64)),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("entity_type", sa.String(40), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    # Region of the entity, so an auditor sees only the records of their scope.
    sa.Column("region_code", sa.String(6)),
    sa.Column("changes", sa.JSON(), nullable=False),
    sa.Index("ix_audit_log_entity", "entity_type", "entity_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("fund_code", sa.String(32)),
    sa.Column("region_code", sa.String(6)),
    sa.Column("bank_code", sa.String(32)),
    sa.Column("data", sa.JSON(), nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("claim_token", sa.String(40), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime()),
    sa.Column("response_status", sa.Integer()),
    sa.Column("response_headers", sa.JSON()),
    sa.Column("response_body", sa.LargeBinary()),
    sa.Index("ix_idempotency_keys_claimed_at", "claimed_at"),
)

# ---- partner banks and leverage (issue: agreements, capacity, reservations) ----------------------

fund_banks = sa.Table(
    "fund_banks",
    metadata,
    # One row per fund × bank pair: deposits, outstanding and reserved belong to the pair and carry
    # over from one agreement to the next. Its row lock serialises every capacity decision of the pair.
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), primary_key=True),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

agreements = sa.Table(
    "agreements",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), nullable=False),
    sa.Column("leverage_multiple", DecimalText(), nullable=False),
    sa.Column("fund_loss_share_pct", DecimalText(), nullable=False),
    sa.Column("claim_after_days", sa.Integer(), nullable=False),
    sa.Column("claim_covers_interest", sa.Boolean(), nullable=False),
    sa.Column("compensation_suspend_pct", DecimalText()),
    sa.Column("effective_from", sa.Date(), nullable=False),
    sa.Column("effective_to", sa.Date()),
    sa.Column("suspended", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("suspended_reason", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.Index("ix_agreements_pair", "fund_code", "bank_code"),
)

guarantees = sa.Table(
    "guarantees",
    metadata,
    # A guarantee reservation against a fund × bank pair's headroom; becomes outstanding on disbursement.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), nullable=False),
    sa.Column("bank_code", sa.String(32), nullable=False),
    sa.Column("agreement_id", sa.String(40), sa.ForeignKey("agreements.id"), nullable=False),
    sa.Column("application_id", sa.String(40), unique=True),
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.Column("approved_on", sa.Date(), nullable=False),
    sa.Column("expires_on", sa.Date(), nullable=False),
    # reserved | converted | released | lapsed
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("converted_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("settled_on", sa.Date()),
    sa.Column("reserve_entry_id", sa.String(40), sa.ForeignKey("journal_entries.id"), nullable=False),
    sa.Column("settle_entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["fund_code", "bank_code"], ["fund_banks.fund_code", "fund_banks.bank_code"]),
    sa.Index("ix_guarantees_pair_status", "fund_code", "bank_code", "status", "expires_on"),
)

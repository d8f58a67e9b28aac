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
    # The writing transaction's id on PostgreSQL (0 on SQLite, whose writers take turns): the feed is
    # read in (tx_id, id) order and only below the oldest running transaction (loanfund/events.py).
    sa.Column("tx_id", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Index("ix_events_position", "tx_id", "id"),
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
    sa.Column("suspended_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.CheckConstraint("claim_after_days >= 1", name="claim_after_days_positive"),
    sa.CheckConstraint("effective_to IS NULL OR effective_to >= effective_from", name="period"),
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
    sa.CheckConstraint("status IN ('reserved', 'converted', 'released', 'lapsed')", name="status"),
    sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    sa.CheckConstraint("converted_fen >= 0 AND converted_fen <= amount_fen", name="converted_within_amount"),
    sa.CheckConstraint("expires_on >= approved_on", name="expiry_after_approval"),
    # Live capacity sums a pair's reserved-but-expired rows; the lapse job scans all expired rows.
    sa.Index("ix_guarantees_pair_status", "fund_code", "bank_code", "status", "expires_on"),
    sa.Index("ix_guarantees_status_expires", "status", "expires_on"),
)

# ---- borrowers, guarantors, applications, loans (issue 4: from window to bank) --------------------

borrowers = sa.Table(
    "borrowers",
    metadata,
    # One record per person (resident ID) or firm (USCC) nationally. The full number is kept for exact
    # look-ups and for the bank holding a loan of the borrower; everything else shows it masked.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(12), nullable=False),  # individual | enterprise
    sa.Column("id_number", sa.String(18), nullable=False),  # resident ID, or the firm's USCC
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("phone", sa.String(40)),
    sa.Column("birth_date", sa.Date()),
    sa.Column("gender", sa.String(6)),
    sa.Column("categories", sa.JSON(), nullable=False),
    sa.Column("certificates", sa.JSON(), nullable=False),
    sa.Column("credit_community", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("syb_trained", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("staff_count", sa.Integer()),
    sa.Column("eligible_new_hires", sa.Integer()),
    sa.Column("graduation_year", sa.Integer()),  # migration 0010
    sa.Column("syb_plan_approved_on", sa.Date()),  # migration 0010: the SYB business plan's approval
    sa.Column("region_code", sa.String(6), nullable=False),  # of the registering window
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.UniqueConstraint("kind", "id_number"),
)

borrower_regions = sa.Table(
    "borrower_regions",
    metadata,
    # The regions (window scopes and fund regions) that see a borrower: its own, every window that
    # registered it again, and every fund it applied to.
    sa.Column("borrower_id", sa.String(40), sa.ForeignKey("borrowers.id"), primary_key=True),
    sa.Column("region_code", sa.String(6), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_borrower_regions_region", "region_code"),
)

guarantors = sa.Table(
    "guarantors",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("id_number", sa.String(18), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("birth_date", sa.Date(), nullable=False),
    sa.Column("gender", sa.String(6), nullable=False),
    sa.Column("employer", sa.String(200), nullable=False),
    # civil_service | public_institution | state_enterprise | other
    sa.Column("employer_kind", sa.String(20), nullable=False),
    sa.Column("monthly_income_fen", Fen(), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
)

guarantor_regions = sa.Table(
    "guarantor_regions",
    metadata,
    sa.Column("guarantor_id", sa.String(40), sa.ForeignKey("guarantors.id"), primary_key=True),
    sa.Column("region_code", sa.String(6), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_guarantor_regions_region", "region_code"),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), nullable=False),
    sa.Column("borrower_id", sa.String(40), sa.ForeignKey("borrowers.id"), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False),  # the fund's
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.Column("term_months", sa.Integer(), nullable=False),
    sa.Column("purpose", sa.String(500), nullable=False),
    sa.Column("micro_profit", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("guarantee_kind", sa.String(12), nullable=False),  # credit | guarantor | collateral | joint
    sa.Column("collateral_description", sa.String(500)),
    sa.Column("joint_borrower_ids", sa.JSON(), nullable=False),
    # Other members of a partnership application (migration 0005); empty for one borrower.
    sa.Column("partner_borrower_ids", sa.JSON()),
    sa.Column("jobs_created", sa.Integer(), nullable=False),
    sa.Column("applied_on", sa.Date(), nullable=False),
    sa.Column("policy_edition", sa.String(20), nullable=False),
    sa.Column("is_4050", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("eligibility", sa.JSON(), nullable=False),
    # Stored: submitted | guarantee_approved | disbursed | rejected | withdrawn. `lapsed` is derived
    # (guarantee_approved with guarantee_expires_on before today), whether or not the lapse job ran.
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("guarantee_id", sa.String(40)),
    sa.Column("guarantee_amount_fen", Fen()),
    sa.Column("guarantee_expires_on", sa.Date()),
    sa.Column("approved_on", sa.Date()),
    sa.Column("loan_id", sa.String(40)),
    sa.Column("submitted_at", UTCDateTime(), nullable=False),
    sa.Column("submitted_by", sa.String(40)),
    sa.Column("approved_at", UTCDateTime()),
    sa.Column("approved_by", sa.String(40)),
    sa.Column("closed_at", UTCDateTime()),  # rejected or withdrawn
    sa.Column("closed_by", sa.String(40)),
    sa.Column("close_reason", sa.String(500)),
    sa.Column("disbursed_at", UTCDateTime()),
    sa.Column("disbursed_by", sa.String(40)),
    sa.Index("ix_applications_fund_status", "fund_code", "status"),
    sa.Index("ix_applications_bank_status", "bank_code", "status"),
    sa.Index("ix_applications_borrower", "borrower_id"),
)

application_guarantors = sa.Table(
    "application_guarantors",
    metadata,
    sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("guarantor_id", sa.String(40), sa.ForeignKey("guarantors.id"), primary_key=True),
    sa.Index("ix_application_guarantors_guarantor", "guarantor_id"),
)

loans = sa.Table(
    "loans",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), nullable=False, unique=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), nullable=False),
    sa.Column("borrower_id", sa.String(40), sa.ForeignKey("borrowers.id"), nullable=False),
    # The borrower's (individual | enterprise), which never changes: the subsidy rules read it per loan.
    sa.Column("borrower_kind", sa.String(12), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False),  # the fund's
    sa.Column("guarantee_id", sa.String(40), nullable=False),
    sa.Column("loan_number", sa.String(64), nullable=False),
    sa.Column("principal_fen", Fen(), nullable=False),
    sa.Column("outstanding_fen", Fen(), nullable=False),
    sa.Column("annual_rate_pct", DecimalText(), nullable=False),
    sa.Column("disbursed_on", sa.Date(), nullable=False),
    sa.Column("contracted_on", sa.Date(), nullable=False),
    sa.Column("maturity_on", sa.Date(), nullable=False),  # current, after any extension
    sa.Column("original_maturity_on", sa.Date(), nullable=False),
    sa.Column("term_months", sa.Integer(), nullable=False),
    sa.Column("reference_rate_kind", sa.String(10), nullable=False),
    sa.Column("reference_rate_pct", DecimalText(), nullable=False),
    sa.Column("reference_rate_date", sa.Date(), nullable=False),
    sa.Column("reference_rate_stale", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("rate_ceiling_pct", DecimalText(), nullable=False),
    sa.Column("policy_edition", sa.String(20), nullable=False),
    # Stored: active | repaid (later compensated | written_off). `overdue` is derived: an active loan
    # with a reported missed instalment, or past its maturity.
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("overdue_since", sa.Date()),
    sa.Column("overdue_principal_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("extension_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("repaid_on", sa.Date()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.UniqueConstraint("bank_code", "loan_number"),
    sa.Index("ix_loans_fund_status", "fund_code", "status"),
    sa.Index("ix_loans_bank_status", "bank_code", "status"),
    sa.Index("ix_loans_borrower", "borrower_id"),
)

loan_repayments = sa.Table(
    "loan_repayments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, index=True),
    sa.Column("principal_fen", Fen(), nullable=False),
    sa.Column("interest_fen", Fen(), nullable=False),
    sa.Column("paid_on", sa.Date(), nullable=False),
    sa.Column("outstanding_after_fen", Fen(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
)

loan_extensions = sa.Table(
    "loan_extensions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, index=True),
    sa.Column("previous_maturity_on", sa.Date(), nullable=False),
    sa.Column("new_maturity_on", sa.Date(), nullable=False),
    sa.Column("guarantor_consent", sa.Boolean(), nullable=False),
    sa.Column("extended_on", sa.Date(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
)

# ---- interest subsidies (issue 10) -----------------------------------------------------------------

loan_overdue_spells = sa.Table(
    "loan_overdue_spells",
    metadata,
    # Each reported overdue spell of a loan, kept after it is cured (loans.overdue_since is cleared
    # then): subsidy claims exclude [overdue_since, cured_on) for the whole loan.
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), primary_key=True),
    sa.Column("overdue_since", sa.Date(), primary_key=True),
    sa.Column("cured_on", sa.Date()),
    sa.CheckConstraint("cured_on IS NULL OR cured_on > overdue_since", name="cured_after_start"),
)

subsidy_claims = sa.Table(
    "subsidy_claims",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False),  # the fund's
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("period_start", sa.Date(), nullable=False),
    sa.Column("period_end", sa.Date(), nullable=False),  # exclusive
    # submitted | approved | paid
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("line_count", sa.Integer(), nullable=False),
    sa.Column("interest_fen", Fen(), nullable=False),
    sa.Column("total_fen", Fen(), nullable=False),
    sa.Column("approved_total_fen", Fen()),
    sa.Column("filed_on", sa.Date(), nullable=False),
    sa.Column("filed_at", UTCDateTime(), nullable=False),
    sa.Column("filed_by", sa.String(40)),
    sa.Column("reviewed_at", UTCDateTime()),
    sa.Column("reviewed_by", sa.String(40)),
    sa.Column("paid_on", sa.Date()),
    sa.Column("paid_at", UTCDateTime()),
    sa.Column("paid_by", sa.String(40)),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.UniqueConstraint("fund_code", "bank_code", "period"),
    sa.CheckConstraint("status IN ('submitted', 'approved', 'paid')", name="status"),
    sa.Index("ix_subsidy_claims_fund_status", "fund_code", "status"),
    sa.Index("ix_subsidy_claims_bank_status", "bank_code", "status"),
)

subsidy_claim_lines = sa.Table(
    "subsidy_claim_lines",
    metadata,
    sa.Column("claim_id", sa.String(40), sa.ForeignKey("subsidy_claims.id"), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), primary_key=True),
    sa.Column("loan_number", sa.String(64), nullable=False),
    sa.Column("opening_fen", Fen(), nullable=False),
    sa.Column("closing_fen", Fen(), nullable=False),
    sa.Column("disbursed_fen", Fen(), nullable=False),
    sa.Column("repaid_fen", Fen(), nullable=False),
    sa.Column("days", sa.Integer(), nullable=False),
    sa.Column("excluded_days", sa.Integer(), nullable=False),
    sa.Column("annual_rate_pct", DecimalText(), nullable=False),
    sa.Column("reference_rate_pct", DecimalText(), nullable=False),
    sa.Column("subsidy_rate_pct", DecimalText(), nullable=False),  # rounded to 4 decimals for display
    sa.Column("interest_fen", Fen(), nullable=False),
    sa.Column("subsidy_fen", Fen(), nullable=False),
    sa.Column("approved_fen", Fen()),
    sa.Column("review_reason", sa.String(500)),
    sa.Column("policy_edition", sa.String(20), nullable=False),
    sa.Column("day_count_basis", sa.Integer(), nullable=False),
    # The explanation: [{from, to, reason, days}] and [{from, to, principal, rate_pct, share, ...}].
    sa.Column("exclusions", sa.JSON(), nullable=False),
    sa.Column("spans", sa.JSON(), nullable=False),
    sa.CheckConstraint(
        "subsidy_fen >= 0 AND (approved_fen IS NULL OR approved_fen >= 0)", name="nonnegative"
    ),
)

# ---- dashboard users (issue 13: the fund manager's dashboard) --------------------------------------

users = sa.Table(
    "users",
    metadata,
    # People who sign in to the dashboard with a password; their scope is a region prefix, as an API
    # client's. Their id is the actor of what they do (audit log, approvals' maker-checker).
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("region_prefix", sa.String(6), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id, with its parameters
    sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime()),
    sa.CheckConstraint("role IN ('fund_manager', 'auditor')", name="role"),
)

user_sessions = sa.Table(
    "user_sessions",
    metadata,
    # The cookie carries the token; only its SHA-256 is kept, like API tokens.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)


application_partners = sa.Table(
    "application_partners",
    metadata,
    # The other members of a partnership application (migration 0010), one row each, so that the
    # partnership's loan and the open application count in each member's own record.
    sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("borrower_id", sa.String(40), sa.ForeignKey("borrowers.id"), primary_key=True),
    sa.Index("ix_application_partners_borrower", "borrower_id"),
)

application_other_loans = sa.Table(
    "application_other_loans",
    metadata,
    # Loans outside the programme declared at application for the borrower or the spouse (2018 rule).
    sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("position", sa.Integer(), primary_key=True),
    sa.Column("holder", sa.String(8), nullable=False),  # borrower | spouse
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("outstanding_fen", Fen(), nullable=False),
)

# ---- defaults: delinquency, compensation, recovery, write-off (issue 11) ---------------------------

compensation_claims = sa.Table(
    "compensation_claims",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, index=True),
    # The loan's id while the claim is submitted or paid, NULL once rejected: one open claim per loan,
    # enforced by the database on both dialects (NULLs never collide in a unique constraint).
    sa.Column("open_loan_id", sa.String(40), unique=True),
    sa.Column("fund_code", sa.String(32), sa.ForeignKey("funds.code"), nullable=False),
    sa.Column("bank_code", sa.String(32), sa.ForeignKey("banks.code"), nullable=False),
    sa.Column("region_code", sa.String(6), nullable=False),
    sa.Column("agreement_id", sa.String(40), sa.ForeignKey("agreements.id"), nullable=False),
    sa.Column("claimed_on", sa.Date(), nullable=False),
    sa.Column("days_past_due", sa.Integer(), nullable=False),
    sa.Column("claim_after_days", sa.Integer(), nullable=False),
    sa.Column("base_principal_fen", Fen(), nullable=False),
    sa.Column("base_interest_fen", Fen(), nullable=False),
    sa.Column("fund_loss_share_pct", DecimalText(), nullable=False),
    sa.Column("amount_fen", Fen(), nullable=False),
    # submitted | paid | rejected
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("filed_by", sa.String(40)),
    sa.Column("filed_at", UTCDateTime(), nullable=False),
    sa.Column("decided_by", sa.String(40)),
    sa.Column("decided_at", UTCDateTime()),
    sa.Column("decided_on", sa.Date()),
    sa.Column("reason", sa.String(500)),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("recovered_fund_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("recovered_bank_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("written_off_fen", Fen(), nullable=False, server_default="0"),
    sa.CheckConstraint("status IN ('submitted', 'paid', 'rejected')", name="status"),
    sa.CheckConstraint(
        "amount_fen >= 0 AND base_principal_fen >= 0 AND base_interest_fen >= 0", name="amounts"
    ),
    sa.CheckConstraint("recovered_fund_fen + written_off_fen <= amount_fen", name="settled_within_amount"),
    sa.Index("ix_compensation_claims_fund_status", "fund_code", "status", "decided_on"),
    sa.Index("ix_compensation_claims_bank_status", "bank_code", "status"),
)

loan_recoveries = sa.Table(
    "loan_recoveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, index=True),
    sa.Column("claim_id", sa.String(40), sa.ForeignKey("compensation_claims.id"), nullable=False),
    sa.Column("amount_fen", Fen(), nullable=False),
    sa.Column("fund_part_fen", Fen(), nullable=False),
    sa.Column("bank_part_fen", Fen(), nullable=False),
    sa.Column("recovered_on", sa.Date(), nullable=False),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.CheckConstraint("amount_fen > 0 AND fund_part_fen + bank_part_fen = amount_fen", name="split"),
)

loan_write_offs = sa.Table(
    "loan_write_offs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, unique=True),
    sa.Column("claim_id", sa.String(40), sa.ForeignKey("compensation_claims.id"), nullable=False),
    sa.Column("amount_fen", Fen(), nullable=False),  # what the fund had not recovered (may be 0)
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("written_off_on", sa.Date(), nullable=False),
    sa.Column("entry_id", sa.String(40), sa.ForeignKey("journal_entries.id")),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
)

loan_missed_instalments = sa.Table(
    "loan_missed_instalments",
    metadata,
    # What a bank reported as missed, and how much of it later repayments have paid: the instalment is
    # cured (and its spell of arrears ends) only once both its principal and its interest are paid.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("loan_id", sa.String(40), sa.ForeignKey("loans.id"), nullable=False, index=True),
    sa.Column("overdue_since", sa.Date(), nullable=False),
    sa.Column("principal_fen", Fen(), nullable=False),
    sa.Column("interest_fen", Fen(), nullable=False),
    sa.Column("paid_principal_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("paid_interest_fen", Fen(), nullable=False, server_default="0"),
    sa.Column("reported_on", sa.Date(), nullable=False),
    sa.Column("cured_on", sa.Date()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(40)),
    sa.CheckConstraint(
        "paid_principal_fen <= principal_fen AND paid_interest_fen <= interest_fen", name="paid_within"
    ),
)

# ---- scheduled jobs (issue 12) ---------------------------------------------------------------------

job_runs = sa.Table(
    "job_runs",
    metadata,
    # One row per finished attempt; a successful one is written in the same transaction as the job's work.
    sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(60), nullable=False),
    sa.Column("business_date", sa.Date(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),  # ok | failed
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("error", sa.String(2000)),
    sa.Column("trigger", sa.String(10), nullable=False),  # scheduler | manual
    sa.Column("runner", sa.String(120), nullable=False),  # host:pid
    sa.CheckConstraint("outcome IN ('ok', 'failed')", name="outcome"),
    sa.Index("ix_job_runs_job_date", "job", "business_date"),
)

job_state = sa.Table(
    "job_state",
    metadata,
    # Per job, the last business date completed in order; its row lock serialises runs of the job.
    sa.Column("job", sa.String(60), primary_key=True),
    sa.Column("last_completed", sa.Date()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

job_alerts = sa.Table(
    "job_alerts",
    metadata,
    # What the jobs have announced, so that no alert is raised twice: one-off alerts keyed by what they
    # are about (a maturity date, a due date), flags keyed by the day raised and closed by `cleared_on`.
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("subject_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("raised_on", sa.Date(), nullable=False),
    sa.Column("cleared_on", sa.Date()),
    sa.Column("run_token", sa.String(40), nullable=False),
    sa.Column("fund_code", sa.String(32)),
    sa.Column("bank_code", sa.String(32)),
    sa.Column("region_code", sa.String(6)),
    sa.Index("ix_job_alerts_run_token", "run_token"),
)

capacity_snapshots = sa.Table(
    "capacity_snapshots",
    metadata,
    # Each agreement in force, as GET /agreements/{id} shows it at the close of the business date.
    sa.Column("agreement_id", sa.String(40), sa.ForeignKey("agreements.id"), primary_key=True),
    sa.Column("business_date", sa.Date(), primary_key=True),
    sa.Column("fund_code", sa.String(32), nullable=False),
    sa.Column("bank_code", sa.String(32), nullable=False),
    sa.Column("leverage_multiple", DecimalText(), nullable=False),
    sa.Column("deposit_fen", Fen(), nullable=False),
    sa.Column("capacity_fen", Fen(), nullable=False),
    sa.Column("outstanding_fen", Fen(), nullable=False),
    sa.Column("reserved_fen", Fen(), nullable=False),
    sa.Column("headroom_fen", Fen(), nullable=False),
    sa.Column("leverage_ratio", DecimalText()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_capacity_snapshots_pair_date", "fund_code", "bank_code", "business_date"),
)

# Balances as of a past date subtract the postings dated after it: few, found by this index.
sa.Index("ix_journal_entries_entry_date", journal_entries.c.entry_date)
# The daily loan jobs select active loans by maturity and by reported overdue start.
sa.Index("ix_loans_status_maturity", loans.c.status, loans.c.maturity_on)
sa.Index("ix_loans_status_overdue_since", loans.c.status, loans.c.overdue_since)

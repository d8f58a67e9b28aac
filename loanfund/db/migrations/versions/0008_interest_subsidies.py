"""Interest subsidies: claims, their lines, and the overdue spells of loans.

Revision ID: 0008
Revises: 0007

Overdue spells: a loan keeps only its open spell (`loans.overdue_since`, cleared when the arrears
are cured), so the spells open at upgrade time are copied here; a spell cured before this
migration is known only from the audit log (`loan.overdue_reported` and the repayment after it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loanfund.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loan_overdue_spells",
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=False),
        sa.Column("cured_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "cured_on IS NULL OR cured_on > overdue_since",
            name=op.f("ck_loan_overdue_spells_cured_after_start"),
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_overdue_spells_loan_id_loans")),
        sa.PrimaryKeyConstraint("loan_id", "overdue_since", name=op.f("pk_loan_overdue_spells")),
    )
    op.execute(
        "INSERT INTO loan_overdue_spells (loan_id, overdue_since)"
        " SELECT id, overdue_since FROM loans WHERE overdue_since IS NOT NULL"
    )
    op.create_table(
        "subsidy_claims",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("fund_code", sa.String(length=32), nullable=False),
        sa.Column("bank_code", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("approved_total_fen", sa.BigInteger(), nullable=True),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("filed_at", loanfund.db.types.UTCDateTime(), nullable=False),
        sa.Column("filed_by", sa.String(length=40), nullable=True),
        sa.Column("reviewed_at", loanfund.db.types.UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=40), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("paid_at", loanfund.db.types.UTCDateTime(), nullable=True),
        sa.Column("paid_by", sa.String(length=40), nullable=True),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted', 'approved', 'paid')", name=op.f("ck_subsidy_claims_status")
        ),
        sa.ForeignKeyConstraint(
            ["bank_code"], ["banks.code"], name=op.f("fk_subsidy_claims_bank_code_banks")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_subsidy_claims_entry_id_journal_entries")
        ),
        sa.ForeignKeyConstraint(
            ["fund_code"], ["funds.code"], name=op.f("fk_subsidy_claims_fund_code_funds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_claims")),
        sa.UniqueConstraint(
            "fund_code", "bank_code", "period", name=op.f("uq_subsidy_claims_fund_code_bank_code_period")
        ),
    )
    op.create_index("ix_subsidy_claims_fund_status", "subsidy_claims", ["fund_code", "status"])
    op.create_index("ix_subsidy_claims_bank_status", "subsidy_claims", ["bank_code", "status"])
    op.create_table(
        "subsidy_claim_lines",
        sa.Column("claim_id", sa.String(length=40), nullable=False),
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("loan_number", sa.String(length=64), nullable=False),
        sa.Column("opening_fen", sa.BigInteger(), nullable=False),
        sa.Column("closing_fen", sa.BigInteger(), nullable=False),
        sa.Column("disbursed_fen", sa.BigInteger(), nullable=False),
        sa.Column("repaid_fen", sa.BigInteger(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("excluded_days", sa.Integer(), nullable=False),
        sa.Column("annual_rate_pct", loanfund.db.types.DecimalText(), nullable=False),
        sa.Column("reference_rate_pct", loanfund.db.types.DecimalText(), nullable=False),
        sa.Column("subsidy_rate_pct", loanfund.db.types.DecimalText(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("subsidy_fen", sa.BigInteger(), nullable=False),
        sa.Column("approved_fen", sa.BigInteger(), nullable=True),
        sa.Column("review_reason", sa.String(length=500), nullable=True),
        sa.Column("policy_edition", sa.String(length=20), nullable=False),
        sa.Column("day_count_basis", sa.Integer(), nullable=False),
        sa.Column("exclusions", sa.JSON(), nullable=False),
        sa.Column("spans", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "subsidy_fen >= 0 AND (approved_fen IS NULL OR approved_fen >= 0)",
            name=op.f("ck_subsidy_claim_lines_nonnegative"),
        ),
        sa.ForeignKeyConstraint(
            ["claim_id"], ["subsidy_claims.id"], name=op.f("fk_subsidy_claim_lines_claim_id_subsidy_claims")
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_subsidy_claim_lines_loan_id_loans")),
        sa.PrimaryKeyConstraint("claim_id", "loan_id", name=op.f("pk_subsidy_claim_lines")),
    )


def downgrade() -> None:
    op.drop_table("subsidy_claim_lines")
    op.drop_index("ix_subsidy_claims_bank_status", table_name="subsidy_claims")
    op.drop_index("ix_subsidy_claims_fund_status", table_name="subsidy_claims")
    op.drop_table("subsidy_claims")
    op.drop_table("loan_overdue_spells")

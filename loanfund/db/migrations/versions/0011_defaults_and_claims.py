"""Defaults: compensation claims, recoveries, write-offs, missed instalments; the event feed's position.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loanfund.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compensation_claims",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("open_loan_id", sa.String(length=40), nullable=True),
        sa.Column("fund_code", sa.String(length=32), nullable=False),
        sa.Column("bank_code", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("agreement_id", sa.String(length=40), nullable=False),
        sa.Column("claimed_on", sa.Date(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("claim_after_days", sa.Integer(), nullable=False),
        sa.Column("base_principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("base_interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("fund_loss_share_pct", loanfund.db.types.DecimalText(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("filed_by", sa.String(length=40), nullable=True),
        sa.Column("filed_at", loanfund.db.types.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", loanfund.db.types.UTCDateTime(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("recovered_fund_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("recovered_bank_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("written_off_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "status IN ('submitted', 'paid', 'rejected')", name=op.f("ck_compensation_claims_status")
        ),
        sa.CheckConstraint(
            "amount_fen >= 0 AND base_principal_fen >= 0 AND base_interest_fen >= 0",
            name=op.f("ck_compensation_claims_amounts"),
        ),
        sa.CheckConstraint(
            "recovered_fund_fen + written_off_fen <= amount_fen",
            name=op.f("ck_compensation_claims_settled_within_amount"),
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_compensation_claims_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["fund_code"], ["funds.code"], name=op.f("fk_compensation_claims_fund_code_funds")
        ),
        sa.ForeignKeyConstraint(
            ["bank_code"], ["banks.code"], name=op.f("fk_compensation_claims_bank_code_banks")
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_compensation_claims_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_compensation_claims_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compensation_claims")),
        sa.UniqueConstraint("open_loan_id", name=op.f("uq_compensation_claims_open_loan_id")),
    )
    with op.batch_alter_table("compensation_claims", schema=None) as batch_op:
        batch_op.create_index("ix_compensation_claims_loan_id", ["loan_id"], unique=False)
        batch_op.create_index(
            "ix_compensation_claims_fund_status", ["fund_code", "status", "decided_on"], unique=False
        )
        batch_op.create_index("ix_compensation_claims_bank_status", ["bank_code", "status"], unique=False)

    op.create_table(
        "loan_recoveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("claim_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("fund_part_fen", sa.BigInteger(), nullable=False),
        sa.Column("bank_part_fen", sa.BigInteger(), nullable=False),
        sa.Column("recovered_on", sa.Date(), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", loanfund.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "amount_fen > 0 AND fund_part_fen + bank_part_fen = amount_fen",
            name=op.f("ck_loan_recoveries_split"),
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_recoveries_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["claim_id"],
            ["compensation_claims.id"],
            name=op.f("fk_loan_recoveries_claim_id_compensation_claims"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_loan_recoveries_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_recoveries")),
    )
    with op.batch_alter_table("loan_recoveries", schema=None) as batch_op:
        batch_op.create_index("ix_loan_recoveries_loan_id", ["loan_id"], unique=False)

    op.create_table(
        "loan_write_offs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("claim_id", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("written_off_on", sa.Date(), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", loanfund.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_write_offs_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["claim_id"],
            ["compensation_claims.id"],
            name=op.f("fk_loan_write_offs_claim_id_compensation_claims"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_loan_write_offs_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_write_offs")),
        sa.UniqueConstraint("loan_id", name=op.f("uq_loan_write_offs_loan_id")),
    )

    op.create_table(
        "loan_missed_instalments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("loan_id", sa.String(length=40), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_principal_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_interest_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("cured_on", sa.Date(), nullable=True),
        sa.Column("created_at", loanfund.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "paid_principal_fen <= principal_fen AND paid_interest_fen <= interest_fen",
            name=op.f("ck_loan_missed_instalments_paid_within"),
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_missed_instalments_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_missed_instalments")),
    )
    with op.batch_alter_table("loan_missed_instalments", schema=None) as batch_op:
        batch_op.create_index("ix_loan_missed_instalments_loan_id", ["loan_id"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tx_id", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_events_position", ["tx_id", "id"], unique=False)

    # Recoveries and write-offs are records of money: like the ledger (0001), never rewritten.
    if op.get_bind().dialect.name == "postgresql":
        for table in ("loan_recoveries", "loan_write_offs"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION refuse_change()"
            )
    else:
        for table in ("loan_recoveries", "loan_write_offs"):
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{operation} of {table} is not allowed'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("loan_recoveries", "loan_write_offs"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_position")
        batch_op.drop_column("tx_id")
    with op.batch_alter_table("loan_missed_instalments", schema=None) as batch_op:
        batch_op.drop_index("ix_loan_missed_instalments_loan_id")
    op.drop_table("loan_missed_instalments")
    op.drop_table("loan_write_offs")
    with op.batch_alter_table("loan_recoveries", schema=None) as batch_op:
        batch_op.drop_index("ix_loan_recoveries_loan_id")
    op.drop_table("loan_recoveries")
    with op.batch_alter_table("compensation_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_compensation_claims_bank_status")
        batch_op.drop_index("ix_compensation_claims_fund_status")
        batch_op.drop_index("ix_compensation_claims_loan_id")
    op.drop_table("compensation_claims")

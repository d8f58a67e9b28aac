"""Scheduled jobs: runs, per-job progress, alerts raised, capacity snapshots.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loanfund.db.types import BigIntPK, DecimalText, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(60), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(2000)),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("runner", sa.String(120), nullable=False),
        sa.CheckConstraint("outcome IN ('ok', 'failed')", name="ck_job_runs_outcome"),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_job_date", "job_runs", ["job", "business_date"])
    op.create_table(
        "job_state",
        sa.Column("job", sa.String(60), nullable=False),
        sa.Column("last_completed", sa.Date()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", name="pk_job_state"),
    )
    op.create_table(
        "job_alerts",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("raised_on", sa.Date(), nullable=False),
        sa.Column("cleared_on", sa.Date()),
        sa.Column("run_token", sa.String(40), nullable=False),
        sa.Column("fund_code", sa.String(32)),
        sa.Column("bank_code", sa.String(32)),
        sa.Column("region_code", sa.String(6)),
        sa.PrimaryKeyConstraint("kind", "subject_id", "key", name="pk_job_alerts"),
    )
    op.create_index("ix_job_alerts_run_token", "job_alerts", ["run_token"])
    op.create_table(
        "capacity_snapshots",
        sa.Column("agreement_id", sa.String(40), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("fund_code", sa.String(32), nullable=False),
        sa.Column("bank_code", sa.String(32), nullable=False),
        sa.Column("leverage_multiple", DecimalText(), nullable=False),
        sa.Column("deposit_fen", sa.BigInteger(), nullable=False),
        sa.Column("capacity_fen", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.Column("reserved_fen", sa.BigInteger(), nullable=False),
        sa.Column("headroom_fen", sa.BigInteger(), nullable=False),
        sa.Column("leverage_ratio", DecimalText()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name="fk_capacity_snapshots_agreement_id_agreements"
        ),
        sa.PrimaryKeyConstraint("agreement_id", "business_date", name="pk_capacity_snapshots"),
    )
    op.create_index(
        "ix_capacity_snapshots_pair_date", "capacity_snapshots", ["fund_code", "bank_code", "business_date"]
    )
    op.create_index("ix_journal_entries_entry_date", "journal_entries", ["entry_date"])
    op.create_index("ix_loans_status_maturity", "loans", ["status", "maturity_on"])
    op.create_index("ix_loans_status_overdue_since", "loans", ["status", "overdue_since"])


def downgrade() -> None:
    op.drop_index("ix_loans_status_overdue_since", "loans")
    op.drop_index("ix_loans_status_maturity", "loans")
    op.drop_index("ix_journal_entries_entry_date", "journal_entries")
    op.drop_table("capacity_snapshots")
    op.drop_table("job_alerts")
    op.drop_table("job_state")
    op.drop_table("job_runs")

"""Eligibility facts: graduation year and SYB business-plan approval of a borrower, the members of a
partnership application (so a partnership counts for each of them), and the other loans declared at
application (the 2018 rule).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("graduation_year", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("syb_plan_approved_on", sa.Date(), nullable=True))
    op.create_table(
        "application_partners",
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("borrower_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_partners_application_id_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["borrower_id"], ["borrowers.id"], name=op.f("fk_application_partners_borrower_id_borrowers")
        ),
        sa.PrimaryKeyConstraint("application_id", "borrower_id", name=op.f("pk_application_partners")),
    )
    op.create_index("ix_application_partners_borrower", "application_partners", ["borrower_id"])
    op.create_table(
        "application_other_loans",
        sa.Column("application_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("outstanding_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_other_loans_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("application_id", "position", name=op.f("pk_application_other_loans")),
    )
    # Partnerships filed before this revision: their members, from the JSON column.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, partner_borrower_ids FROM applications WHERE partner_borrower_ids IS NOT NULL")
    ).all()
    members = []
    for application_id, partner_ids in rows:
        ids = json.loads(partner_ids) if isinstance(partner_ids, str) else partner_ids
        members += [{"a": application_id, "b": borrower_id} for borrower_id in ids or ()]
    if members:
        conn.execute(
            sa.text("INSERT INTO application_partners (application_id, borrower_id) VALUES (:a, :b)"), members
        )


def downgrade() -> None:
    op.drop_table("application_other_loans")
    op.drop_index("ix_application_partners_borrower", table_name="application_partners")
    op.drop_table("application_partners")
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_column("syb_plan_approved_on")
        batch_op.drop_column("graduation_year")

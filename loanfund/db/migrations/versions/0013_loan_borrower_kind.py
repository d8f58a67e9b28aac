"""The borrower's kind on each loan: the subsidy rules differ for individuals and firms, and a
fund's claim lines read it for every loan (a join with borrowers cost a lookup per loan).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("borrower_kind", sa.String(12), nullable=True))
    # A borrower's kind never changes (it comes with the ID card or the USCC).
    op.execute(
        "UPDATE loans SET borrower_kind ="
        " (SELECT borrowers.kind FROM borrowers WHERE borrowers.id = loans.borrower_id)"
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.alter_column("borrower_kind", existing_type=sa.String(12), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("borrower_kind")

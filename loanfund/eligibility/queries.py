"""Reads the eligibility rules need: a borrower's programme loans and applications in progress."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import applications, loans
from loanfund.eligibility.rules import History

DEFAULTED_STATUSES = ("compensated", "written_off")


async def history(
    conn: AsyncConnection, borrower_id: str, today: date, *, exclude_application_id: str | None = None
) -> History:
    rows = (
        await conn.execute(
            sa.select(loans.c.status, sa.func.count().label("n"))
            .where(loans.c.borrower_id == borrower_id)
            .group_by(loans.c.status)
        )
    ).all()
    by_status = {row.status: int(row.n) for row in rows}
    open_query = sa.select(sa.func.count()).where(
        applications.c.borrower_id == borrower_id,
        sa.or_(
            applications.c.status == "submitted",
            sa.and_(
                applications.c.status == "guarantee_approved", applications.c.guarantee_expires_on >= today
            ),
        ),
    )
    if exclude_application_id is not None:
        open_query = open_query.where(applications.c.id != exclude_application_id)
    return History(
        previous_loans=sum(by_status.values()),
        outstanding_loans=by_status.get("active", 0),
        defaulted_loans=sum(by_status.get(status, 0) for status in DEFAULTED_STATUSES),
        open_applications=int(await conn.scalar(open_query) or 0),
    )

"""Reads the eligibility rules need: a person's programme loans and applications in progress, whether
they borrowed alone or as a member of a partnership, and the other loans declared at application."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import application_other_loans, application_partners, applications, loans
from loanfund.eligibility.rules import History, OtherLoanFacts

DEFAULTED_STATUSES = ("compensated", "written_off")


def _as_partner(borrower_id: str) -> sa.Select[tuple[str]]:
    return sa.select(application_partners.c.application_id).where(
        application_partners.c.borrower_id == borrower_id
    )


async def history(conn: AsyncConnection, borrower_id: str, today: date) -> History:
    """The person's record: a partnership's loan and application count for every member."""
    rows = (
        await conn.execute(
            sa.select(loans.c.status, sa.func.count().label("n"))
            .where(
                sa.or_(
                    loans.c.borrower_id == borrower_id, loans.c.application_id.in_(_as_partner(borrower_id))
                )
            )
            .group_by(loans.c.status)
        )
    ).all()
    by_status = {row.status: int(row.n) for row in rows}
    open_query = sa.select(sa.func.count()).where(
        sa.or_(applications.c.borrower_id == borrower_id, applications.c.id.in_(_as_partner(borrower_id))),
        sa.or_(
            applications.c.status == "submitted",
            sa.and_(
                applications.c.status == "guarantee_approved", applications.c.guarantee_expires_on >= today
            ),
        ),
    )
    return History(
        previous_loans=sum(by_status.values()),
        outstanding_loans=by_status.get("active", 0),
        defaulted_loans=sum(by_status.get(status, 0) for status in DEFAULTED_STATUSES),
        open_applications=int(await conn.scalar(open_query) or 0),
    )


async def other_loans(
    conn: AsyncConnection, application_ids: list[str]
) -> dict[str, tuple[OtherLoanFacts, ...]]:
    """The other loans declared with each application, in one statement for a page of them."""
    found: dict[str, list[OtherLoanFacts]] = {application_id: [] for application_id in application_ids}
    if application_ids:
        rows = await conn.execute(
            sa.select(application_other_loans)
            .where(application_other_loans.c.application_id.in_(application_ids))
            .order_by(application_other_loans.c.application_id, application_other_loans.c.position)
        )
        for row in rows:
            found[row.application_id].append(OtherLoanFacts(row.holder, row.kind, row.outstanding_fen))
    return {application_id: tuple(loans) for application_id, loans in found.items()}

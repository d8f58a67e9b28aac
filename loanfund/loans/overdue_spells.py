"""The overdue spells of a loan, kept after they are cured (subsidy claims exclude their days).

`loans.overdue_since` holds only the open spell and is cleared when the arrears are cured; these rows
keep each spell with its cure date. Written beside the loan update, in the same transaction.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from loanfund.db.tables import loan_overdue_spells

__all__ = ["cure", "open_or_move"]


async def open_or_move(
    conn: AsyncConnection, loan_id: str, *, previous_since: date | None, since: date
) -> None:
    """A missed instalment reported: open a spell, or move the open one's start back to `since` (a
    report of an older instalment; a spell never starts later, whichever instalments are paid)."""
    if previous_since is None:
        # A spell cured earlier that began the same day is open again (the later report covers it).
        reopened = await conn.execute(
            loan_overdue_spells.update()
            .where(loan_overdue_spells.c.loan_id == loan_id, loan_overdue_spells.c.overdue_since == since)
            .values(cured_on=None)
        )
        if reopened.rowcount == 0:
            await conn.execute(loan_overdue_spells.insert().values(loan_id=loan_id, overdue_since=since))
    else:
        await conn.execute(
            loan_overdue_spells.update()
            .where(
                loan_overdue_spells.c.loan_id == loan_id,
                loan_overdue_spells.c.cured_on.is_(None),
                loan_overdue_spells.c.overdue_since > since,
            )
            .values(overdue_since=since)
        )


async def cure(conn: AsyncConnection, loan_id: str, *, cured_on: date) -> None:
    """The loan's arrears were all paid on `cured_on`: its open spell ends (subsidised again from that
    day), whatever instalments were paid before and so moved the loan's `overdue_since`. Paid on or
    before its first overdue day, the spell had no overdue day: it goes."""
    open_spell = (loan_overdue_spells.c.loan_id == loan_id, loan_overdue_spells.c.cured_on.is_(None))
    await conn.execute(
        loan_overdue_spells.delete().where(*open_spell, loan_overdue_spells.c.overdue_since >= cured_on)
    )
    await conn.execute(
        loan_overdue_spells.update()
        .where(*open_spell, loan_overdue_spells.c.overdue_since < cured_on)
        .values(cured_on=cured_on)
    )

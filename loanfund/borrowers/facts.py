"""Facts about a person that eligibility reads and that often arrive after registration: the SYB
training and the approval of its business plan, the graduation year (migration 0010).

Kept apart from registration: a fact recorded later is an update of the record, audited with what
it was before, and judged on each application's own date (a plan approved after the application
date does not waive that application's counter-guarantee).
"""

from __future__ import annotations

from datetime import date

from loanfund.borrowers import queries
from loanfund.borrowers.service import check_eligibility_facts
from loanfund.db.tables import borrowers
from loanfund.errors import invalid
from loanfund.uow import Tx


async def record_facts(
    tx: Tx,
    borrower_id: str,
    *,
    syb_trained: bool | None = None,
    syb_plan_approved_on: date | None = None,
    graduation_year: int | None = None,
) -> queries.Borrower:
    """Set the facts given (None: leave as is); refuses a firm and facts that cannot be true."""
    conn, today = tx.conn, tx.today
    borrower = await queries.get_borrower(conn, borrower_id)
    if borrower.kind != "individual" or borrower.birth_date is None:
        raise invalid("borrower_id", "eligibility facts are recorded for individuals only")
    changes: dict[str, object] = {}
    if syb_trained is not None:
        changes["syb_trained"] = syb_trained
    if syb_plan_approved_on is not None:
        changes["syb_plan_approved_on"] = syb_plan_approved_on
    if graduation_year is not None:
        changes["graduation_year"] = graduation_year
    if not changes:
        raise invalid("body", "give at least one of syb_trained, syb_plan_approved_on, graduation_year")
    check_eligibility_facts(borrower.birth_date, graduation_year, syb_plan_approved_on, today)
    await conn.execute(borrowers.update().where(borrowers.c.id == borrower_id).values(**changes))
    before = {name: getattr(borrower, name) for name in changes}
    tx.audit(
        "borrower.facts_recorded",
        "borrower",
        borrower_id,
        {name: {"from": _json(before[name]), "to": _json(value)} for name, value in changes.items()},
        region_code=borrower.region_code,
    )
    return await queries.get_borrower(conn, borrower_id)


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value

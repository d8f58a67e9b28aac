"""Re-employment certificates (再就业优惠证) whose annual inspection (年检) lapsed.

Borrowers need a certificate inspected for the year (domain.md section 3). From 1 January, a borrower
with an active loan whose latest re-employment certificate inspection is for an earlier year is flagged
once for that year: event `certificate_inspection_lapsed` and an audit record for the borrower's
region. Set-based: the certificates are read from the borrowers' JSON by the database.
"""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa

from loanfund.db.tables import borrowers, job_alerts, loans
from loanfund.jobs import alerts
from loanfund.jobs.framework import Summary
from loanfund.uow import Tx

# The year of the latest inspection of the borrower's re-employment certificates (0 if never), or NULL
# when the borrower holds none; per dialect, as each reads JSON arrays.
_LAST_INSPECTED = {
    "postgresql": (
        "(SELECT CASE WHEN count(*) = 0 THEN NULL"
        " ELSE coalesce(max((c.value ->> 'inspected_year')::int), 0) END"
        " FROM json_array_elements(borrowers.certificates) AS c(value)"
        " WHERE c.value ->> 'kind' = 'reemployment')"
    ),
    "sqlite": (
        "(SELECT CASE WHEN count(*) = 0 THEN NULL"
        " ELSE coalesce(max(CAST(json_extract(c.value, '$.inspected_year') AS INTEGER)), 0) END"
        " FROM json_each(borrowers.certificates) AS c"
        " WHERE json_extract(c.value, '$.kind') = 'reemployment')"
    ),
}


async def certificate_inspections(tx: Tx, business_date: date) -> Summary:
    year = business_date.year
    token = uuid.uuid4().hex
    last_inspected = sa.literal_column(_LAST_INSPECTED[tx.dialect], sa.Integer())
    has_active_loan = sa.exists(
        sa.select(loans.c.id).where(loans.c.borrower_id == borrowers.c.id, loans.c.status == "active")
    )
    found = sa.select(
        borrowers.c.id.label("subject_id"),
        sa.literal(str(year), sa.String()).label("key"),
        sa.null().label("fund_code"),
        sa.null().label("bank_code"),
        borrowers.c.region_code.label("region_code"),
    ).where(has_active_loan, last_inspected < year)
    flagged = await alerts.raise_new(tx, "certificate_inspection", found, on=business_date, token=token)
    await alerts.publish(
        tx,
        source=job_alerts.join(borrowers, borrowers.c.id == job_alerts.c.subject_id),
        where=sa.and_(job_alerts.c.kind == "certificate_inspection", job_alerts.c.run_token == token),
        event_type="certificate_inspection_lapsed",
        action="borrower.certificate_inspection_lapsed",
        entity_type="borrower",
        entity_id=borrowers.c.id,
        data={
            "borrower_id": borrowers.c.id,
            "inspection_year": job_alerts.c.key,
            "as_of": business_date.isoformat(),
        },
    )
    return {"flagged": flagged}

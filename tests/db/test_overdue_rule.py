"""One rule for "overdue" in SQL (`loans.queries.overdue_on`: the loan list's filter, the daily job,
the reports) and in Python (`days_past_due`, which every loan read derives): they agree on every
combination of stored status, reported missed instalment and maturity around the day asked, on
SQLite and PostgreSQL, and the rule can be negated (the list's `active`)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.db.tables import applications, banks, borrowers, funds, loans
from loanfund.loans.queries import days_past_due, overdue_on

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2025, 6, 15)
AROUND = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]


async def test_sql_and_python_agree_on_overdue(engine: AsyncEngine) -> None:
    cases = list(itertools.product(["active", "repaid"], [None, *AROUND], AROUND))
    async with engine.begin() as conn:
        await conn.execute(
            funds.insert(),
            {"code": "F", "name": "F", "region_code": "230100", "currency": "CNY", "created_at": NOW},
        )
        await conn.execute(banks.insert(), {"code": "B", "name": "B", "created_at": NOW})
        await conn.execute(
            borrowers.insert(),
            {
                "id": "b",
                "kind": "individual",
                "id_number": "1",
                "name": "X",
                "categories": [],
                "certificates": [],
                "region_code": "230100",
                "created_at": NOW,
            },
        )
        for n, (status, since, maturity) in enumerate(cases):
            await conn.execute(
                applications.insert(),
                {
                    "id": f"a{n}",
                    "fund_code": "F",
                    "bank_code": "B",
                    "borrower_id": "b",
                    "region_code": "230100",
                    "amount_fen": 1,
                    "term_months": 12,
                    "purpose": "p",
                    "micro_profit": False,
                    "guarantee_kind": "collateral",
                    "joint_borrower_ids": [],
                    "jobs_created": 0,
                    "applied_on": date(2024, 1, 1),
                    "policy_edition": "cn-2016",
                    "eligibility": {},
                    "status": "disbursed",
                    "submitted_at": NOW,
                },
            )
            await conn.execute(
                loans.insert(),
                {
                    "id": f"l{n}",
                    "application_id": f"a{n}",
                    "fund_code": "F",
                    "bank_code": "B",
                    "borrower_id": "b",
                    "borrower_kind": "individual",
                    "region_code": "230100",
                    "guarantee_id": f"g{n}",
                    "loan_number": f"N{n}",
                    "principal_fen": 1,
                    "outstanding_fen": 1 if status == "active" else 0,
                    "annual_rate_pct": Decimal(5),
                    "disbursed_on": date(2024, 1, 1),
                    "contracted_on": date(2024, 1, 1),
                    "maturity_on": maturity,
                    "original_maturity_on": maturity,
                    "term_months": 12,
                    "reference_rate_kind": "LPR1Y",
                    "reference_rate_pct": Decimal("3.45"),
                    "reference_rate_date": date(2024, 1, 1),
                    "rate_ceiling_pct": Decimal(9),
                    "policy_edition": "cn-2016",
                    "status": status,
                    "overdue_since": since,
                    "created_at": NOW,
                },
            )
        overdue = set((await conn.scalars(sa.select(loans.c.id).where(overdue_on(DAY)))).all())
        not_overdue = set((await conn.scalars(sa.select(loans.c.id).where(sa.not_(overdue_on(DAY))))).all())
    expected = {
        f"l{n}"
        for n, (status, since, maturity) in enumerate(cases)
        if days_past_due(status, since, maturity, DAY)
    }
    assert overdue == expected
    assert 0 < len(expected) < len(cases)
    assert not_overdue == {f"l{n}" for n in range(len(cases))} - expected

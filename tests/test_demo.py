"""`loanfund demo`: a province that shows every capability, on SQLite and PostgreSQL.

One run per database (it takes a few seconds): the checks read the result through the library and,
with the tokens the demo prints, through the API.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.agreements.capacity import agreement_status, capacity_from_ledger, pair_capacity
from loanfund.agreements.queries import list_agreements
from loanfund.applications.queries import list_applications
from loanfund.db.tables import borrowers, events, guarantors, loan_repayments
from loanfund.demo import fill_demo, organisation_code_check, resident_id_check, uscc_check
from loanfund.errors import InvalidState
from loanfund.identity import parse_resident_id, parse_uscc
from loanfund.ledger.queries import trial_balance
from loanfund.loans.delinquency import BUCKETS, bucket_of
from loanfund.loans.queries import list_loans
from tests.support import TODAY, Api, World

FUNDS = ("HRB", "QQHR", "MDJ")


def test_check_characters() -> None:
    # GB 11643 (the standard's own example) and GB 32100 / GB 11714 on published codes.
    assert resident_id_check("11010519491231002") == "X"
    assert resident_id_check("44052418800101001") == "4"
    assert uscc_check("91110000600037341") == "L"
    assert organisation_code_check("60003734") == "1"


async def test_demo_fills_a_province_and_refuses_a_second_run(world: World, engine: AsyncEngine) -> None:
    result: dict[str, Any] = await fill_demo(engine)
    today = date.fromisoformat(TODAY)
    assert os.environ["LOANFUND_BUSINESS_DATE"] == TODAY  # the replay put the pinned date back
    summary = result["summary"]
    assert summary["business_date"] == TODAY

    async with engine.connect() as conn:
        # Every fund's books balance, and the balances kept by the database equal the postings' sums.
        for fund in FUNDS:
            kept = await trial_balance(conn, fund)
            summed = await trial_balance(conn, fund, as_of=today)
            assert kept.total_debit_fen == kept.total_credit_fen > 0
            assert kept == summed

        # Two to four banks per fund; none above its multiple, one within 2% of it, one suspended.
        agreements = await list_agreements(
            conn, fund_code=None, bank_code=None, region_prefix=None, after=None, limit=100
        )
        banks_per_fund = Counter(row.fund_code for row in agreements)
        assert all(2 <= banks_per_fund[fund] <= 4 for fund in FUNDS), banks_per_fund
        near_limit, ratios = [], []
        for row in agreements:
            capacity = await pair_capacity(conn, row.fund_code, row.bank_code, today=today)
            assert 0 <= capacity.used_fen <= capacity.capacity_fen, row
            # The memo accounts rebuild the same capacity from the ledger alone.
            assert await capacity_from_ledger(conn, row.fund_code, row.bank_code, as_of=today) == capacity
            assert capacity.leverage_ratio is not None
            ratios.append(capacity.leverage_ratio / row.leverage_multiple)
            if capacity.used_fen * 100 >= capacity.capacity_fen * 98:
                near_limit.append((row.fund_code, row.bank_code))
        assert near_limit
        assert min(ratios) < Decimal("0.25")  # and one comfortably low
        suspended = [row for row in agreements if agreement_status(row, today) == "suspended"]
        reasons = Counter(
            "compensation_rate" if "compensation" in (row.suspended_reason or "") else "manager"
            for row in suspended
        )
        # One by a manager; at least one automatically, when paying compensation took it over its threshold.
        assert reasons["manager"] == 1 and reasons["compensation_rate"] >= 1, [
            row.suspended_reason for row in suspended
        ]
        automatic = await conn.scalar(
            sa.select(sa.func.count()).select_from(events).where(events.c.type == "agreement_suspended")
        )
        assert automatic >= reasons["compensation_rate"]

        # Applications and loans in every status there is.
        apps = await list_applications(conn, today, limit=10_000)
        app_statuses = Counter(app.status for app in apps)
        expected = {"submitted", "guarantee_approved", "disbursed", "rejected", "withdrawn", "lapsed"}
        assert expected <= set(app_statuses), app_statuses
        assert {app.guarantee_kind for app in apps} == {"credit", "guarantor", "collateral", "joint"}
        loans = await list_loans(conn, today, limit=10_000)
        loan_statuses = Counter(loan.status for loan in loans)
        assert {"active", "overdue", "repaid", "compensated", "written_off"} <= set(loan_statuses), (
            loan_statuses
        )
        # Loans in every delinquency bucket.
        assert {
            bucket_of(loan.days_past_due) for loan in loans if loan.status in ("active", "overdue")
        } == set(BUCKETS)
        overdue = [loan for loan in loans if loan.status == "overdue"]
        assert any(loan.maturity_on < today for loan in overdue)  # matured unpaid
        assert any(loan.overdue_since is not None and loan.maturity_on > today for loan in overdue)  # missed
        assert any(
            loan.extension_count == 1 and loan.maturity_on > loan.original_maturity_on for loan in loans
        )
        assert any(loan.reference_rate_pct < loan.annual_rate_pct <= loan.rate_ceiling_pct for loan in loans)
        assert all(loan.annual_rate_pct <= loan.rate_ceiling_pct for loan in loans)
        parts = Counter(
            (
                await conn.execute(
                    sa.select(loan_repayments.c.loan_id).where(loan_repayments.c.principal_fen > 0)
                )
            ).scalars()
        )
        assert any(parts[loan.id] >= 3 for loan in loans if loan.status == "repaid")  # in parts, then in full
        lapse_events = await conn.scalar(
            sa.select(sa.func.count()).select_from(events).where(events.c.type == "guarantee_lapsed")
        )
        assert lapse_events == app_statuses["lapsed"]  # the lapse job caught up

        # A few hundred valid borrowers across the categories, and their guarantors.
        people = (
            await conn.execute(sa.select(borrowers.c.kind, borrowers.c.id_number, borrowers.c.categories))
        ).all()
        assert len(people) >= 250
        for row in people:
            if row.kind == "individual":
                assert parse_resident_id(row.id_number, today).number == row.id_number
            else:
                assert parse_uscc(row.id_number) == row.id_number
        categories = Counter(category for row in people for category in row.categories)
        assert len(categories) >= 5, categories
        assert {"laid_off", "graduate", "veteran", "returning_migrant", "small_firm"} <= set(categories)
        assert await conn.scalar(sa.select(sa.func.count()).select_from(guarantors)) >= 30
    assert summary["applications"] == dict(sorted(app_statuses.items()))
    # The back office's last day: subsidy claims paid, approved (one fund short of budget) and pending;
    # compensation paid, rejected and pending; a partial recovery and a write-off.
    office = summary["back_office"]
    assert (
        office["subsidy_claims_paid"] >= 1
        and office["subsidy_payment_refused:insufficient_subsidy_budget"] >= 1
    )
    assert office["subsidy_claims_filed"] > office["subsidy_claims_approved"] > office["subsidy_claims_paid"]
    assert office["compensation_claims_paid"] >= 2 and office["compensation_claims_rejected"] == 1
    assert office["compensation_claims_filed"] > office["compensation_claims_paid"] + 1  # one still pending
    assert office["recoveries"] == 1 and office["write_offs"] == 1
    assert summary["borrowers"]["individual"] + summary["borrowers"]["enterprise"] == len(people)

    # The printed tokens work: the fund manager sees the near-limit bank, the auditor the audit log.
    manager = Api(world.http, result["fund_manager"]["token"], "fund_manager")
    fund, bank = near_limit[0]
    leverage = (await manager.get(f"/funds/{fund}/leverage")).json()
    item = next(item for item in leverage["items"] if item["bank_code"] == bank)
    assert Decimal(item["capacity"]["leverage_ratio"]) >= Decimal(item["leverage_multiple"]) * Decimal("0.98")
    auditor = Api(world.http, result["auditor"]["token"], "auditor")
    audit = await auditor.get("/audit", {"entity": f"loan:{loans[0].id}"})
    assert audit.status_code == 200 and audit.json()["items"][0]["action"] == "loan.disbursed"
    window = Api(world.http, result["window"]["token"], "window")
    assert (await window.get("/applications", {"status": "lapsed", "limit": 500})).status_code == 200

    with pytest.raises(InvalidState):
        await fill_demo(engine)

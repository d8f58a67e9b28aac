"""The set-based computation (PostgreSQL) gives the same figures as the interest engine, loan by loan.

A random portfolio of 10,000 loans at one fund whose policy changes edition over time (cn-2002 …
cn-2020, with overrides: a 365-day year, an extension that earns subsidy, a taper in sevenths), with
part and full repayments, extensions, overdue spells cured and open, firms and individuals, loans
compensated by the fund (no subsidy from the compensation date on; rejected and pending claims do not
cut), and a few loans whose principal or rate is beyond the batch's bigint bounds. Every two-year
span from 2003 to 2026 (and a few claim periods) is computed both ways, so every loan is compared in
each span it lives in.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund.db.tables import (
    agreements,
    applications,
    banks,
    borrowers,
    compensation_claims,
    fund_banks,
    fund_policies,
    funds,
    loan_overdue_spells,
    loan_repayments,
    loans,
)
from loanfund.money import fraction_to_pct
from loanfund.subsidies import batch, queries
from loanfund.subsidies.interest import COMPENSATED, compute_line
from loanfund.subsidies.periods import Period, parse_period
from loanfund.terms import add_months

pytestmark = pytest.mark.postgres_only

LOANS = 10_000
NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICIES = [
    (date(2000, 1, 1), "cn-2002", {}),
    (date(2008, 1, 1), "cn-2008", {}),
    (date(2016, 1, 1), "cn-2016", {"day_count_basis": 365}),
    (
        date(2018, 11, 16),
        "cn-2018",
        {"subsidy_individual": {"kind": "schedule", "by_loan_year": ["1", "5/7", "2/7"]}},
    ),
    (date(2020, 6, 1), "cn-2020", {"rate_tier_default": 3, "extension_subsidised": True}),
]
RATES = ["3.85", "4.35", "4.785", "5.31", "5.4", "6.15", "3.8525"]
REFERENCES = ["3.45", "3.65", "3.85", "4.35", "5.31", "5.4"]


def portfolio(seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {
        "borrowers": [],
        "applications": [],
        "loans": [],
        "repayments": [],
        "spells": [],
        "claims": [],
    }
    for b in range(200):
        rows["borrowers"].append(
            {
                "id": f"b{b:04d}",
                "kind": "individual" if b % 4 else "enterprise",
                "id_number": f"ID{b:016d}",
                "name": f"B{b}",
                "categories": [],
                "certificates": [],
                "region_code": "230100",
                "created_at": NOW,
            }
        )
    for n in range(LOANS):
        loan_id = f"loan{n:06d}"
        borrower = rows["borrowers"][rng.randrange(200)]
        disbursed = date(2003, 1, 1) + timedelta(days=rng.randrange(8200))
        contracted = disbursed - timedelta(days=rng.choice([0, 0, 0, 3, 40]))
        term = rng.choice([6, 12, 12, 24, 24, 36])
        original = add_months(disbursed, term)
        maturity = add_months(original, rng.choice([3, 6, 12])) if rng.random() < 0.15 else original
        principal = rng.randrange(1_000_000, 300_000_000)
        outstanding, repaid_on = principal, None
        mine: list[dict[str, Any]] = []
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            paid_on = disbursed + timedelta(days=rng.randrange(1, (maturity - disbursed).days + 200))
            if repaid_on is not None or outstanding == 0:
                break
            amount = outstanding if rng.random() < 0.25 else rng.randrange(1, outstanding + 1)
            outstanding -= amount
            mine.append(
                {
                    "id": f"r{n}_{len(mine)}",
                    "loan_id": loan_id,
                    "principal_fen": amount,
                    "interest_fen": 0,
                    "paid_on": paid_on,
                    "outstanding_after_fen": outstanding,
                    "created_at": NOW,
                }
            )
            if outstanding == 0:
                repaid_on = paid_on
        # Repayments are recorded in date order: keep the stored outstanding consistent with them.
        if outstanding and rng.random() < 0.7:  # most loans are repaid in full around maturity
            paid_on = max([maturity + timedelta(days=rng.randrange(-30, 60)), *[r["paid_on"] for r in mine]])
            mine.append(
                {
                    **(mine[-1] if mine else {}),
                    "id": f"r{n}_{len(mine)}",
                    "loan_id": loan_id,
                    "principal_fen": outstanding,
                    "interest_fen": 0,
                    "paid_on": paid_on,
                    "created_at": NOW,
                }
            )
            outstanding = 0
        mine.sort(key=lambda r: r["paid_on"])
        rows["repayments"] += mine
        left = principal
        for r in mine:
            left -= r["principal_fen"]
            r["outstanding_after_fen"] = left
        repaid_on = mine[-1]["paid_on"] if mine and left == 0 else None
        starts = sorted(
            {disbursed + timedelta(days=rng.randrange(20, 900)) for _ in range(rng.choice([0, 0, 0, 1, 2]))}
        )
        for i, since in enumerate(starts):
            cured = (
                since + timedelta(days=rng.randrange(1, 200))
                if i < len(starts) - 1 or rng.random() < 0.6
                else None
            )
            rows["spells"].append({"loan_id": loan_id, "overdue_since": since, "cured_on": cured})
        rows["applications"].append(
            {
                "id": f"a{n:06d}",
                "fund_code": "PORT",
                "bank_code": "B1" if n % 3 else "B2",
                "borrower_id": borrower["id"],
                "region_code": "230100",
                "amount_fen": principal,
                "term_months": term,
                "purpose": "shop",
                "micro_profit": rng.random() < 0.5,
                "guarantee_kind": "collateral",
                "joint_borrower_ids": [],
                "jobs_created": 1,
                "applied_on": contracted,
                "policy_edition": "x",
                "eligibility": {},
                "status": "disbursed",
                "submitted_at": NOW,
            }
        )
        rows["loans"].append(
            {
                "id": loan_id,
                "application_id": f"a{n:06d}",
                "fund_code": "PORT",
                "bank_code": "B1" if n % 3 else "B2",
                "borrower_id": borrower["id"],
                "borrower_kind": borrower["kind"],
                "region_code": "230100",
                "guarantee_id": f"g{n}",
                "loan_number": f"L{n:06d}",
                "principal_fen": principal,
                "outstanding_fen": left,
                "annual_rate_pct": Decimal(rng.choice(RATES)),
                "disbursed_on": disbursed,
                "contracted_on": contracted,
                "maturity_on": maturity,
                "original_maturity_on": original,
                "term_months": term,
                "reference_rate_kind": "PBOC1Y",
                "reference_rate_pct": Decimal(rng.choice(REFERENCES)),
                "reference_rate_date": contracted,
                "rate_ceiling_pct": Decimal("9"),
                "policy_edition": "x",
                "status": "repaid" if repaid_on else "active",
                "repaid_on": repaid_on,
                "created_at": NOW,
            }
        )
    compensate(rows, random.Random(seed + 1))
    enlarge(rows)
    return rows


def compensate(rows: dict[str, list[dict[str, Any]]], rng: random.Random) -> None:
    """Compensation claims: paid (the fund compensated the bank on `decided_on`), rejected, pending.
    A separate generator, so that the loans themselves are those of the portfolio without claims."""
    for n, loan in enumerate(rows["loans"]):
        draw = rng.random()
        if draw >= 0.14:
            continue
        status = "paid" if draw < 0.1 else "rejected" if draw < 0.125 else "submitted"
        claimed = loan["disbursed_on"] + timedelta(days=rng.randrange(30, 1400))
        decided = claimed + timedelta(days=rng.randrange(0, 60)) if status != "submitted" else None
        rows["claims"].append(
            {
                "id": f"c{n:06d}",
                "loan_id": loan["id"],
                "open_loan_id": None if status == "rejected" else loan["id"],
                "fund_code": "PORT",
                "bank_code": loan["bank_code"],
                "region_code": "230100",
                "agreement_id": f"ag-{loan['bank_code']}",
                "claimed_on": claimed,
                "days_past_due": 90,
                "claim_after_days": 90,
                "base_principal_fen": loan["outstanding_fen"],
                "base_interest_fen": 0,
                "fund_loss_share_pct": Decimal(70),
                "amount_fen": 0,
                "status": status,
                "filed_at": NOW,
                "decided_at": NOW if decided else None,
                "decided_on": decided,
            }
        )


def enlarge(rows: dict[str, list[dict[str, Any]]]) -> None:
    """A few loans beyond the bounds under which the batch computes in bigint: principals of
    billions of yuan, and a rate of 36.5 %. They take its numeric formulas."""
    loans_by_id = {loan["id"]: loan for loan in rows["loans"]}
    big = {loan["id"] for n, loan in enumerate(rows["loans"]) if n % 499 == 0}
    for loan_id in big:
        loan = loans_by_id[loan_id]
        loan["principal_fen"] *= 10_000
        loan["outstanding_fen"] *= 10_000
    for application in rows["applications"]:
        if f"loan{application['id'][1:]}" in big:
            application["amount_fen"] *= 10_000
    for repayment in rows["repayments"]:
        if repayment["loan_id"] in big:
            repayment["principal_fen"] *= 10_000
            repayment["outstanding_after_fen"] *= 10_000
    for n, loan in enumerate(rows["loans"]):
        if n % 613 == 1:
            loan["annual_rate_pct"] = Decimal("36.5")


async def load(engine: AsyncEngine, rows: dict[str, list[dict[str, Any]]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            funds.insert(),
            [{"code": "PORT", "name": "P", "region_code": "230100", "currency": "CNY", "created_at": NOW}],
        )
        await conn.execute(
            fund_policies.insert(),
            [
                {
                    "id": f"p{i}",
                    "fund_code": "PORT",
                    "effective_from": d,
                    "edition": e,
                    "overrides": o,
                    "created_at": NOW,
                }
                for i, (d, e, o) in enumerate(POLICIES)
            ],
        )
        await conn.execute(banks.insert(), [{"code": c, "name": c, "created_at": NOW} for c in ("B1", "B2")])
        await conn.execute(
            fund_banks.insert(),
            [{"fund_code": "PORT", "bank_code": c, "created_at": NOW} for c in ("B1", "B2")],
        )
        await conn.execute(
            agreements.insert(),
            [
                {
                    "id": f"ag-{c}",
                    "fund_code": "PORT",
                    "bank_code": c,
                    "leverage_multiple": Decimal(5),
                    "fund_loss_share_pct": Decimal(70),
                    "claim_after_days": 90,
                    "claim_covers_interest": False,
                    "effective_from": date(2000, 1, 1),
                    "created_at": NOW,
                }
                for c in ("B1", "B2")
            ],
        )
        await conn.execute(borrowers.insert(), rows["borrowers"])
        await conn.execute(applications.insert(), rows["applications"])
        await conn.execute(loans.insert(), rows["loans"])
        await conn.execute(loan_repayments.insert(), rows["repayments"])
        await conn.execute(loan_overdue_spells.insert(), rows["spells"])
        await conn.execute(compensation_claims.insert(), rows["claims"])
    async with engine.connect() as conn:
        # As autovacuum would after a bulk load: the planner needs row counts.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("ANALYZE"))


def figures(line: Any) -> tuple[Any, ...]:
    return (
        line.opening_principal_fen,
        line.closing_principal_fen,
        line.disbursed_fen,
        line.repaid_fen,
        line.days,
        line.excluded_days,
        line.interest_fen,
        line.subsidy_fen,
    )


async def test_batch_equals_engine_on_a_random_portfolio(engine: AsyncEngine) -> None:
    await load(engine, portfolio(seed=20261202))
    # Two-year spans (not a claim period, but the engine and the batch take any span of dates) cover
    # every loan; a quarter, a half and months cover the shorter periods and a 29 February.
    periods = [Period(date(y, 1, 1), date(y + 2, 1, 1), "years", str(y)) for y in range(2003, 2026, 2)]
    # Claim periods (twelve months or less) take the closed-form path for loans without changes.
    claim_periods = ("2004Q2", "2006Q3", "2009Q4", "2012Q1", "2015Q2", "2017Q3", "2020Q4", "2021Q1")
    periods += [parse_period(p) for p in (*claim_periods, "2016H1", "2010H2", "2019-02", "2024-02")]
    # Twelve months or less across a new year: the closed form, with anniversaries found the long way.
    periods += [
        Period(date(2016, 7, 1), date(2017, 7, 1), "months", "2016-07/12"),
        Period(date(2019, 11, 1), date(2020, 3, 1), "months", "2019-11/4"),
    ]
    compared: set[str] = set()
    excluded = nonzero = compensated = 0
    async with engine.connect() as conn:
        for period in periods:
            facts = await queries.loan_facts(conn, "PORT", period)
            engine_lines = {f.loan_id: compute_line(f, period) for f in facts}
            engine_lines = {k: v for k, v in engine_lines.items() if v.days > 0}
            batch_lines = {b.loan_id: b for b in await batch.compute_fund_lines(conn, "PORT", period)}
            assert set(batch_lines) == set(engine_lines), period
            for loan_id, line in engine_lines.items():
                got = batch_lines[loan_id]
                assert figures(got) == figures(line), (period, loan_id)
                assert got.subsidy_rate_pct == fraction_to_pct(line.subsidy_rate_pct), (period, loan_id)
                excluded += bool(line.excluded_days)
                nonzero += bool(line.subsidy_fen)
                compensated += any(e.reason == COMPENSATED for e in line.exclusions)
            compared |= set(engine_lines)
        # One bank only, and single loans read one by one, agree too.
        period = parse_period("2010H2")
        by_bank = {b.loan_id: b for b in await batch.compute_fund_lines(conn, "PORT", period, bank_code="B2")}
        everyone = {b.loan_id: b for b in await batch.compute_fund_lines(conn, "PORT", period)}
        assert by_bank and all(everyone[k] == v for k, v in by_bank.items())
        assert len(by_bank) < len(everyone)
        for loan_id in sorted(everyone)[:25]:
            [single] = await queries.loan_facts(conn, "PORT", period, loan_ids=[loan_id])
            assert figures(compute_line(single, period)) == figures(everyone[loan_id])
    assert len(compared) >= 10_000
    assert excluded > 1000 and nonzero > 5000  # the portfolio exercises exclusions and every rule pays
    assert compensated > 500  # and the compensation cut

"""The arithmetic of claims: contractual interest on the principal outstanding day by day, shares."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from loanfund.claims import rules

START = date(2026, 7, 1)


def test_example_6_interest_and_amount() -> None:
    interest = rules.accrued_interest_fen(
        principal_fen=6_000_000,
        principal_repaid=[],
        annual_rate_pct=Decimal(6),
        start=START,
        end=date(2026, 10, 29),
        day_basis=360,
    )
    assert interest == 120_000  # 60,000.00 × 6% × 120 / 360
    assert rules.claim_amount_fen(6_000_000 + interest, Decimal(80)) == 4_896_000
    assert rules.recovery_split(1_000_000, Decimal(80)) == (800_000, 200_000)


def test_a_repayment_stops_interest_on_its_own_day() -> None:
    # 60 days on 60,000.00, then 60 days on 50,000.00: 600.00 + 500.00.
    interest = rules.accrued_interest_fen(
        principal_fen=6_000_000,
        principal_repaid=[(START + timedelta(days=60), 1_000_000), (date(2026, 11, 1), 5_000_000)],
        annual_rate_pct=Decimal(6),
        start=START,
        end=START + timedelta(days=120),
        day_basis=360,
    )
    assert interest == 110_000
    assert (
        rules.accrued_interest_fen(
            principal_fen=100,
            principal_repaid=[],
            annual_rate_pct=Decimal(6),
            start=START,
            end=START,
            day_basis=360,
        )
        == 0
    )


@given(
    principal=st.integers(min_value=1, max_value=10**9),
    days=st.integers(min_value=0, max_value=2000),
    rate=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("24"), places=2),
    basis=st.sampled_from([360, 365]),
)
def test_without_repayments_it_is_one_line_rounded_once(
    principal: int, days: int, rate: Decimal, basis: int
) -> None:
    expected = (Decimal(principal) * rate / 100 * days / basis).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert rules.accrued_interest_fen(
        principal_fen=principal,
        principal_repaid=[],
        annual_rate_pct=rate,
        start=START,
        end=START + timedelta(days=days),
        day_basis=basis,
    ) == int(expected)


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    share=st.sampled_from(["80", "70", "33.3333", "100", "0.01"]),
)
def test_split_rounds_the_fund_part_and_gives_the_rest_to_the_bank(amount: int, share: str) -> None:
    fund, bank = rules.recovery_split(amount, Decimal(share))
    assert fund + bank == amount and 0 <= bank <= amount
    assert fund == int((Decimal(amount) * Decimal(share) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))

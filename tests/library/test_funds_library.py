"""The funds library refuses what the API would never send: zero, negative or non-integer fen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import ledger, uow
from loanfund.errors import ValidationFailed
from loanfund.funds import service
from tests.support import SETUP


@pytest.mark.parametrize("amount", [0, -100, 10**16, 1.5, True])
async def test_library_refuses_non_positive_amounts(engine: AsyncEngine, amount: object) -> None:
    async with uow.transaction(engine, SETUP) as tx:
        conn = tx.conn
        await service.create_fund(
            tx, code="LIB", name="Library fund", region_code="230100", policy_edition="cn-2008"
        )
    calls = [
        lambda conn: service.record_allocation(
            tx,
            fund_code="LIB",
            amount_fen=amount,
            received_on=date(2026, 1, 1),
            reference="P",
            match_ratio_pct=Decimal("100"),
            match_due_on=date(2026, 12, 31),
        ),
        lambda conn: service.record_contribution(
            tx,
            fund_code="LIB",
            source="central",
            amount_fen=amount,
            received_on=date(2026, 1, 1),
            reference="C",
        ),
        lambda conn: service.add_subsidy_budget(
            tx, fund_code="LIB", amount_fen=amount, received_on=date(2026, 1, 1), reference="S"
        ),
    ]
    for call in calls:
        async with engine.connect() as conn:
            with pytest.raises(ValidationFailed):
                await call(conn)
            await conn.rollback()
    async with engine.connect() as conn:
        assert await ledger.signed_balances(conn, "LIB") == {}

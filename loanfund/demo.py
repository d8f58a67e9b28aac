"""`loanfund demo`: a realistic demo province (黑龙江, region 23) in an empty database.

Three city funds on different policy editions, the province's allocations with local matching in
every state (met, pending, overdue), other money sources, a subsidy budget, and one client per role.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import banks, clients
from loanfund.audit import Actor
from loanfund.clock import business_date
from loanfund.db.tables import funds
from loanfund.errors import InvalidState
from loanfund.funds import service as fund_service
from loanfund.money import parse_yuan

DEMO = Actor(client_id=None, request_id="demo")

CITY_FUNDS = [
    # code, name, region, edition, overrides
    ("HRB", "哈尔滨市创业担保贷款基金", "230100", "cn-2020", {"rate_tier_default": 2}),
    ("QQHR", "齐齐哈尔市创业担保贷款基金", "230200", "cn-2016", {}),
    ("MDJ", "牡丹江市小额担保贷款基金", "231000", "cn-2008", {}),
]

BANKS = [
    ("ICBC-HLJ", "中国工商银行黑龙江省分行"),
    ("ABC-HLJ", "中国农业银行黑龙江省分行"),
    ("PSBC-HLJ", "中国邮政储蓄银行黑龙江省分行"),
    ("HRBB", "哈尔滨银行"),
]


def _yuan(text: str) -> int:
    return parse_yuan(text)


async def _money_in(conn: AsyncConnection, fund_code: str, today: date, scale: int) -> None:
    """Allocations a year and a half back; matching met, pending and overdue."""
    year_ago = today - timedelta(days=400)
    met = await fund_service.record_allocation(
        conn,
        DEMO,
        fund_code=fund_code,
        amount_fen=_yuan("5000000") * scale,
        received_on=year_ago,
        reference=f"{fund_code}-P-2025-01",
        match_ratio_pct=Decimal("100"),
        match_due_on=year_ago + timedelta(days=180),
    )
    await fund_service.record_contribution(
        conn,
        DEMO,
        fund_code=fund_code,
        source="local_match",
        amount_fen=_yuan("5000000") * scale,
        received_on=year_ago + timedelta(days=90),
        reference=f"{fund_code}-L-2025-01",
        allocation_id=met,
    )
    overdue = await fund_service.record_allocation(
        conn,
        DEMO,
        fund_code=fund_code,
        amount_fen=_yuan("3000000") * scale,
        received_on=year_ago + timedelta(days=60),
        reference=f"{fund_code}-P-2025-02",
        match_ratio_pct=Decimal("50"),
        match_due_on=today - timedelta(days=30),
    )
    await fund_service.record_contribution(
        conn,
        DEMO,
        fund_code=fund_code,
        source="local_match",
        amount_fen=_yuan("600000") * scale,
        received_on=year_ago + timedelta(days=200),
        reference=f"{fund_code}-L-2025-02",
        allocation_id=overdue,
    )
    pending = await fund_service.record_allocation(
        conn,
        DEMO,
        fund_code=fund_code,
        amount_fen=_yuan("3000000") * scale,
        received_on=today - timedelta(days=60),
        reference=f"{fund_code}-P-2026-01",
        match_ratio_pct=Decimal("100"),
        match_due_on=today + timedelta(days=120),
    )
    await fund_service.record_contribution(
        conn,
        DEMO,
        fund_code=fund_code,
        source="local_match",
        amount_fen=_yuan("1200000") * scale,
        received_on=today - timedelta(days=20),
        reference=f"{fund_code}-L-2026-01",
        allocation_id=pending,
    )
    await fund_service.record_contribution(
        conn,
        DEMO,
        fund_code=fund_code,
        source="central",
        amount_fen=_yuan("2000000") * scale,
        received_on=year_ago + timedelta(days=30),
        reference=f"{fund_code}-C-2025",
    )
    await fund_service.record_contribution(
        conn,
        DEMO,
        fund_code=fund_code,
        source="deposit_interest",
        amount_fen=_yuan("48321.57") * scale,
        received_on=today - timedelta(days=5),
        reference=f"{fund_code}-I-2026Q3",
    )
    await fund_service.add_subsidy_budget(
        conn,
        DEMO,
        fund_code=fund_code,
        amount_fen=_yuan("800000") * scale,
        received_on=today - timedelta(days=45),
        reference=f"{fund_code}-S-2026",
    )


async def fill_demo(engine: AsyncEngine) -> dict[str, object]:
    """Fill an empty database; returns the demo tokens by role. Refuses a database that has funds."""
    today = business_date()
    tokens: dict[str, object] = {}
    async with engine.begin() as conn:
        if await conn.scalar(sa.select(sa.func.count()).select_from(funds)):
            raise InvalidState("the database already has funds; `loanfund demo` fills an empty one only")
        for code, name in BANKS:
            await banks.create_bank(conn, DEMO, code=code, name=name)
        for scale, (code, name, region, edition, overrides) in enumerate(CITY_FUNDS, start=1):
            await fund_service.create_fund(
                conn,
                DEMO,
                code=code,
                name=name,
                region_code=region,
                policy_edition=edition,
                policy_overrides=overrides,
            )
            await _money_in(conn, code, today, 4 - scale)
        demo_clients: list[tuple[str, str | None, str | None, str]] = [
            ("admin", None, None, "演示管理员 demo admin"),
            ("fund_manager", "23", None, "黑龙江省基金管理 demo fund manager"),
            ("window", "2301", None, "哈尔滨一站式窗口 demo window"),
            ("bank", None, "ICBC-HLJ", "工商银行接口 demo bank"),
            ("auditor", "23", None, "审计 demo auditor"),
        ]
        for role, prefix, bank, label in demo_clients:
            client, token = await clients.add_client(
                conn, DEMO, role=role, name=label, region_prefix=prefix, bank_code=bank
            )
            tokens[role] = {"client_id": client.id, "token": token, "scope": prefix or bank or "all"}
    return tokens

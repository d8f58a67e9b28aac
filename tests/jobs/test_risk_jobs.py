"""The two jobs that watch claims: compensation rates against thresholds, and the subsidy drafts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from loanfund import uow
from loanfund.audit import Actor
from loanfund.db.tables import agreements, events
from loanfund.jobs import risk
from loanfund.subsidies import service as subsidies
from loanfund.subsidies.periods import parse_period
from tests.api.test_claims_risk import claim_paid, pair
from tests.claims_support import CLAIM_DAY, at, loan_on
from tests.support import Api, World


async def run(world: World, job: str, day: date) -> dict[str, int]:
    fn = {"compensation_rates": risk.compensation_rates, "subsidy_drafts": risk.subsidy_drafts}[job]
    async with uow.transaction(world.engine, Actor.system(job), day) as tx:
        return dict(await fn(tx, day))


async def feed(world: World, kind: str) -> list[dict[str, object]]:
    async with world.engine.connect() as conn:
        rows = await conn.execute(sa.select(events.c.data).where(events.c.type == kind).order_by(events.c.id))
        return [dict(row.data) for row in rows]


async def test_compensation_rates_suspend_and_flag_once(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="600000", compensation_suspend_pct="100")
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    bad = await loan_on(world, manager, bank, monkeypatch, seq="01", window=window)
    at(monkeypatch, CLAIM_DAY)
    paid = await claim_paid(bank, manager, bad)
    assert paid["agreement_suspended"] is False  # 81.6% is under this agreement's 100%
    # The fund lowers the threshold: the next close finds the agreement over it.
    async with world.engine.begin() as conn:
        await conn.execute(
            agreements.update()
            .where(agreements.c.id == agreement["id"])
            .values(compensation_suspend_pct=Decimal(50))
        )
    day = date.fromisoformat(CLAIM_DAY)
    first = await run(world, "compensation_rates", day)
    assert first == {"agreements": 1, "above": 1, "suspended": 1, "red_flags": 1, "cleared": 0}
    shown = (await manager.get(f"/agreements/{agreement['id']}")).json()
    assert shown["status"] == "suspended"
    suspended = await feed(world, "agreement_suspended")
    assert [event["reason"] for event in suspended] == ["compensation_rate"]
    assert suspended[0]["compensation_rate_pct"] == "81.6" and suspended[0]["threshold_pct"] == "50"
    assert [event["compensation_rate_pct"] for event in await feed(world, "compensation_red_flag")] == [
        "81.6"
    ]
    # Run again for the same date: nothing more is raised or changed.
    again = await run(world, "compensation_rates", day)
    assert again == {"agreements": 1, "above": 1, "suspended": 0, "red_flags": 0, "cleared": 0}
    assert len(await feed(world, "agreement_suspended")) == 1
    assert len(await feed(world, "compensation_rate_alert")) == 1


async def test_subsidy_drafts_at_the_quarter_end(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, "2026-07-01")
    await pair(admin, manager, deposit="600000")
    bank = await world.caller("bank", bank="ICBC")
    window = await world.caller("window", region="2301")
    await loan_on(world, manager, bank, monkeypatch, seq="01", window=window, principal="100000")
    await loan_on(world, manager, bank, monkeypatch, seq="02", window=window, principal="50000")
    at(monkeypatch, CLAIM_DAY)
    assert await run(world, "subsidy_drafts", date(2026, 8, 31)) == {"funds": 0, "drafts": 0, "skipped": 0}
    quarter_end = date(2026, 9, 30)
    assert await run(world, "subsidy_drafts", quarter_end) == {"funds": 1, "drafts": 1, "skipped": 0}
    async with uow.transaction(world.engine, Actor.system("check"), quarter_end) as tx:
        lines = await subsidies.compute_claim_lines(
            tx, fund_code="HRB", bank_code="ICBC", period=parse_period("2026Q3")
        )
    expected = sum(line.subsidy_fen for line in lines)
    assert expected > 0
    [draft] = await feed(world, "subsidy_draft")
    assert (draft["period"], draft["bank_code"], draft["lines"]) == ("2026Q3", "ICBC", 2)
    assert draft["subsidy"] == f"{expected // 100}.{expected % 100:02d}"
    # Idempotent: the same quarter end announces nothing more.
    assert await run(world, "subsidy_drafts", quarter_end) == {"funds": 1, "drafts": 0, "skipped": 0}
    assert len(await feed(world, "subsidy_draft")) == 1


async def test_an_agreement_is_suspended_for_its_rate_once(
    world: World, admin: Api, manager: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daily job reads agreements without locking them: when a payment (or a manager) suspends one
    between its read and its write, the second suspension changes nothing and announces nothing."""
    from loanfund.claims import risk as claims_risk

    at(monkeypatch, "2026-07-01")
    agreement = await pair(admin, manager, deposit="600000")
    where = {"fund_code": "HRB", "bank_code": "ICBC", "region_code": "230100"}
    async with uow.transaction(world.engine, Actor.system("test")) as tx:
        first = await claims_risk.suspend_for_rate(tx, agreement_id=agreement["id"], facts={}, **where)
        second = await claims_risk.suspend_for_rate(tx, agreement_id=agreement["id"], facts={}, **where)
    assert (first, second) == (True, False)
    assert [e["agreement_id"] for e in await feed(world, "agreement_suspended")] == [agreement["id"]]

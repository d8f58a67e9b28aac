"""Fills an empty database with the demo province and summarises what it made."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loanfund import banks, clients, uow
from loanfund.agreements import reservations
from loanfund.agreements.capacity import agreement_status, pair_capacity
from loanfund.agreements.queries import list_agreements
from loanfund.applications import queries as application_queries
from loanfund.audit import Actor
from loanfund.clock import business_date
from loanfund.db.tables import borrowers, funds, guarantors
from loanfund.demo.backoffice import close_the_books
from loanfund.demo.plan import Plan
from loanfund.demo.province import (
    BANKS,
    CITIES,
    DEMO,
    LAPSE_JOB,
)
from loanfund.demo.replay import (
    DemoFund,
    Replay,
)
from loanfund.errors import InvalidState
from loanfund.funds import service as fund_service
from loanfund.identity import is_4050
from loanfund.loans import queries as loan_queries
from loanfund.money import format_pct

# ---- the summary -----------------------------------------------------------------------------------


async def _summary(conn: AsyncConnection, today: date) -> dict[str, Any]:
    apps = await application_queries.list_applications(conn, today, limit=1_000_000)
    loans = await loan_queries.list_loans(conn, today, limit=1_000_000)
    people = (
        await conn.execute(
            sa.select(borrowers.c.kind, borrowers.c.birth_date, borrowers.c.gender, borrowers.c.categories)
        )
    ).all()
    categories: Counter[str] = Counter()
    for row in people:
        categories.update(row.categories)
    leverage = {}
    rows = await list_agreements(
        conn, fund_code=None, bank_code=None, region_prefix=None, after=None, limit=1000
    )
    for agreement in sorted(rows, key=lambda row: (row.fund_code, row.bank_code)):
        capacity = await pair_capacity(conn, agreement.fund_code, agreement.bank_code, today=today)
        status = agreement_status(agreement, today)
        leverage[f"{agreement.fund_code}/{agreement.bank_code}"] = (
            f"{capacity.leverage_ratio} of {format_pct(agreement.leverage_multiple)}"
            + ("" if status == "active" else f", {status}")
        )
    kinds = Counter(row.kind for row in people)
    return {
        "business_date": today.isoformat(),
        "borrowers": {
            "individual": kinds["individual"],
            "enterprise": kinds["enterprise"],
            "is_4050": sum(
                1 for row in people if row.birth_date and is_4050(row.birth_date, row.gender, today)
            ),
        },
        "categories": dict(sorted(categories.items())),
        "guarantors": await conn.scalar(sa.select(sa.func.count()).select_from(guarantors)),
        "applications": dict(sorted(Counter(app.status for app in apps).items())),
        "loans": {
            **dict(sorted(Counter(loan.status for loan in loans).items())),
            "extended": sum(1 for loan in loans if loan.extension_count),
        },
        "leverage": leverage,
    }


async def fill_demo(
    engine: AsyncEngine, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, object]:
    """Fill an empty database; returns the demo tokens by role (one client each; `more_clients` lists
    the other windows and banks the history was made with) and a `summary`. Refuses a database that has
    funds. `progress(done, total)` is called as the history's steps are replayed."""
    today = business_date()
    result: dict[str, object] = {}
    async with engine.begin() as conn:
        if await conn.scalar(sa.select(sa.func.count()).select_from(funds)):
            raise InvalidState("the database already has funds; `loanfund demo` fills an empty one only")
        admin, token = await clients.add_client(
            uow.begin(conn, DEMO, today), role="admin", name="演示管理员 demo admin"
        )
        result["admin"] = {"client_id": admin.id, "token": token, "scope": "all"}
        admin_tx = uow.begin(conn, Actor(client_id=admin.id, request_id="demo"), today)
        for code, name in BANKS:
            await banks.create_bank(admin_tx, code=code, name=name)
        actors: dict[str, Actor] = {}
        more: list[dict[str, str]] = []
        demo_clients: list[tuple[str, str | None, str | None, str]] = [
            ("fund_manager", "23", None, "黑龙江省基金管理 demo fund manager"),
            ("window", "2301", None, "哈尔滨一站式窗口 demo window"),
            ("bank", None, "ICBC-HLJ", "工商银行接口 demo bank"),
            ("auditor", "23", None, "审计 demo auditor"),
            ("window", "2302", None, "齐齐哈尔一站式窗口 demo window"),
            ("window", "2310", None, "牡丹江一站式窗口 demo window"),
            ("bank", None, "ABC-HLJ", "农业银行接口 demo bank"),
            ("bank", None, "PSBC-HLJ", "邮储银行接口 demo bank"),
            ("bank", None, "HRBB", "哈尔滨银行接口 demo bank"),
        ]
        for role, prefix, bank, label in demo_clients:
            client, token = await clients.add_client(
                admin_tx, role=role, name=label, region_prefix=prefix, bank_code=bank
            )
            scope = prefix or bank or "all"
            actors[role if role in ("fund_manager", "auditor") else f"{role}:{scope}"] = Actor(
                client.id, "demo"
            )
            entry = {"client_id": client.id, "token": token, "scope": scope}
            if role in result:
                more.append({"role": role, **entry})
            else:
                result[role] = entry
        result["more_clients"] = more

        await admin_tx.flush()
        replay = Replay(conn, today, actors)
        plan = Plan(replay)
        for spec in CITIES:
            await fund_service.create_fund(
                admin_tx,
                code=spec.code,
                name=spec.name,
                region_code=spec.region,
                policy_edition=spec.edition,
                policy_overrides=spec.overrides,
            )
            policy = await fund_service.fund_policy(conn, spec.code, today)
            replay.funds[spec.code] = DemoFund(spec, policy, actors[f"window:{spec.prefix}"])
        await admin_tx.flush()
        plan.plan_funds()
        plan.plan_people()
        await replay.run(progress)
        await reservations.lapse_expired(lapse_tx := uow.begin(conn, LAPSE_JOB, today))
        await lapse_tx.flush()
        back_office = await close_the_books(replay, today)
        summary = await _summary(conn, today)
        summary["back_office"] = back_office
        if replay.refused:
            summary["approvals_refused"] = dict(replay.refused)
        result["summary"] = summary
    return result

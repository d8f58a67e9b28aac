"""Random loan histories with missed instalments, repayments, compensation claims (filed, rejected,
paid), recoveries and write-offs, driven through the API and the library, checked after every step.

Properties: the trial balance balances; cash + deposited = contributed − compensation_paid + recovered;
the capacity rebuilt from the ledger alone equals the live capacity, and both equal the definition
(deposit × multiple, half-up) computed here from a model of the pair; `recoverable:{bank}` is what the
paid claims have neither recovered nor written off; every refusal is a 4xx and changes nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from api.app import create_app
from loanfund import ledger, uow
from loanfund.agreements import reservations
from loanfund.audit import Actor
from loanfund.claims import service as claims
from loanfund.config import Settings
from loanfund.db import create_engine
from loanfund.errors import LoanfundError
from loanfund.funds import service as funds
from loanfund.ledger import accounts
from tests.support import (
    World,
    application_body,
    make_agreement,
    make_allocation,
    make_deposit,
    make_fund,
    register_person,
)

START = date(2026, 1, 5)
MANAGER = Actor("property-manager", "property")
picks = st.integers(min_value=0, max_value=10**6)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=150)),
        st.tuples(st.just("miss"), picks, st.integers(min_value=0, max_value=100)),
        st.tuples(st.just("miss"), picks, st.integers(min_value=0, max_value=100)),
        st.tuples(st.just("repay"), picks, st.integers(min_value=1, max_value=100)),
        st.tuples(st.just("claim"), picks),
        st.tuples(st.just("default"), picks),
        st.tuples(st.just("default"), picks),
        st.tuples(st.just("approve"), picks),
        st.tuples(st.just("approve"), picks),
        st.tuples(st.just("reject"), picks),
        st.tuples(st.just("recover"), picks, st.integers(min_value=1, max_value=5_000_000)),
        st.tuples(st.just("write_off"), picks),
        st.tuples(st.just("deposit"), st.integers(min_value=1, max_value=20_000_000)),
        st.tuples(st.just("withdraw"), st.integers(min_value=1, max_value=20_000_000)),
    ),
    min_size=5,
    max_size=30,
)


def capacity_of(deposit_fen: int, multiple: Decimal) -> int:
    """Apart from the library on purpose: fen × multiple, half-up to a whole fen."""
    return int((Decimal(deposit_fen) * multiple).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def half_up_share(fen: int, pct: Decimal) -> int:
    return int((Decimal(fen) * pct / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Model:
    multiple: Decimal
    share: Decimal
    today: date = START
    deposit: int = 0
    outstanding: dict[str, int] = field(default_factory=dict)  # active loans
    recoverable: dict[str, int] = field(default_factory=dict)  # by loan, paid claims
    open_claims: dict[str, str] = field(default_factory=dict)  # loan → claim id (submitted)


async def run(url: str, multiple: str, share: str, principals: list[int], ops: list[Any], mp: Any) -> None:
    mp.setenv("LOANFUND_BUSINESS_DATE", START.isoformat())
    engine = create_engine(url)
    settings_ = Settings(
        database_url=url, pool_size=1, idempotency_claim_timeout_seconds=60, idempotency_retention_days=8
    )
    model = Model(Decimal(multiple), Decimal(share))
    try:
        async with AsyncTestClient(create_app(settings_)) as http:
            world = World(http, engine)
            admin = await world.caller("admin")
            manager = await world.caller("fund_manager", region="2301")
            window = await world.caller("window", region="2301")
            bank = await world.caller("bank", bank="ICBC")
            await make_fund(admin, edition="cn-2016")
            await make_allocation(manager, amount="50000000", received_on=START.isoformat())
            await admin.post("/banks", {"code": "ICBC", "name": "ICBC"})
            agreement = await make_agreement(
                manager,
                multiple=multiple,
                fund_loss_share_pct=share,
                effective_from=START.isoformat(),
                claim_after_days=30,
                compensation_suspend_pct="100",
            )
            await make_deposit(manager, agreement["id"], "1000000", on=START.isoformat())
            model.deposit = 100_000_000
            loans: list[str] = []
            for n, principal in enumerate(principals):
                person = await register_person(window, seq=f"{n + 10}")
                body = application_body(person["id"], amount=str(principal), applied_on=START.isoformat())
                app = (await window.post("/applications", body)).json()
                assert (await manager.post(f"/applications/{app['id']}/approve")).status_code == 200
                made = await bank.post(
                    "/loans",
                    {
                        "application_id": app["id"],
                        "loan_number": f"P{n}",
                        "principal": str(principal),
                        "annual_rate_pct": "5",
                        "disbursed_on": START.isoformat(),
                        "maturity_on": "2026-07-05",
                    },
                )
                assert made.status_code == 201, made.text
                loans.append(made.json()["id"])
                model.outstanding[made.json()["id"]] = principal * 100
            await check(engine, model)
            model.today += timedelta(days=45)
            mp.setenv("LOANFUND_BUSINESS_DATE", model.today.isoformat())

            for op in ops:
                kind = op[0]
                # Mostly act on loans where the step can happen, sometimes on any loan (a refusal).
                among = {
                    "approve": list(model.open_claims),
                    "reject": list(model.open_claims),
                    "recover": list(model.recoverable),
                    "write_off": list(model.recoverable),
                }.get(kind) or loans
                loan = among[op[1] % len(among)] if kind not in ("advance", "deposit", "withdraw") else ""
                day = model.today.isoformat()
                if kind == "advance":
                    model.today += timedelta(days=op[1])
                    mp.setenv("LOANFUND_BUSINESS_DATE", model.today.isoformat())
                    continue
                before = await snapshot(engine)
                try:
                    # A step whose loan has not got that far yet first takes it there (each stage is
                    # a step of its own, checked like the others).
                    if kind in ("approve", "reject", "recover", "write_off") and loan not in (
                        model.open_claims if kind in ("approve", "reject") else model.recoverable
                    ):
                        if loan not in model.open_claims:
                            await perform(
                                world, manager, bank, agreement["id"], model, "default", loan, op, day
                            )
                            await check(engine, model)
                        if kind in ("recover", "write_off"):
                            await perform(
                                world, manager, bank, agreement["id"], model, "approve", loan, op, day
                            )
                            await check(engine, model)
                        before = await snapshot(engine)
                    await perform(world, manager, bank, agreement["id"], model, kind, loan, op, day)
                except Refused as refusal:
                    event(f"{kind} refused: {refusal.args[0]}")
                    assert await snapshot(engine) == before, (kind, refusal.args)
                else:
                    event(f"{kind} done")
                await check(engine, model)
    finally:
        await engine.dispose()


class Refused(Exception):
    pass


def expect(response: Any, status: int) -> dict[str, Any]:
    if 400 <= response.status_code < 500:
        raise Refused(response.json()["code"])
    assert response.status_code == status, response.text
    return dict(response.json())


async def library(engine: Any, call: Any) -> Any:
    try:
        async with uow.transaction(engine, MANAGER) as tx:
            return await call(tx)
    except LoanfundError as refusal:
        raise Refused(refusal.code) from None


async def perform(
    world: World,
    manager: Any,
    bank: Any,
    agreement_id: str,
    model: Model,
    kind: str,
    loan: str,
    op: Any,
    day: str,
) -> None:
    if kind == "miss":
        principal = model.outstanding.get(loan, 0) * op[2] // 100
        since = max(START + timedelta(days=1), model.today - timedelta(days=40)).isoformat()
        expect(
            await bank.post(
                f"/loans/{loan}/overdue",
                {
                    "overdue_since": since,
                    "overdue_principal": yuan(principal),
                    "overdue_interest": "10",
                },
            ),
            200,
        )
    elif kind == "repay":
        principal = max(1, model.outstanding.get(loan, 0) * op[2] // 100)
        body = expect(
            await bank.post(
                f"/loans/{loan}/repayments",
                {"principal": yuan(principal), "interest": "10", "paid_on": day},
            ),
            201,
        )
        model.outstanding[loan] -= principal
        if body["status"] == "repaid":
            del model.outstanding[loan]
    elif kind == "default":  # a missed instalment 41 days ago, and the bank's claim at once
        since = (model.today - timedelta(days=40)).isoformat()
        expect(
            await bank.post(
                f"/loans/{loan}/overdue",
                {"overdue_since": since, "overdue_principal": "0", "overdue_interest": "1"},
            ),
            200,
        )
        await perform(world, manager, bank, agreement_id, model, "claim", loan, op, day)
    elif kind == "claim":
        body = expect(await bank.post("/compensation-claims", {"loan_id": loan, "claimed_on": day}), 201)
        assert body["base_principal"] == yuan(model.outstanding[loan])
        base = model.outstanding[loan] + int(body["base_interest"].replace(".", ""))
        assert body["amount"] == yuan(half_up_share(base, model.share))
        model.open_claims[loan] = body["id"]
    elif kind == "approve":
        claim_id = model.open_claims.get(loan, "clm_none")
        payment = await library(world.engine, lambda tx: claims.approve_claim(tx, claim_id))
        model.deposit -= payment.claim.amount_fen
        del model.outstanding[loan]
        del model.open_claims[loan]
        model.recoverable[loan] = payment.claim.amount_fen
    elif kind == "reject":
        claim_id = model.open_claims.get(loan, "clm_none")
        await library(world.engine, lambda tx: claims.reject_claim(tx, claim_id, reason="papers"))
        del model.open_claims[loan]
    elif kind == "recover":
        body = expect(
            await bank.post(f"/loans/{loan}/recoveries", {"amount": yuan(op[2]), "recovered_on": day}),
            201,
        )
        fund_part = half_up_share(op[2], model.share)
        assert body["fund_part"] == yuan(fund_part)
        assert body["bank_part"] == yuan(op[2] - fund_part)
        model.deposit += fund_part
        model.recoverable[loan] -= fund_part
    elif kind == "write_off":
        await library(world.engine, lambda tx: claims.write_off(tx, loan, reason="exhausted"))
        model.recoverable.pop(loan)
    elif kind == "deposit":
        expect(
            await manager.post(
                f"/agreements/{agreement_id}/deposits",
                {"amount": yuan(op[1]), "deposited_on": day, "reference": "D"},
            ),
            201,
        )
        model.deposit += op[1]
    elif kind == "withdraw":
        expect(
            await manager.post(
                f"/agreements/{agreement_id}/withdrawals",
                {"amount": yuan(op[1]), "withdrawn_on": day, "reference": "W"},
            ),
            201,
        )
        model.deposit -= op[1]


async def snapshot(engine: Any) -> dict[str, int]:
    async with engine.connect() as conn:
        return await ledger.signed_balances(conn, "HRB")


async def check(engine: Any, model: Model) -> None:
    async with engine.connect() as conn:
        tb = await ledger.trial_balance(conn, "HRB")
        assert tb.total_debit_fen == tb.total_credit_fen
        position = await funds.position(conn, "HRB")
        assert position.cash_fen + position.deposited_fen == (
            position.contributed_fen - position.compensation_paid_fen + position.recovered_fen
        )
        live = await reservations.pair_capacity(conn, "HRB", "ICBC", today=model.today)
        rebuilt = await reservations.capacity_from_ledger(conn, "HRB", "ICBC", as_of=model.today)
        assert rebuilt == live
        assert (live.deposit_fen, live.outstanding_fen, live.reserved_fen) == (
            model.deposit,
            sum(model.outstanding.values()),
            0,
        )
        assert live.capacity_fen == capacity_of(model.deposit, model.multiple)
        recoverable = await ledger.balance(conn, "HRB", accounts.recoverable("ICBC"))
        assert recoverable == sum(model.recoverable.values())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    multiple=st.sampled_from(["1", "3.3333", "5"]),
    share=st.sampled_from(["80", "70", "100", "33.3333"]),
    principals=st.lists(st.integers(min_value=1, max_value=100_000), min_size=1, max_size=4),
    ops=operations,
)
def test_default_histories_keep_the_ledger_and_capacity(
    sqlite_template: Path, multiple: str, share: str, principals: list[int], ops: list[Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        path = Path(tmp) / "defaults.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(run(f"sqlite+aiosqlite:///{path}", multiple, share, principals, ops, mp))

"""Helpers for API tests: callers with tokens, and short-hands for common setup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import banks, clients, uow
from loanfund.agreements import service as agreements_service
from loanfund.audit import Actor
from loanfund.errors import NotFound
from loanfund.funds import queries as funds_queries
from loanfund.funds import service as funds_service

TODAY = "2026-11-27"
SETUP = Actor(client_id=None, request_id="test-setup")


@dataclass
class Api:
    """A caller with one token. Banks get a fresh Idempotency-Key on every POST unless given one."""

    http: AsyncTestClient[Any]
    token: str
    role: str

    def headers(self, key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is None and self.role == "bank":
            key = uuid.uuid4().hex
        if key:
            headers["Idempotency-Key"] = key
        headers.update(extra or {})
        return headers

    async def post(
        self,
        path: str,
        json: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        if content is not None:
            return await self.http.post(
                f"/api/v1{path}",
                content=content,
                headers={"content-type": "application/json", **self.headers(key, headers)},
            )
        return await self.http.post(
            f"/api/v1{path}", json=json if json is not None else {}, headers=self.headers(key, headers)
        )

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.http.get(f"/api/v1{path}", params=params, headers=self.headers("", None))


@dataclass
class World:
    """The app under test plus a way to make callers of each role."""

    http: AsyncTestClient[Any]
    engine: AsyncEngine

    async def caller(
        self, role: str, *, region: str | None = None, bank: str | None = None, name: str | None = None
    ) -> Api:
        if role in ("fund_manager", "window", "auditor") and region is None:
            region = "2301"
        async with uow.transaction(self.engine, SETUP) as tx:
            conn = tx.conn
            if bank is not None and role == "bank":
                try:
                    await banks.get_bank(conn, bank)
                except NotFound:
                    await banks.create_bank(tx, code=bank, name=f"Bank {bank}")
            _, token = await clients.add_client(
                tx,
                role=role,
                name=name or f"{role}-{uuid.uuid4().hex[:6]}",
                region_prefix=region,
                bank_code=bank,
            )
        return Api(self.http, token, role)


async def make_fund(
    admin: Api, code: str = "HRB", region_code: str = "230100", edition: str = "cn-2008", **extra: Any
) -> dict[str, Any]:
    response = await admin.post(
        "/funds",
        {
            "code": code,
            "name": f"Fund {code}",
            "region_code": region_code,
            "policy_edition": edition,
            "currency": "CNY",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_allocation(
    manager: Api,
    fund: str = "HRB",
    amount: str = "3000000",
    received_on: str = "2026-01-10",
    ratio: str = "100",
    due: str = "2026-12-31",
    reference: str = "P-1",
) -> dict[str, Any]:
    response = await manager.post(
        f"/funds/{fund}/allocations",
        {
            "amount": amount,
            "received_on": received_on,
            "reference": reference,
            "match_ratio_pct": ratio,
            "match_due_on": due,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = dict(response.json())
    assert body["code"] == code, body
    assert body["status"] == status
    return body


# ---- partner banks and leverage (issue 3) ----------------------------------------------------------


async def make_bank(admin: Api, code: str = "ICBC") -> None:
    response = await admin.post("/banks", {"code": code, "name": f"Bank {code}"})
    assert response.status_code == 201, response.text


async def make_agreement(
    manager: Api, fund: str = "HRB", bank: str = "ICBC", multiple: str = "5", **extra: Any
) -> dict[str, Any]:
    body = {
        "bank_code": bank,
        "leverage_multiple": multiple,
        "fund_loss_share_pct": "80",
        "claim_after_days": 90,
        "claim_covers_interest": True,
        "effective_from": "2026-01-01",
        **extra,
    }
    response = await manager.post(f"/funds/{fund}/agreements", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_deposit(
    manager: Api, agreement_id: str, amount: str, on: str = "2026-02-01", reference: str = "D-1"
) -> dict[str, Any]:
    response = await manager.post(
        f"/agreements/{agreement_id}/deposits", {"amount": amount, "deposited_on": on, "reference": reference}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def library_pair(
    tx: uow.Tx,
    *,
    fund: str = "HRB",
    bank: str = "ICBC",
    region: str = "230100",
    edition: str = "cn-2008",
    cash_fen: int = 0,
    deposit_fen: int = 0,
    multiple: Decimal = Decimal(5),
    effective_from: date = date(2026, 1, 1),
    effective_to: date | None = None,
) -> str:
    """A fund with cash, a bank and an agreement with a deposit, made through the library."""
    conn = tx.conn
    if not await funds_queries.fund_exists(conn, fund):
        await funds_service.create_fund(
            tx, code=fund, name=f"Fund {fund}", region_code=region, policy_edition=edition
        )
    try:
        await banks.get_bank(conn, bank)
    except NotFound:
        await banks.create_bank(tx, code=bank, name=f"Bank {bank}")
    if cash_fen:
        await funds_service.record_contribution(
            tx,
            fund_code=fund,
            source="central",
            amount_fen=cash_fen,
            received_on=effective_from,
            reference="C-setup",
        )
    agreement_id = await agreements_service.create_agreement(
        tx,
        fund_code=fund,
        bank_code=bank,
        leverage_multiple=multiple,
        fund_loss_share_pct=Decimal(80),
        claim_after_days=90,
        claim_covers_interest=True,
        effective_from=effective_from,
        effective_to=effective_to,
    )
    if deposit_fen:
        await agreements_service.deposit(
            tx,
            agreement_id,
            amount_fen=deposit_fen,
            deposited_on=effective_from,
            reference="D-setup",
        )
    return agreement_id


# ---- borrowers, applications, loans (issue 4) ------------------------------------------------------


def resident_id(birth: str, *, female: bool, district: str = "230102", seq: str = "01") -> str:
    """A valid 18-character resident ID: district, birth date YYYYMMDD, sequence, gender digit, check."""
    from stdnum.cn import ric

    body = f"{district}{birth}{seq}{'2' if female else '1'}"
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check digit


def make_uscc(serial: str = "MA1B2C3D4") -> str:
    """A valid USCC: 91 (enterprise, industry & commerce), region 230100, 9-character org code, check."""
    from stdnum.cn import uscc

    body = f"91230100{serial}"
    return body + uscc.calc_check_digit(body)


async def register_person(
    window: Api,
    *,
    birth: str = "19800101",
    female: bool = False,
    seq: str = "01",
    categories: tuple[str, ...] = ("registered_unemployed",),
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "kind": "individual",
        "id_number": resident_id(birth, female=female, seq=seq),
        "name": f"Person {birth}{seq}",
        "categories": list(categories),
        **extra,
    }
    response = await window.post("/borrowers", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def register_guarantor(
    window: Api, *, birth: str = "19700101", seq: str = "05", employer_kind: str = "civil_service"
) -> dict[str, Any]:
    response = await window.post(
        "/guarantors",
        {
            "id_number": resident_id(birth, female=False, seq=seq),
            "name": f"Guarantor {seq}",
            "employer": "City finance bureau",
            "employer_kind": employer_kind,
            "monthly_income": "6000",
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def lending_setup(
    admin: Api,
    manager: Api,
    *,
    fund: str = "HRB",
    bank: str = "ICBC",
    edition: str = "cn-2016",
    cash: str = "3000000",
    deposit: str = "1000000",
    **fund_extra: Any,
) -> dict[str, Any]:
    """A fund with cash, a bank and an agreement (multiple 5) with a deposit; returns the agreement."""
    await make_fund(admin, code=fund, edition=edition, **fund_extra)
    await make_allocation(manager, fund=fund, amount=cash)
    made = await admin.post("/banks", {"code": bank, "name": f"Bank {bank}"})
    assert made.status_code in (201, 409), made.text  # a bank caller may have made it already
    agreement = await make_agreement(manager, fund=fund, bank=bank)
    await make_deposit(manager, agreement["id"], deposit)
    return agreement


def application_body(
    borrower_id: str,
    *,
    fund: str = "HRB",
    bank: str = "ICBC",
    amount: str = "50000",
    term_months: int = 24,
    applied_on: str = TODAY,
    guarantee: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "fund_code": fund,
        "bank_code": bank,
        "borrower_id": borrower_id,
        "amount": amount,
        "term_months": term_months,
        "purpose": "a noodle shop",
        "micro_profit": True,
        "guarantee": guarantee or {"kind": "collateral", "collateral_description": "shop equipment"},
        "jobs_created": 2,
        "applied_on": applied_on,
        **extra,
    }


async def capacity(manager: Api, agreement_id: str) -> dict[str, Any]:
    response = await manager.get(f"/agreements/{agreement_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["capacity"])

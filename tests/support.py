"""Helpers for API tests: callers with tokens, and short-hands for common setup."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from loanfund import banks, clients
from loanfund.audit import Actor
from loanfund.errors import NotFound

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
        async with self.engine.begin() as conn:
            if bank is not None and role == "bank":
                try:
                    await banks.get_bank(conn, bank)
                except NotFound:
                    await banks.create_bank(conn, SETUP, code=bank, name=f"Bank {bank}")
            _, token = await clients.add_client(
                conn,
                SETUP,
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

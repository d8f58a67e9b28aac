"""Service endpoints that are not about one fund: banks, clients, reference rates, audit, health."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import ALL_ROLES, authorize
from api.body import decode_body, with_body
from api.context import RequestContext
from api.pagination import check_limit, decode_cursor, page
from api.types import Code, Pct, Text
from loanfund import audit, banks, clients
from loanfund.errors import invalid
from loanfund.money import format_pct, parse_pct
from loanfund.rates import KINDS
from loanfund.rates import store as rate_store

Ctx = NamedDependency[RequestContext]


class CreateBank(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    name: Text


class BankOut(msgspec.Struct):
    code: str
    name: str
    created_at: datetime


class BankPage(msgspec.Struct):
    items: list[BankOut]
    next_cursor: str | None


class CreateClient(msgspec.Struct, forbid_unknown_fields=True):
    role: Code
    name: Text
    region_prefix: Code | None = None
    bank_code: Code | None = None


class ClientOut(msgspec.Struct):
    id: str
    name: str
    role: str
    region_prefix: str | None
    bank_code: str | None
    created_at: datetime
    revoked_at: datetime | None


class NewClientOut(msgspec.Struct):
    client_id: str
    token: str
    client: ClientOut


class ClientPage(msgspec.Struct):
    items: list[ClientOut]
    next_cursor: str | None


class AddFixing(msgspec.Struct, forbid_unknown_fields=True):
    kind: Code
    effective_on: date
    rate_pct: Pct


class FixingOut(msgspec.Struct):
    kind: str
    effective_on: date
    rate_pct: str


class RateSeries(msgspec.Struct):
    kind: str
    known_through: date | None
    stale: bool
    fixings: list[FixingOut]


class RatesOut(msgspec.Struct):
    items: list[RateSeries]


class AuditRecord(msgspec.Struct):
    id: str
    occurred_at: datetime
    client_id: str | None
    request_id: str | None
    action: str
    entity: str
    entity_type: str
    entity_id: str
    region_code: str | None
    changes: dict[str, Any]


class AuditPage(msgspec.Struct):
    items: list[AuditRecord]
    next_cursor: str | None


@post("/banks", operation_class=with_body(CreateBank), status_code=201)
async def create_bank(ctx: Ctx, request: Request[Any, Any, Any]) -> BankOut:
    authorize(ctx, ("admin",))
    body = await decode_body(request, CreateBank)
    await banks.create_bank(ctx.tx, code=body.code, name=body.name)
    row = await banks.get_bank(ctx.conn, body.code)
    return BankOut(row.code, row.name, row.created_at)


@get("/banks")
async def list_banks(
    ctx: Ctx, limit: FromQuery[int | None] = None, cursor: FromQuery[str | None] = None
) -> BankPage:
    authorize(ctx, ALL_ROLES)
    limit = check_limit(limit)
    rows = await banks.list_banks(ctx.conn, after=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = page(rows, limit, lambda row: row.code)
    return BankPage([BankOut(row.code, row.name, row.created_at) for row in items], next_cursor)


def client_out(client: clients.Client, row: Any) -> ClientOut:
    return ClientOut(
        client.id,
        client.name,
        client.role,
        client.region_prefix,
        client.bank_code,
        row.created_at,
        row.revoked_at,
    )


@post("/clients", operation_class=with_body(CreateClient), status_code=201)
async def add_client(ctx: Ctx, request: Request[Any, Any, Any]) -> NewClientOut:
    authorize(ctx, ("admin",))
    body = await decode_body(request, CreateClient)
    client, token = await clients.add_client(
        ctx.tx,
        role=body.role,
        name=body.name,
        region_prefix=body.region_prefix,
        bank_code=body.bank_code,
    )
    row = next(row for c, row in await clients.list_clients(ctx.conn) if c.id == client.id)
    return NewClientOut(client.id, token, client_out(client, row))


@get("/clients")
async def list_clients(
    ctx: Ctx, limit: FromQuery[int | None] = None, cursor: FromQuery[str | None] = None
) -> ClientPage:
    authorize(ctx, ("admin",))
    limit = check_limit(limit)
    rows = await clients.list_clients(ctx.conn, after=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = page(rows, limit, lambda item: item[0].id)
    return ClientPage([client_out(c, row) for c, row in items], next_cursor)


@post("/clients/{client_id:str}/revoke", status_code=200)
async def revoke_client(ctx: Ctx, client_id: FromPath[str]) -> ClientOut:
    authorize(ctx, ("admin",))
    await clients.revoke_client(ctx.tx, client_id)
    return next(client_out(c, row) for c, row in await clients.list_clients(ctx.conn) if c.id == client_id)


@get("/reference-rates")
async def list_reference_rates(ctx: Ctx, kind: FromQuery[str | None] = None) -> RatesOut:
    authorize(ctx, ALL_ROLES)
    if kind is not None and kind not in KINDS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}")
    table = await rate_store.rate_table(ctx.conn)
    today = ctx.today
    items = []
    for series in [kind] if kind else KINDS:
        fixings = table.fixings(series)
        latest = fixings[-1] if fixings else None
        items.append(
            RateSeries(
                kind=series,
                known_through=table.known_through(series),
                stale=latest is not None and table.is_stale(latest, today),
                fixings=[FixingOut(f.kind, f.effective_on, format_pct(f.rate_pct)) for f in fixings],
            )
        )
    return RatesOut(items)


@post("/reference-rates", operation_class=with_body(AddFixing), status_code=201)
async def add_reference_rate(ctx: Ctx, request: Request[Any, Any, Any]) -> FixingOut:
    authorize(ctx, ("admin",))
    body = await decode_body(request, AddFixing)
    if body.kind not in KINDS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}")
    rate = parse_pct(body.rate_pct, field="rate_pct")
    fixing = await rate_store.add_fixing(
        ctx.tx, kind=body.kind, effective_on=body.effective_on, rate_pct=rate
    )
    return FixingOut(fixing.kind, fixing.effective_on, format_pct(fixing.rate_pct))


@get("/audit")
async def list_audit(
    ctx: Ctx,
    entity: FromQuery[str | None] = None,
    client_id: FromQuery[str | None] = None,
    date_from: Annotated[date | None, QueryParameter(name="from")] = None,
    date_to: Annotated[date | None, QueryParameter(name="to")] = None,
    limit: FromQuery[int | None] = None,
    cursor: FromQuery[str | None] = None,
) -> AuditPage:
    """`entity` is `type` or `type:id` (e.g. `fund:HRB01`); dates are UTC days of `occurred_at`."""
    authorize(ctx, ("admin", "auditor"))
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    if after is not None and not after.isdigit():
        raise invalid("cursor", "is not a cursor this server gave out")
    entity_type, _, entity_id = (entity or "").partition(":")
    rows = await audit.list_records(
        ctx.conn,
        region_prefix=ctx.client.region_prefix if ctx.client.role == "auditor" else None,
        entity_type=entity_type or None,
        entity_id=entity_id or None,
        client_id=client_id,
        date_from=date_from,
        date_to=date_to,
        after_id=int(after) if after is not None else None,
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, lambda row: row.id)
    return AuditPage(
        [
            AuditRecord(
                str(row.id),
                row.occurred_at,
                row.client_id,
                row.request_id,
                row.action,
                f"{row.entity_type}:{row.entity_id}",
                row.entity_type,
                row.entity_id,
                row.region_code,
                row.changes,
            )
            for row in items
        ],
        next_cursor,
    )


router = Router(
    path="/",
    route_handlers=[
        create_bank,
        list_banks,
        add_client,
        list_clients,
        revoke_client,
        list_reference_rates,
        add_reference_rate,
        list_audit,
    ],
)

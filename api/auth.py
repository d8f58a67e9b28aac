"""Scope and role checks, in the contract's order: out of scope → 404, then role → 403."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from api.context import RequestContext, invalid_key_error
from loanfund.clients import REGION_ROLES
from loanfund.errors import Forbidden, IdempotencyKeyRequired, NotFound

ALL_ROLES = ("admin", "fund_manager", "window", "bank", "auditor")
MANAGERS = ("admin", "fund_manager")
READERS = ("admin", "fund_manager", "auditor")


def authorize(
    ctx: RequestContext,
    roles: Collection[str],
    *,
    region_code: str | None = None,
    bank_code: str | None = None,
    what: str = "resource",
) -> None:
    """Refuse unless the caller may act. `region_code`/`bank_code` describe the resource's scope.

    A bank's scope is its own bank: a region-only resource (a fund) is outside it, so it sees 404.
    """
    client = ctx.client
    if client.role == "bank":
        in_scope = (region_code is None and bank_code is None) or bank_code == client.bank_code
    elif region_code is not None:
        in_scope = client.sees_region(region_code)
    else:
        in_scope = True
    if not in_scope:
        raise NotFound(f"{what} not found")
    if client.role not in roles:
        raise Forbidden(f"the {client.role} role may not do this")
    if ctx.idempotency_key_invalid:
        raise invalid_key_error()
    if ctx.method == "POST" and client.role == "bank" and not ctx.has_idempotency_key:
        raise IdempotencyKeyRequired("banks must send an Idempotency-Key header on every POST")


@dataclass(frozen=True)
class ListScope:
    """The filters that keep a list inside the caller's scope."""

    region_prefix: str | None
    bank_code: str | None
    empty: bool  # a bank asked for another bank's items: answer an empty page, never theirs


def list_scope(ctx: RequestContext, bank_code: str | None) -> ListScope:
    client = ctx.client
    if client.role == "bank":
        return ListScope(None, client.bank_code, empty=bank_code not in (None, client.bank_code))
    region = client.region_prefix if client.role in REGION_ROLES else None
    return ListScope(region, bank_code, empty=False)

"""The filters every scoped list shares: a caller's region or bank, a fund, a status, and an id cursor."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class ListFilter:
    """What a list asks for. `region_prefix` and `bank_code` are also the caller's scope."""

    region_prefix: str | None = None
    bank_code: str | None = None
    fund_code: str | None = None
    after: str | None = None
    limit: int = 50


def filtered(table: sa.Table, wanted: ListFilter) -> sa.Select[tuple[object, ...]]:
    """`SELECT * FROM table` in id order with the filter's conditions; the table has `id`,
    `region_code`, `bank_code` and `fund_code` columns."""
    query = sa.select(table).order_by(table.c.id).limit(wanted.limit)
    if wanted.region_prefix is not None:
        query = query.where(table.c.region_code.startswith(wanted.region_prefix, autoescape=True))
    if wanted.bank_code is not None:
        query = query.where(table.c.bank_code == wanted.bank_code)
    if wanted.fund_code is not None:
        query = query.where(table.c.fund_code == wanted.fund_code)
    if wanted.after is not None:
        query = query.where(table.c.id > wanted.after)
    return query

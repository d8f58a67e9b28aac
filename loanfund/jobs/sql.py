"""SQL pieces the set-based jobs need that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class json_object(FunctionElement[Any]):
    """A JSON object from alternating keys and values: `json_object('a', x, 'b', y)`."""

    type = sa.JSON()
    inherit_cache = True
    name = "json_object"


@compiles(json_object)
def _json_object_sqlite(element: json_object, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "postgresql")
def _json_object_pg(element: json_object, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


class yuan_text(FunctionElement[str]):
    """A non-negative amount of fen as the API's yuan string ("1234.50"), exactly, without a float."""

    type = sa.String()
    inherit_cache = True
    name = "yuan_text"


@compiles(yuan_text)
def _yuan_sqlite(element: yuan_text, compiler: SQLCompiler, **kw: Any) -> str:
    fen = compiler.process(element.clauses, **kw)
    return f"printf('%d.%02d', ({fen}) / 100, ({fen}) % 100)"


@compiles(yuan_text, "postgresql")
def _yuan_pg(element: yuan_text, compiler: SQLCompiler, **kw: Any) -> str:
    fen = compiler.process(element.clauses, **kw)
    return f"(({fen}) / 100)::text || '.' || lpad((({fen}) % 100)::text, 2, '0')"


class date_text(FunctionElement[str]):
    """A date as ISO text (`YYYY-MM-DD`)."""

    type = sa.String()
    inherit_cache = True
    name = "date_text"


@compiles(date_text)
def _date_text_sqlite(element: date_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(date_text, "postgresql")
def _date_text_pg(element: date_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD')"


class next_day(FunctionElement[Any]):
    """The day after a date."""

    type = sa.Date()
    inherit_cache = True
    name = "next_day"


@compiles(next_day)
def _next_day_sqlite(element: next_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+1 day')"


@compiles(next_day, "postgresql")
def _next_day_pg(element: next_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) + 1)"


def pairs(data: dict[str, ColumnElement[Any] | str]) -> json_object:
    """`json_object` from a dict of names to columns (or constant strings)."""
    args: list[Any] = []
    for name, value in data.items():
        args.append(sa.literal(name, sa.String()))
        args.append(sa.literal(value, sa.String()) if isinstance(value, str) else value)
    return json_object(*args)

"""Typed read models from rows: a query returns frozen dataclasses, not SQLAlchemy rows."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def read_model(cls: type[T], row: Any) -> T:
    """`cls` (a dataclass) from a row's columns of the same names; columns it does not name are ignored."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields if f.name in mapping})

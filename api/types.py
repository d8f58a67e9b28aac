"""Field types shared by request and response schemas."""

from __future__ import annotations

from typing import Annotated

import msgspec

from loanfund.money import AMOUNT_PATTERN

Yuan = Annotated[
    str,
    msgspec.Meta(
        pattern=AMOUNT_PATTERN,
        description="Yuan as a string, at most 2 decimals on input, exactly 2 on output.",
        examples=["20000.00"],
    ),
]
YuanOut = Annotated[str, msgspec.Meta(description="Yuan with exactly 2 decimals.", examples=["20000.00"])]
Pct = Annotated[str, msgspec.Meta(description="Percent as a decimal string.", examples=["6.15", "80"])]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Currency = Annotated[str, msgspec.Meta(description="Always CNY.", examples=["CNY"])]


class Page(msgspec.Struct):
    items: list[object]
    next_cursor: str | None

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
Pct = Annotated[
    str, msgspec.Meta(max_length=32, description="Percent as a decimal string.", examples=["6.15", "80"])
]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Currency = Annotated[str, msgspec.Meta(max_length=8, description="Always CNY.", examples=["CNY"])]


class Page(msgspec.Struct):
    items: list[object]
    next_cursor: str | None


# Every string and integer a client sends has bounds that fit its column (a 32-bit integer column,
# a short text): tests/api/test_input_limits.py checks the schema of every request body for them.
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
"""A code or a server-made id sent back (fund, bank, borrower, application…)."""
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
"""People counted: staff, new hires, jobs created."""
Months = Annotated[int, msgspec.Meta(ge=1, le=1200)]
"""A term; the policy's own maximum is a business rule (422 `term_too_long`), checked later."""
Year = Annotated[int, msgspec.Meta(ge=1900, le=9999)]
ShortText = Annotated[str, msgspec.Meta(max_length=64)]

"""docs/http-api.md is the HTTP reference inside the repository: it covers every operation the app
serves, and it is what `python -m api.reference` writes from the served OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

from api.errors import STATUS_BY_CODE
from api.reference import operations, render, served_openapi

DOC = Path(__file__).resolve().parent.parent / "docs" / "http-api.md"


def test_every_served_operation_is_documented() -> None:
    openapi = served_openapi()
    served = set(operations(openapi))
    assert len(served) > 40
    documented = set(re.findall(r"^### `(GET|POST|PUT|PATCH|DELETE) (\S+)`$", DOC.read_text(), re.MULTILINE))
    assert served - documented == set(), "run: python -m api.reference > docs/http-api.md"
    assert documented - served == set()


def test_the_file_is_what_the_generator_writes() -> None:
    assert DOC.read_text() == render(served_openapi()), "run: python -m api.reference > docs/http-api.md"


def test_reference_explains_roles_error_codes_and_idempotency() -> None:
    text = DOC.read_text()
    for role in ("admin", "fund_manager", "window", "bank", "auditor"):
        assert f"| `{role}` |" in text
    for code in STATUS_BY_CODE:
        assert f"`{code}`" in text, code
    assert "Idempotency-Key" in text and "Idempotent-Replayed: true" in text
    assert "../shared" not in text

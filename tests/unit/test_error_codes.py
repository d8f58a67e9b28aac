"""Every domain error code has its HTTP status, and every code of the contract exists in the library."""

from __future__ import annotations

from pathlib import Path

from api.errors import STATUS_BY_CODE
from loanfund import errors


def library_codes() -> set[str]:
    found = {errors.LoanfundError.code}
    pending = [errors.LoanfundError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub.code)
            pending.append(sub)
    return found


def test_every_library_code_has_a_status() -> None:
    missing = sorted(library_codes() - STATUS_BY_CODE.keys())
    assert missing == [], f"codes without an HTTP status in api/errors.py: {missing}"


def test_statuses_are_problem_statuses() -> None:
    assert set(STATUS_BY_CODE.values()) <= {400, 401, 403, 404, 409, 413, 422, 429, 503}


def test_the_contracts_codes_are_all_raised_by_the_library() -> None:
    spec = Path(__file__).resolve().parents[3] / "shared" / "spec" / "api.md"
    if not spec.exists():  # a clone without ../shared: the list below is the contract's, as of v1
        return
    text = spec.read_text(encoding="utf-8").split("## Error codes (stable)")[1]
    contract = {code.strip("`, \n.") for code in text.split("`") if code.strip("`, \n.")}
    contract = {code for code in contract if code.replace("_", "").isalpha()}
    assert contract <= library_codes() | {"forbidden", "unauthenticated"}

"""The chart of accounts (domain.md section 10): which names exist and which side is normal."""

from __future__ import annotations

import re

from loanfund.errors import UnbalancedEntry

CAPITAL_SOURCES = ("provincial", "local_match", "central", "deposit_interest", "donation", "other", "subsidy")
BANK_CODE_PATTERN = r"[A-Za-z0-9_-]{1,32}"

# Must match ACCOUNT_NAME_RE in the first migration, which PostgreSQL enforces at commit.
ACCOUNT_NAME_RE = re.compile(
    "^(cash|subsidy_budget|memo:commitments|income:recovery"
    "|expense:(compensation|write_off)"
    "|capital:(provincial|local_match|central|deposit_interest|donation|other|subsidy)"
    f"|(deposit|recoverable|subsidy_paid|memo:reserved|memo:outstanding|memo:commitments):{BANK_CODE_PATTERN})$"
)

CASH = "cash"
SUBSIDY_BUDGET = "subsidy_budget"
# The fund-wide contra account of ledgers made before migration 0006; its balance moved to the banks'.
LEGACY_COMMITMENTS = "memo:commitments"
COMPENSATION = "expense:compensation"
WRITE_OFF = "expense:write_off"
RECOVERY = "income:recovery"


def capital(source: str) -> str:
    return f"capital:{source}"


def deposit(bank_code: str) -> str:
    return f"deposit:{bank_code}"


def recoverable(bank_code: str) -> str:
    return f"recoverable:{bank_code}"


def subsidy_paid(bank_code: str) -> str:
    return f"subsidy_paid:{bank_code}"


def reserved(bank_code: str) -> str:
    return f"memo:reserved:{bank_code}"


def outstanding(bank_code: str) -> str:
    return f"memo:outstanding:{bank_code}"


def commitments(bank_code: str) -> str:
    """The contra account of a bank's memo pair: one per bank, so writes at different banks never
    wait on one fund-wide balance row."""
    return f"memo:commitments:{bank_code}"


def is_valid(name: str) -> bool:
    return ACCOUNT_NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    if not is_valid(name):
        raise UnbalancedEntry(f"unknown account {name!r}")
    return name


def is_credit_normal(name: str) -> bool:
    """Sources of money (capital, income) and the memo counter-account carry credit balances."""
    return name.startswith(("capital:", "income:", LEGACY_COMMITMENTS))


def natural_balance(name: str, signed_fen: int) -> int:
    """A balance on the account's normal side: debits positive for assets, credits for sources."""
    return -signed_fen if is_credit_normal(name) else signed_fen

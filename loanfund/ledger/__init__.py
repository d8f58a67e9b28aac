"""The double-entry ledger of each fund (domain.md section 10)."""

from loanfund.ledger import accounts
from loanfund.ledger.entries import (
    OpenEntry,
    Posting,
    close_entry,
    credit,
    debit,
    open_entry,
    post,
    post_entry,
    reverse,
    reverse_entry,
    transfer,
)
from loanfund.ledger.queries import account_id_column, balance, balance_column, signed_balances, trial_balance

__all__ = [
    "OpenEntry",
    "Posting",
    "account_id_column",
    "accounts",
    "balance",
    "balance_column",
    "close_entry",
    "credit",
    "debit",
    "open_entry",
    "post",
    "post_entry",
    "reverse",
    "reverse_entry",
    "signed_balances",
    "transfer",
    "trial_balance",
]

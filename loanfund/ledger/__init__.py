"""The double-entry ledger of each fund (domain.md section 10)."""

from loanfund.ledger import accounts
from loanfund.ledger.entries import (
    Posting,
    credit,
    debit,
    post,
    reverse,
    transfer,
    write_postings,
)
from loanfund.ledger.queries import account_id_column, balance, balance_column, signed_balances, trial_balance
from loanfund.uow import OpenEntry

__all__ = [
    "OpenEntry",
    "Posting",
    "account_id_column",
    "accounts",
    "balance",
    "balance_column",
    "credit",
    "debit",
    "post",
    "reverse",
    "signed_balances",
    "transfer",
    "trial_balance",
    "write_postings",
]

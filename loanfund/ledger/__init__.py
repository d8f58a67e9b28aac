"""The double-entry ledger of each fund (domain.md section 10)."""

from loanfund.ledger import accounts
from loanfund.ledger.entries import Posting, credit, debit, post_entry, reverse_entry, transfer
from loanfund.ledger.queries import balance, signed_balances, trial_balance

__all__ = [
    "Posting",
    "accounts",
    "balance",
    "credit",
    "debit",
    "post_entry",
    "reverse_entry",
    "signed_balances",
    "transfer",
    "trial_balance",
]

"""Loans disbursed by partner banks under the fund's guarantee: repayments, extensions, overdue."""

"""Borrowers: individuals (resident ID) and small firms (USCC), one record per person or firm nationally."""

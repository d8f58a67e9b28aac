"""Guarantors (反担保保证人): people who back a borrower's counter-guarantee."""

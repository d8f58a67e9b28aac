"""When a borrower defaults: compensation claims, recoveries, write-offs, compensation rates (domain.md 7)."""

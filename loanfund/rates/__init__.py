"""Reference lending rates (PBOC benchmark bands and LPR); see `loanfund.rates.reference`."""

from loanfund.rates.reference import (
    KINDS,
    LPR_FROM,
    MONTHLY_KINDS,
    PBOC1_5Y_FROM,
    STALE_AFTER_DAYS,
    Fixing,
    RateTable,
    ReferenceRate,
    band_for,
    latest_fixing,
    load_starting_fixings,
    parse_fixings_csv,
    starting_dense_through,
    starting_table,
)

__all__ = [
    "KINDS",
    "LPR_FROM",
    "MONTHLY_KINDS",
    "PBOC1_5Y_FROM",
    "STALE_AFTER_DAYS",
    "Fixing",
    "RateTable",
    "ReferenceRate",
    "band_for",
    "latest_fixing",
    "load_starting_fixings",
    "parse_fixings_csv",
    "starting_dense_through",
    "starting_table",
]

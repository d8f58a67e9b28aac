"""Check digits of the identity numbers the demo makes up: resident IDs (GB 11643), organisation codes
(GB 11714) and unified social credit codes (GB 32100)."""

from __future__ import annotations

_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # GB 11643: 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code


def resident_id_check(body: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits of a resident ID."""
    total = sum(int(char) * weight for char, weight in zip(body, _RIC_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def organisation_code_check(body: str) -> str:
    """The GB 11714 check character of an 8-character organisation code."""
    total = sum(int(char, 36) * weight for char, weight in zip(body, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def uscc_check(body: str) -> str:
    """The GB 32100 check character of the first 17 characters of a unified social credit code."""
    total = sum(_USCC_ALPHABET.index(char) * w for char, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


# ---- names, purposes, reasons ----------------------------------------------------------------------

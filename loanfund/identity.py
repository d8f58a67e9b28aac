"""Chinese identity numbers: resident ID (GB 11643) and unified social credit code (GB 32100).

Refusals raise `InvalidIdNumber` with facts `field` and `reason` and a detail naming the faulty part;
the number itself never appears in a message, since messages end up in logs and problem responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from stdnum.cn import ric, uscc

from loanfund.errors import InvalidIdNumber

__all__ = [
    "EARLIEST_BIRTH_YEAR",
    "PROVINCE_CODES",
    "Gender",
    "ResidentId",
    "age_on",
    "is_4050",
    "mask_id",
    "normalise_id",
    "parse_resident_id",
    "parse_uscc",
]

Gender = Literal["female", "male"]

# Explicit ASCII classes: `\d` and str.isdigit() would accept full-width and other Unicode digits.
_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
# GB 32100 alphabet: digits and capitals without I, O, S, V, Z.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Authority and type codes (positions 1-2) may be letters: rural collective economic organisations
# registered by agriculture departments carry N2/N3 codes, and Y is "other authorities". stdnum's own
# validate() demands 8 leading digits and would refuse them, so only its check-digit routine is used.
_USCC_RE = re.compile(rf"[{_USCC_ALPHABET}]{{2}}[0-9]{{6}}[{_USCC_ALPHABET}]{{10}}")


# GB/T 2260 province-level codes (the first two digits), plus 71 Taiwan, 81/82 Hong Kong and Macao
# (residence permits for their residents) and 83 (Taiwan residents' residence permits since 2018).
PROVINCE_CODES = frozenset(
    {
        *("11", "12", "13", "14", "15"),
        *("21", "22", "23"),
        *("31", "32", "33", "34", "35", "36", "37"),
        *("41", "42", "43", "44", "45", "46"),
        *("50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65"),
        *("71", "81", "82", "83"),
    }
)
# "After 1900": nobody born in 1900 or before holds a living resident ID, and such a date is a typing
# error far more often than a person.
EARLIEST_BIRTH_YEAR = 1901


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str  # normalised: 18 characters, check character upper-case
    birth_date: date
    gender: Gender


def normalise_id(text: str) -> str:
    """For look-ups only: drop every whitespace character (people type IDs in groups) and upper-case x.

    Registration does not use it: `parse_resident_id` refuses inner spaces, so that what is stored is
    what the person's card says and a typo split by a space is not silently joined.
    """
    return "".join(text.split()).replace("x", "X")


def _refuse(field: str, reason: str, detail: str) -> InvalidIdNumber:
    return InvalidIdNumber(detail, field=field, reason=reason)


def parse_resident_id(text: str, today: date) -> ResidentId:
    """Check and decode an 18-character resident ID number as of the business date `today`.

    Refused: inner spaces (the ends are trimmed), a birth date that is not a real date before today and
    after 1900, a province code (characters 1-2) that does not exist, a wrong check digit.
    The district code (first 6 digits) is deliberately not judged against the birth year: an ID carries
    the code of the district that issued it, often created after the holder was born (api.md). That is
    also why `stdnum.cn.ric.validate` is not used; only its check-digit routine is.
    """
    if not isinstance(text, str):
        raise _refuse("id_number", "format", "ID number must be a string")
    number = text.strip().replace("x", "X")
    if any(char.isspace() for char in number):
        raise _refuse("id_number", "format", "ID number must not contain spaces")
    if len(number) != 18:
        raise _refuse("id_number", "length", f"ID number must have 18 characters, not {len(number)}")
    if not _RESIDENT_ID_RE.fullmatch(number):
        raise _refuse("id_number", "format", "ID number must be 17 digits followed by a digit or X")
    try:
        birth_date = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise _refuse(
            "id_number", "birth_date", "birth date in the ID number (characters 7-14) is not a real date"
        ) from None
    if birth_date >= today:
        raise _refuse(
            "id_number", "birth_date", "birth date in the ID number (characters 7-14) is not before today"
        )
    if birth_date.year < EARLIEST_BIRTH_YEAR:
        raise _refuse(
            "id_number",
            "birth_date",
            f"birth date in the ID number (characters 7-14) must be after {EARLIEST_BIRTH_YEAR - 1}",
        )
    if number[:2] not in PROVINCE_CODES:
        raise _refuse(
            "id_number", "province", "province code of the ID number (characters 1-2) does not exist"
        )
    if ric.calc_check_digit(number) != number[17]:
        raise _refuse("id_number", "check_digit", "check digit of the ID number (last character) is wrong")
    gender: Gender = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth_date, gender=gender)


def mask_id(number: str) -> str:
    """First 6 characters, eight `*`, last 4: shows the district and the check while hiding the person."""
    if len(number) < 10:
        # Overlapping head and tail would reveal the whole of a short number.
        raise ValueError("a number to mask needs at least 10 characters")
    return f"{number[:6]}{'*' * 8}{number[-4:]}"


def age_on(birth_date: date, on: date) -> int:
    """Completed years (周岁) on `on`. Someone born on 29 February completes a year on 1 March in
    common years, the usual reading of "has reached the age"."""
    if on < birth_date:
        raise ValueError("age asked for a date before the birth date")
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def is_4050(birth_date: date, gender: Gender, on: date) -> bool:
    """The 4050 priority group: women aged 40 or more and men aged 50 or more on `on`."""
    if gender == "female":
        threshold = 40
    elif gender == "male":
        threshold = 50
    else:
        raise ValueError(f"gender must be 'female' or 'male', not {gender!r}")
    return age_on(birth_date, on) >= threshold


def parse_uscc(text: str) -> str:
    """Check a unified social credit code (GB 32100) and return it normalised (no spaces, upper case)."""
    if not isinstance(text, str):
        raise _refuse("uscc", "format", "USCC must be a string")
    code = "".join(text.split())
    # Upper-casing non-ASCII can yield ASCII ("ı" → "I"), so anything non-ASCII is refused first.
    if not code.isascii():
        raise _refuse("uscc", "format", "USCC must contain only ASCII digits and letters")
    code = code.upper()
    if len(code) != 18:
        raise _refuse("uscc", "length", f"USCC must have 18 characters, not {len(code)}")
    if not _USCC_RE.fullmatch(code):
        raise _refuse(
            "uscc",
            "format",
            "USCC must be 2 code characters, a 6-digit region code and 10 characters of digits and"
            " capitals other than I, O, S, V, Z",
        )
    if uscc.calc_check_digit(code[:17]) != code[17]:
        raise _refuse("uscc", "check_digit", "check character of the USCC (last character) is wrong")
    return code

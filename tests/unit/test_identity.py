from datetime import date

import pytest

from loanfund.errors import InvalidIdNumber
from loanfund.identity import age_on, is_4050, mask_id, normalise_id, parse_resident_id, parse_uscc

TODAY = date(2025, 6, 1)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def with_check_digit(first17: str) -> str:
    """GB 11643 check digit computed independently of stdnum, from the standard's weight table."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def uscc_with_check(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_ALPHABET[(31 - total % 31) % 31]


def wrong_last(number: str, alphabet: str) -> str:
    return number[:-1] + next(c for c in alphabet if c != number[-1])


def test_generated_id_parses() -> None:
    number = with_check_digit("11010519640501002")  # 17th digit 2: even, a woman
    parsed = parse_resident_id(number, TODAY)
    assert parsed.number == number
    assert parsed.birth_date == date(1964, 5, 1)
    assert parsed.gender == "female"


def test_known_public_examples() -> None:
    # The example numbers of GB 11643 commentaries and of python-stdnum's own doctest.
    assert parse_resident_id("11010519491231002X", TODAY).gender == "female"
    parsed = parse_resident_id("360426199101010071", TODAY)
    assert (parsed.birth_date, parsed.gender) == (date(1991, 1, 1), "male")


def test_x_check_digit_lowercase_and_outer_spaces_accepted() -> None:
    number = next(
        n for seq in range(100, 1000) if (n := with_check_digit(f"11010519491231{seq:03d}")).endswith("X")
    )
    parsed = parse_resident_id(f" \t{number[:-1]}{number[-1].lower()}\u3000 ", TODAY)
    assert parsed.number == number


@pytest.mark.parametrize("space", [" ", "\t", "\u3000", "\n"])
def test_inner_spaces_are_refused_not_stripped(space: str) -> None:
    number = with_check_digit("11010519640501002")
    for cut in (6, 14, 17):
        error = _refusal(number[:cut] + space + number[cut:])
        assert error.facts["reason"] == "format"
        assert "spaces" in error.detail
    # Look-ups stay lenient: a search finds the person however the number is typed.
    assert normalise_id(f"{number[:6]} {number[6:]}") == number


def test_gender_from_17th_digit() -> None:
    assert parse_resident_id(with_check_digit("11010519800101001"), TODAY).gender == "male"
    assert parse_resident_id(with_check_digit("11010519800101008"), TODAY).gender == "female"


def _refusal(text: str, today: date = TODAY) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as info:
        parse_resident_id(text, today)
    assert info.value.code == "invalid_id_number"
    assert info.value.facts["field"] == "id_number"
    # The number must never leak into messages (logs, problem responses).
    compact = normalise_id(text)
    if len(compact) >= 6:
        assert compact not in info.value.detail
        assert compact[:14] not in info.value.detail
    return info.value


def test_wrong_check_digit() -> None:
    number = with_check_digit("11010519640501002")
    error = _refusal(wrong_last(number, "0123456789X"))
    assert error.facts["reason"] == "check_digit"
    assert "check digit" in error.detail


@pytest.mark.parametrize(
    "first17",
    ["11010519640230002", "11010519650229002", "11010519641301002", "11010519640100002", "11010500000101002"],
)
def test_birth_date_not_a_real_date(first17: str) -> None:
    error = _refusal(with_check_digit(first17))
    assert error.facts["reason"] == "birth_date"
    assert "not a real date" in error.detail


def test_leap_day_birth_date_accepted() -> None:
    assert parse_resident_id(with_check_digit("11010519640229002"), TODAY).birth_date == date(1964, 2, 29)


def test_birth_date_must_be_before_today() -> None:
    for first17 in ("11010520250602001", "11010520250601001"):  # tomorrow, today
        error = _refusal(with_check_digit(first17))
        assert error.facts["reason"] == "birth_date"
        assert "not before today" in error.detail
    assert parse_resident_id(with_check_digit("11010520250531001"), TODAY).birth_date == date(2025, 5, 31)


@pytest.mark.parametrize("first17", ["11010518000101002", "11010519001231002", "11010518991231002"])
def test_birth_date_must_be_after_1900(first17: str) -> None:
    error = _refusal(with_check_digit(first17))
    assert error.facts["reason"] == "birth_date"
    assert "after 1900" in error.detail


def test_first_day_after_1900_accepted() -> None:
    assert parse_resident_id(with_check_digit("11010519010101002"), TODAY).birth_date == date(1901, 1, 1)


@pytest.mark.parametrize("province", ["00", "10", "16", "20", "24", "30", "38", "47", "55", "60", "66", "99"])
def test_province_code_must_exist(province: str) -> None:
    error = _refusal(with_check_digit(f"{province}010519640501002"))
    assert error.facts["reason"] == "province"
    assert "province" in error.detail


@pytest.mark.parametrize("province", ["11", "23", "46", "54", "65", "71", "81", "82", "83"])
def test_real_province_codes_accepted(province: str) -> None:
    assert parse_resident_id(with_check_digit(f"{province}010519640501002"), TODAY).gender == "female"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "length"),
        ("11010519640501002", "length"),
        ("1101051964050100211", "length"),
        ("11010519640501002Y", "format"),
        ("X10105196405010021", "format"),
        ("1101051964050100-2", "format"),
        ("１１０１０５１９６４０５０１００２１", "format"),  # full-width digits are not ASCII digits
    ],
)
def test_malformed_numbers(text: str, reason: str) -> None:
    assert _refusal(text).facts["reason"] == reason


def test_non_string_refused() -> None:
    with pytest.raises(InvalidIdNumber):
        parse_resident_id(110105196405010021, TODAY)  # type: ignore[arg-type]


def test_district_code_not_judged_against_birth_year() -> None:
    # 110114 (Changping District) was created in 1999; stdnum's validate() refuses it for a 1964 birth.
    from stdnum.cn import ric

    number = with_check_digit("11011419640501002")
    assert not ric.is_valid(number)
    assert parse_resident_id(number, TODAY).birth_date == date(1964, 5, 1)
    # A district no register knows is accepted too: only its province (characters 1-2) is judged.
    assert parse_resident_id(with_check_digit("23999919640501002"), TODAY).gender == "female"


def test_mask_id() -> None:
    assert mask_id("11010519491231002X") == "110105********002X"
    assert len(mask_id("11010519491231002X")) == 18
    with pytest.raises(ValueError):
        mask_id("123456789")


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(1964, 5, 1), date(2004, 7, 2), 40),
        (date(1955, 1, 1), date(2004, 7, 2), 49),
        (date(1964, 5, 1), date(2004, 5, 1), 40),
        (date(1964, 5, 1), date(2004, 4, 30), 39),
        (date(1964, 2, 29), date(2004, 2, 28), 39),
        (date(1964, 2, 29), date(2004, 2, 29), 40),
        (date(1964, 2, 29), date(2005, 2, 28), 40),
        (date(1963, 2, 28), date(2003, 2, 28), 40),
        (date(1964, 2, 29), date(2003, 2, 28), 38),
        (date(1964, 2, 29), date(2003, 3, 1), 39),
        (date(2000, 1, 1), date(2000, 1, 1), 0),
    ],
)
def test_age_on(birth: date, on: date, age: int) -> None:
    assert age_on(birth, on) == age


def test_age_before_birth_refused() -> None:
    with pytest.raises(ValueError):
        age_on(date(2000, 1, 2), date(2000, 1, 1))


def test_4050_domain_example_7() -> None:
    applied = date(2004, 7, 2)
    assert is_4050(date(1964, 5, 1), "female", applied)
    assert not is_4050(date(1955, 1, 1), "male", applied)
    assert age_on(date(1955, 1, 1), applied) == 49


def test_4050_thresholds() -> None:
    assert not is_4050(date(1964, 5, 2), "female", date(2004, 5, 1))
    assert is_4050(date(1954, 7, 2), "male", date(2004, 7, 2))
    assert not is_4050(date(1954, 7, 3), "male", date(2004, 7, 2))
    assert not is_4050(date(1960, 1, 1), "male", date(2004, 7, 2))  # 44: a woman would qualify
    with pytest.raises(ValueError):
        is_4050(date(1960, 1, 1), "other", date(2004, 7, 2))  # type: ignore[arg-type]


def test_id_round_trip_into_4050() -> None:
    woman = parse_resident_id(with_check_digit("11010519640501002"), date(2004, 7, 2))
    man = parse_resident_id(with_check_digit("11010519550101001"), date(2004, 7, 2))
    assert is_4050(woman.birth_date, woman.gender, date(2004, 7, 2))
    assert not is_4050(man.birth_date, man.gender, date(2004, 7, 2))


# --- USCC -----------------------------------------------------------------------------------------


def test_uscc_public_example() -> None:
    assert parse_uscc("91110000600037341L") == "91110000600037341L"


@pytest.mark.parametrize(
    "first17",
    [
        "91110000600037341",
        "91350100M00000001",
        "92230102MA1B11111",
        "N2330102MF0000000",  # rural collective economic organisation: letter authority code
        "Y1110000ABCDEFGHJ",
    ],
)
def test_generated_uscc_accepted(first17: str) -> None:
    code = uscc_with_check(first17)
    assert parse_uscc(code) == code
    assert parse_uscc(" " + code[:8].lower() + " " + code[8:].lower() + "\n") == code


def _uscc_refusal(text: str) -> InvalidIdNumber:
    with pytest.raises(InvalidIdNumber) as info:
        parse_uscc(text)
    assert info.value.code == "invalid_id_number"
    assert info.value.facts["field"] == "uscc"
    compact = "".join(text.split()).upper()
    assert len(compact) < 6 or compact not in info.value.detail
    return info.value


def test_uscc_wrong_check_character() -> None:
    code = uscc_with_check("91350100M00000001")
    assert _uscc_refusal(wrong_last(code, _USCC_ALPHABET)).facts["reason"] == "check_digit"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "length"),
        ("91110000600037341", "length"),
        ("91110000600037341LL", "length"),
        ("9111000060003734IL", "format"),  # I is not in the GB 32100 alphabet
        ("911100O0600037341L", "format"),  # region code must be digits
        ("91110000600037341-", "format"),
        ("ⅰ1110000600037341L", "format"),  # non-ASCII, whatever upper() would make of it
    ],
)
def test_uscc_malformed(text: str, reason: str) -> None:
    assert _uscc_refusal(text).facts["reason"] == reason

"""Resident ID numbers (GB 11643-1999): validation, normalisation, legacy conversion, masking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiren.domain.idnumber import (
    PROVINCE_CODES,
    IdNumber,
    IdNumberError,
    IdNumberReason,
    Sex,
    check_character,
    is_valid,
    parse,
)
from shiren.errors import ErrorCode, InputError

TODAY = date(2024, 6, 1)
EXAMPLE = "11010519491231002X"  # the worked example of GB 11643-1999


def make(region: str, birth: date, sequence: int) -> str:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_character(body)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCE_CODES)))
    rest = draw(st.integers(0, 9999))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    return make(f"{province}{rest:04d}", birth, draw(st.integers(0, 999)))


def reason_of(text: str) -> IdNumberReason:
    with pytest.raises(IdNumberError) as caught:
        parse(text, today=TODAY)
    return caught.value.reason


def test_standard_example() -> None:
    idn = parse(EXAMPLE, today=TODAY)
    assert idn.number == EXAMPLE
    assert idn.region_code == "110105"
    assert idn.province_code == "11"
    assert idn.birth_date == date(1949, 12, 31)
    assert idn.sex is Sex.FEMALE
    assert idn.legacy is False
    assert check_character(EXAMPLE[:17]) == "X"


def test_lower_case_x_full_width_and_whitespace_are_normalised() -> None:
    assert parse(EXAMPLE.lower(), today=TODAY).number == EXAMPLE
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in EXAMPLE)  # "１１０…Ｘ"
    assert parse(f" {full_width}\n", today=TODAY).number == EXAMPLE


def test_legacy_15_digit_number_is_converted() -> None:
    idn = parse("110105491231002", today=TODAY)
    assert idn.legacy is True
    assert idn.number == EXAMPLE
    assert idn.birth_date == date(1949, 12, 31)
    assert idn == IdNumber(EXAMPLE, "110105", date(1949, 12, 31), Sex.FEMALE, legacy=True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", IdNumberReason.LENGTH),
        (EXAMPLE[:17], IdNumberReason.LENGTH),
        (EXAMPLE + "1", IdNumberReason.LENGTH),
        ("1101051949123100AX", IdNumberReason.CHARACTERS),
        ("11010519491231X021", IdNumberReason.CHARACTERS),
        ("11010519491231002Y", IdNumberReason.CHARACTERS),
        ("1101054912310A2", IdNumberReason.CHARACTERS),
        ("110105194912310\u0662\u0660X", IdNumberReason.CHARACTERS),  # Arabic-Indic digits
        (make("000000", date(1990, 1, 1), 1), IdNumberReason.REGION),
        (make("911100", date(1990, 1, 1), 1), IdNumberReason.REGION),  # foreigner's card
        (make("720000", date(1990, 1, 1), 1), IdNumberReason.REGION),
        ("110105" + "19000229" + "0011", IdNumberReason.BIRTH_DATE),  # 1900 is no leap year
        ("110105" + "19901301" + "0011", IdNumberReason.BIRTH_DATE),
        (make("110105", date(1899, 12, 31), 1), IdNumberReason.BIRTH_DATE),
        (make("110105", TODAY + timedelta(days=1), 1), IdNumberReason.BIRTH_DATE),
        ("110105491331002", IdNumberReason.BIRTH_DATE),  # legacy, month 13
        ("11010519491231002" + "1", IdNumberReason.CHECK_DIGIT),
    ],
)
def test_each_reason(text: str, reason: IdNumberReason) -> None:
    assert reason_of(text) is reason


def test_error_is_typed_and_never_echoes_the_number() -> None:
    bad = "110105194912310021"
    with pytest.raises(InputError) as caught:
        parse(bad, today=TODAY)
    error = caught.value
    assert error.code is ErrorCode.ID_NUMBER_INVALID
    assert error.to_dict()["detail"] == {"reason": "check_digit"}
    assert bad not in str(error.to_dict())
    assert bad[6:14] not in repr(error)


def test_birth_date_bounds_are_inclusive() -> None:
    assert parse(make("110105", date(1900, 1, 1), 5), today=TODAY).birth_date == date(1900, 1, 1)
    assert parse(make("110105", TODAY, 5), today=TODAY).birth_date == TODAY


def test_default_today_uses_the_clock() -> None:
    assert is_valid(EXAMPLE)
    far_future = make("110105", date.today() + timedelta(days=400), 5)
    assert not is_valid(far_future)


def test_repr_str_and_format_only_show_the_mask() -> None:
    idn = parse(EXAMPLE, today=TODAY)
    assert idn.mask() == "110**************X"
    for shown in (repr(idn), str(idn), f"{idn}", f"{idn!r}", str([idn]), str({"id": idn})):
        assert EXAMPLE not in shown
        assert "19491231" not in shown


def test_age() -> None:
    idn = parse(make("110105", date(2000, 2, 29), 11), today=TODAY)
    assert idn.age_on(date(2018, 2, 28)) == 17
    assert idn.age_on(date(2018, 3, 1)) == 18
    assert idn.sex is Sex.MALE


def test_check_character_needs_17_digits() -> None:
    with pytest.raises(ValueError, match="17"):
        check_character("123")


@given(valid_numbers())
def test_generated_numbers_are_valid_and_round_trip(number: str) -> None:
    idn = parse(number, today=TODAY)
    assert idn.number == number
    assert idn.region_code == number[:6]
    assert f"{idn.birth_date:%Y%m%d}" == number[6:14]
    assert (idn.sex is Sex.MALE) == (int(number[16]) % 2 == 1)
    assert parse(number.lower(), today=TODAY) == idn
    assert number not in repr(idn)


@given(valid_numbers())
def test_legacy_form_converts_to_the_same_number(number: str) -> None:
    if number[6:8] != "19":
        return
    legacy = parse(number[:6] + number[8:17], today=TODAY)
    assert legacy.number == number
    assert legacy.legacy


@given(valid_numbers(), st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_is_rejected(number: str, position: int, shift: int) -> None:
    alphabet = "0123456789X" if position == 17 else "0123456789"
    old = alphabet.index(number[position])
    new = alphabet[(old + shift) % len(alphabet)]
    if new == number[position]:
        return
    mutated = number[:position] + new + number[position + 1 :]
    with pytest.raises(IdNumberError) as caught:
        parse(mutated, today=TODAY)
    body_ok = is_valid(mutated[:17] + check_character(mutated[:17]), today=TODAY)
    if body_ok:  # region and birth date still fine: only the check character can catch it
        assert caught.value.reason is IdNumberReason.CHECK_DIGIT


@given(valid_numbers(), st.integers(0, 15))
def test_adjacent_transpositions_are_caught(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not is_valid(swapped, today=TODAY)

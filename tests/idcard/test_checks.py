"""Every card check: valid and invalid numbers, birth date and sex against the number, the
expected number, expiry, lawful validity periods, missing fields, recapture cues; and that each
check's code has its messages."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from shiren.idcard import checks, locate
from shiren.idcard.card import CardField, CardReading, CardSide
from shiren.messages import message
from shiren.reasons import ReasonCode

from .cards import photograph, render_back, render_front

TODAY = date(2026, 12, 6)
VALID = "110105199003071239"  # 1990-03-07, sequence digit 3 (odd): male
VALID_X = "32010219880811051X"  # 1988-08-11, male, check character X
SPECIMEN = "440305199506062561"  # the shared specimen's number: check character should be 9


def fields(**values: str) -> dict[str, CardField]:
    return {name: CardField(name, value, 0.99) for name, value in values.items()}


@pytest.mark.parametrize("number", [VALID, VALID_X, "32010219880811051x"])
def test_well_formed_numbers_pass(number: str) -> None:
    assert checks.number_valid(fields(id_number=number), TODAY).passed is True


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (SPECIMEN, "check_digit"),
        ("110105199003071238", "check_digit"),
        ("990105199003071239", "region"),
        ("110105199013071235", "birth_date"),
        ("11010519900307123", "length"),
    ],
)
def test_malformed_numbers_fail_with_the_reason(number: str, reason: str) -> None:
    check = checks.number_valid(fields(id_number=number), TODAY)
    assert check.passed is False
    assert check.code == "idcard.number_invalid"
    assert check.detail == {"reason": reason}
    assert number not in str(check.detail)


def test_an_unread_number_is_not_checkable() -> None:
    assert checks.number_valid({}, TODAY).passed is None


def test_birth_date_against_the_number() -> None:
    assert checks.birth_matches(fields(id_number=VALID, birth_date="1990-03-07")).passed is True
    assert checks.birth_matches(fields(id_number=VALID, birth_date="1990-03-08")).passed is False
    # A wrong check character does not hide a date that disagrees: the specimen's agrees.
    assert checks.birth_matches(fields(id_number=SPECIMEN, birth_date="1995-06-06")).passed
    assert checks.birth_matches(fields(id_number=VALID)).passed is None
    assert checks.birth_matches(fields(birth_date="1990-03-07")).passed is None


def test_sex_against_the_number() -> None:
    assert checks.sex_matches(fields(id_number=VALID, sex="男")).passed is True
    assert checks.sex_matches(fields(id_number=VALID, sex="女")).passed is False
    assert checks.sex_matches(fields(id_number=SPECIMEN, sex="女")).passed is True
    assert checks.sex_matches(fields(id_number=VALID)).passed is None
    assert checks.sex_matches(fields(id_number=VALID, sex="?")).passed is None


def test_number_against_the_expected_one() -> None:
    read = fields(id_number=VALID_X)
    assert checks.number_matches(read, None).passed is None
    assert checks.number_matches(read, VALID_X).passed is True
    assert checks.number_matches(read, " 32010219880811051x ").passed is True
    assert checks.number_matches(read, "３２０１０２１９８８０８１１０５１Ｘ").passed is True
    mismatch = checks.number_matches(read, VALID)
    assert mismatch.passed is False
    assert mismatch.code == "idcard.number_mismatch"
    assert mismatch.detail["differing"] > 0
    assert VALID not in str(mismatch.detail)
    assert VALID_X not in str(mismatch.detail)
    assert checks.number_matches({}, VALID).passed is None


def test_a_legacy_number_is_compared_in_its_converted_form() -> None:
    legacy = "110105900307123"  # 15 digits: 110105 (19)900307 123 → 11010519900307123 + check
    assert checks.number_matches(fields(id_number=VALID), legacy).passed is True


@pytest.mark.parametrize(
    ("until", "passed"),
    [("2036-03-01", True), ("2026-12-06", True), ("2026-12-05", False), ("长期", True)],
)
def test_expiry(until: str, passed: bool) -> None:
    check = checks.not_expired(fields(valid_from="2016-03-01", valid_until=until), TODAY)
    assert check.passed is passed
    assert check.code == "idcard.expired"


def test_long_term_validity_is_flagged() -> None:
    check = checks.not_expired(fields(valid_until="长期"), TODAY)
    assert check.detail == {"long_term": True}
    assert checks.not_expired({}, TODAY).passed is None


@pytest.mark.parametrize(
    ("start", "until", "passed"),
    [
        ("2016-03-01", "2021-03-01", True),
        ("2016-03-01", "2026-03-01", True),
        ("2016-03-01", "2036-03-01", True),
        ("2016-03-01", "长期", True),
        ("2016-02-29", "2026-03-01", True),
        ("2016-02-29", "2026-02-28", True),
        ("2016-03-01", "2031-03-01", False),
        ("2016-03-01", "2036-03-02", False),
        ("2027-01-01", "2047-01-01", False),
    ],
)
def test_validity_periods_the_law_allows(start: str, until: str, passed: bool) -> None:
    check = checks.validity_lawful(fields(valid_from=start, valid_until=until), TODAY)
    assert check.passed is passed


def test_missing_fields_are_named() -> None:
    check = checks.fields_read(CardSide.BACK, fields(valid_from="2016-03-01"))
    assert check.passed is False
    assert check.detail == {"missing": ["authority", "valid_until"]}
    complete = fields(authority="x", valid_from="2016-03-01", valid_until="长期")
    assert checks.fields_read(CardSide.BACK, complete).passed is True


def test_a_printed_card_raises_no_recapture_suspicion() -> None:
    for card in (render_front(), render_back()):
        check = checks.recapture(card, glare=0.0)
        assert check.passed is True, check.detail
        assert 0.0 <= float(check.detail["score"]) < checks.RECAPTURE_THRESHOLD  # type: ignore[arg-type]


def test_a_screens_pixel_grid_raises_it() -> None:
    """A photo of the card shown on a screen: the camera sees the screen's regular pixel grid
    over it (a grating of 4 px period, 15 % deep, in the photo's own pixels)."""
    photo = photograph(render_front()).astype(np.float32)
    y, x = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
    grating = 0.85 + 0.15 * np.cos(2 * np.pi * (0.95 * x + 0.2 * y) / 4.0)
    screen = (photo * grating[..., None]).astype(np.uint8)
    found = locate.find_card(screen)
    assert found is not None
    card = locate.rectify(screen, found.corners)
    check = checks.recapture(card, glare=0.0, photo_region=locate.inside(screen, found.corners))
    assert check.passed is False
    assert check.detail["cues"]["moire"] >= 0.5  # type: ignore[index]
    clean = photograph(render_front())
    flat = locate.rectify(clean, found.corners)
    region = locate.inside(clean, found.corners)
    assert checks.recapture(flat, glare=0.0, photo_region=region).passed is True


def test_a_grey_photocopy_raises_it() -> None:
    gray = render_front().mean(axis=2, keepdims=True).repeat(3, axis=2).astype(np.uint8)
    check = checks.recapture(gray, glare=0.0)
    assert check.passed is False
    assert check.detail["cues"]["colour"] == 1.0  # type: ignore[index]


def test_sheet_glare_raises_it() -> None:
    assert checks.recapture(render_front(), glare=0.3).passed is True  # a lamp's spot
    assert checks.recapture(render_front(), glare=0.85).passed is False


def test_the_checks_of_each_side() -> None:
    front = fields(id_number=VALID, birth_date="1990-03-07", sex="男")
    codes = [c.code for c in checks.run(CardSide.FRONT, front, card=None, glare=0.0,
                                        expected_id_number=None, today=TODAY)]  # fmt: skip
    assert codes == [
        "idcard.number_invalid",
        "idcard.birth_date_mismatch",
        "idcard.sex_mismatch",
        "idcard.number_mismatch",
        "idcard.fields_missing",
    ]
    back = checks.run(CardSide.BACK, {}, card=render_back(), glare=0.0,
                      expected_id_number=VALID, today=TODAY)  # fmt: skip
    assert [c.code for c in back] == [
        "idcard.expired",
        "idcard.validity_invalid",
        "idcard.fields_missing",
        "idcard.recapture_suspected",
    ]
    assert checks.run(CardSide.UNKNOWN, {}, card=None, glare=0.0,
                      expected_id_number=None, today=TODAY) == ()  # fmt: skip


def test_every_idcard_code_has_both_messages() -> None:
    codes = [code for code in ReasonCode if code.startswith("idcard.")]
    assert len(codes) == 15
    for code in codes:
        assert message(code, "zh-CN")
        assert message(code, "en")


def test_a_reading_serialises_without_pixels_and_with_messages() -> None:
    reading = CardReading(
        side=CardSide.FRONT,
        fields=fields(id_number=VALID),
        checks=checks.run(
            CardSide.FRONT,
            fields(id_number=VALID),
            card=None,
            glare=0.0,
            expected_id_number=None,
            today=TODAY,
        ),
        portrait=np.zeros((10, 8, 3), np.uint8),
        corners=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
        guidance=("idcard.blurry",),
    )
    out = reading.to_dict("en")
    assert out["side"] == "front"
    assert out["portrait_found"] is True
    assert "portrait" not in out
    assert out["fields"] == {"id_number": {"value": VALID, "confidence": 0.99}}
    assert out["guidance"] == [{"code": "idcard.blurry", "message": message("idcard.blurry", "en")}]
    first = out["checks"][0]  # type: ignore[index]
    assert first["code"] == "idcard.number_invalid"
    assert first["passed"] is True
    assert first["message"] == message("idcard.number_invalid", "en")
    assert reading.value("id_number") == VALID
    assert reading.value("name") is None

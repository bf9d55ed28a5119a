"""The card reader with the real models (PP-OCRv4, BlazeFace) on the shared specimen and on cards
rendered here and photographed on a desk: fields, checks, orientation, capture guidance, and
every kind of bad input as a typed error or a guidance code, never a crash."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from shiren.errors import ErrorCode, ImageError, InputError
from shiren.idcard import CardReader, CardSide
from shiren.idcard.types import CardReading
from shiren.models.rapid_ocr import PpOcrV4
from tests.conftest import SHARED, require

from .cards import (
    Back,
    Front,
    desk,
    encode,
    photograph,
    render_back,
    render_front,
    render_licence,
    with_glare,
)

SPECIMEN = SHARED / "cn_idcard_specimen" / "cn_idcard_demo_specimen_front.jpg"
TODAY = date(2026, 12, 6)
CARD = Front(number="110105199003071239")  # valid: check character 9, male, 1990-03-07
EXPECTED = {
    "name": "张伟明",
    "sex": "男",
    "ethnicity": "汉",
    "birth_date": "1990-03-07",
    "address": "北京市朝阳区建国路八十八号院三号楼二单元五零一室",
    "id_number": "110105199003071239",
}


@pytest.fixture(scope="module")
def reader() -> CardReader:
    return CardReader.load()


def values(reading: CardReading) -> dict[str, str]:
    return {name: field.value for name, field in reading.fields.items()}


def outcome(reading: CardReading) -> dict[str, bool | None]:
    return {check.code: check.passed for check in reading.checks}


def test_the_shared_specimen(reader: CardReader) -> None:
    reading = reader.read(require(SPECIMEN).read_bytes(), today=TODAY)
    assert reading.side is CardSide.FRONT
    assert values(reading) == {
        "name": "刘小合",
        "sex": "女",
        "ethnicity": "汉",
        "birth_date": "1995-06-06",
        "address": "上海市静安区万荣路1268号",
        "id_number": "440305199506062561",
    }
    assert all(field.confidence > 0.8 for field in reading.fields.values())
    # DATA.md: the specimen's number fails the GB 11643 check character (9 expected).
    assert outcome(reading) == {
        "idcard.number_invalid": False,
        "idcard.birth_date_mismatch": True,
        "idcard.sex_mismatch": True,
        "idcard.number_mismatch": None,
        "idcard.fields_missing": True,
        "idcard.recapture_suspected": True,
    }
    assert reading.check("idcard.number_invalid").detail == {"reason": "check_digit"}  # type: ignore[union-attr]
    assert reading.guidance == ()
    # The card lies at about (168, 197)-(910, 664) in the 1080 × 864 photo.
    assert reading.corners is not None
    corners = np.asarray(reading.corners)
    expected = np.asarray([[168, 197], [910, 197], [910, 664], [168, 664]])
    assert np.abs(corners - expected).max() < 25
    # The photo is found by the face detector and cut around the face.
    assert reading.portrait is not None
    height, width = reading.portrait.shape[:2]
    assert 180 < height < 420
    assert 0.6 < width / height < 1.0


def test_a_rendered_front_photographed_on_a_desk(reader: CardReader) -> None:
    data = encode(photograph(render_front(CARD)))
    reading = reader.read(data, expected_id_number=CARD.number, today=TODAY)
    assert reading.side is CardSide.FRONT
    assert values(reading) == EXPECTED
    assert set(outcome(reading).values()) == {True}
    assert reading.guidance == ()
    other = reader.read(data, expected_id_number="32010219880811051X", today=TODAY)
    assert outcome(other)["idcard.number_mismatch"] is False


def test_a_wrong_sex_and_birth_date_are_caught(reader: CardReader) -> None:
    card = Front(sex="女", birth=date(1990, 3, 8), number="110105199003071239")
    reading = reader.read(photograph(render_front(card)), today=TODAY)
    assert outcome(reading)["idcard.sex_mismatch"] is False
    assert outcome(reading)["idcard.birth_date_mismatch"] is False
    assert outcome(reading)["idcard.number_invalid"] is True


def test_the_back_and_its_validity(reader: CardReader) -> None:
    reading = reader.read(encode(photograph(render_back())), today=TODAY)
    assert reading.side is CardSide.BACK
    assert values(reading) == {
        "authority": "北京市公安局朝阳分局",
        "valid_from": "2016-03-01",
        "valid_until": "2036-03-01",
    }
    assert outcome(reading)["idcard.expired"] is True
    assert reading.portrait is None
    later = reader.read(encode(photograph(render_back())), today=date(2036, 3, 2))
    assert outcome(later)["idcard.expired"] is False
    long_term = Back(valid_from="2008.07.15", valid_until="长期")
    forever = reader.read(photograph(render_back(long_term)), today=date(2060, 1, 1))
    assert forever.value("valid_until") == "长期"
    assert outcome(forever)["idcard.expired"] is True
    assert outcome(forever)["idcard.validity_invalid"] is True


def test_an_upside_down_card_is_turned_upright(reader: CardReader) -> None:
    photo = photograph(render_front(CARD), upside_down=True)
    reading = reader.read(photo, today=TODAY)
    assert reading.side is CardSide.FRONT
    assert reading.value("id_number") == CARD.number
    assert reading.value("name") == CARD.name
    assert reading.corners is not None
    # The card's own top-left corner lies at the photo's bottom right.
    x, y = reading.corners[0]
    assert x > 0.8 * photo.shape[1]
    assert y > 0.7 * photo.shape[0]


def test_a_card_on_its_side_in_a_portrait_photo(reader: CardReader) -> None:
    corners = [(860, 150), (880, 1150), (220, 1160), (190, 160)]  # top-left at the top right
    photo = photograph(render_front(CARD), corners=corners, size=(1080, 1320))
    reading = reader.read(photo, today=TODAY)
    assert values(reading) == EXPECTED


def test_capture_guidance(reader: CardReader) -> None:
    card = render_front(CARD)
    blurry = reader.read(photograph(card, blur_sigma=4.0), today=TODAY)
    assert "idcard.blurry" in blurry.guidance
    glare = reader.read(with_glare(photograph(card), (0.33, 0.5), 60), today=TODAY)
    assert "idcard.glare" in glare.guidance
    far = [(560, 420), (760, 415), (762, 545), (558, 548)]
    small = reader.read(photograph(card, corners=far, size=(1280, 960)), today=TODAY)
    assert "idcard.too_far" in small.guidance
    cut = [(-120, 180), (900, 170), (910, 820), (-110, 830)]
    cut_off = reader.read(photograph(card, corners=cut), today=TODAY)
    assert "idcard.cut_off" in cut_off.guidance
    wrong = reader.read(photograph(card), expected_side="back", today=TODAY)
    assert wrong.guidance[0] == "idcard.wrong_side"


def test_no_card_is_guidance_not_an_error(reader: CardReader) -> None:
    reading = reader.read(encode(desk()), today=TODAY)
    assert reading.side is CardSide.UNKNOWN
    assert reading.guidance[0] == "idcard.not_found"
    assert reading.fields == {}
    assert reading.checks == ()
    assert reading.portrait is None


def test_two_cards_are_refused(reader: CardReader) -> None:
    left = [(40, 300), (610, 290), (615, 650), (45, 660)]
    right = [(670, 290), (1240, 300), (1235, 660), (665, 650)]
    photo = photograph(render_front(CARD), corners=left)
    photo = photograph(render_back(), corners=right, base=photo)
    with pytest.raises(InputError) as caught:
        reader.read(photo, today=TODAY)
    assert caught.value.code is ErrorCode.IDCARD_MULTIPLE


def test_another_document_is_refused(reader: CardReader) -> None:
    with pytest.raises(InputError) as caught:
        reader.read(photograph(render_licence()), today=TODAY)
    assert caught.value.code is ErrorCode.IDCARD_UNSUPPORTED
    assert caught.value.detail == {"document": "driving_licence"}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.IMAGE_EMPTY),
        (b"%PDF-1.7 not an image", ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, ErrorCode.IMAGE_CORRUPT),
    ],
)
def test_bytes_that_are_not_an_image(reader: CardReader, data: bytes, code: ErrorCode) -> None:
    with pytest.raises(ImageError) as caught:
        reader.read(data)
    assert caught.value.code in (code, ErrorCode.IMAGE_TRUNCATED)


def test_a_huge_array_is_refused_before_any_work(reader: CardReader) -> None:
    with pytest.raises(ImageError) as caught:
        reader.read(np.zeros((13_000, 10, 3), np.uint8))
    assert caught.value.code is ErrorCode.IMAGE_TOO_MANY_PIXELS


def test_the_adapter_reads_like_rapidocr_itself() -> None:
    """Our onnxruntime pipeline against the wheel's own (RapidOCR 1.4.4, same files) on the
    specimen: the same lines, boxes within a few pixels, nearly all texts identical."""
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    from shiren.models.registry import build_model

    bgr = cv2.imread(str(require(SPECIMEN)))
    theirs, _ = RapidOCR()(bgr)
    ocr = build_model("ppocr-v4")
    assert isinstance(ocr, PpOcrV4)
    ours = ocr.read(np.ascontiguousarray(bgr[:, :, ::-1]))
    assert len(ours) == len(theirs)
    for mine, (box, _text, _score) in zip(ours, theirs, strict=True):
        assert np.abs(np.asarray(mine.box) - np.asarray(box)).max() <= 3
    same = sum(mine.text == text for mine, (_, text, _) in zip(ours, theirs, strict=True))
    assert same >= len(ours) - 1


def test_a_side_that_is_neither_is_refused(reader: CardReader) -> None:
    with pytest.raises(InputError) as caught:
        reader.read(photograph(render_front(CARD)), expected_side="top")
    assert caught.value.code is ErrorCode.INPUT_INVALID


def test_a_photo_of_a_plain_sheet_is_no_card(reader: CardReader) -> None:
    sheet = np.full((600, 900, 3), 235, np.uint8)
    reading = reader.read(sheet)
    assert reading.side is CardSide.UNKNOWN
    assert reading.guidance[0] == "idcard.not_found"

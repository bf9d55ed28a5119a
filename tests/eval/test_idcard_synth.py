"""The synthetic ID-card generator: seeded, valid and invalid numbers as recorded, truthful
geometry, every distortion level, and a typed error when no CJK font is installed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from shiren.domain.idnumber import is_valid
from shiren.errors import ConfigError, ErrorCode
from shiren.eval.idcard_content import LONG_TERM, draw_person
from shiren.eval.idcard_photo import LEVELS, photograph
from shiren.eval.idcard_render import CardPainter
from shiren.eval.idcard_synth import (
    CardGenerator,
    CjkFontMissingError,
    FaceBank,
    SynthConfig,
    find_cjk_font,
)
from tests.conftest import SHARED, require

TODAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def font() -> Path:
    try:
        return find_cjk_font()
    except CjkFontMissingError:
        pytest.skip("no CJK font (apt-get install -y fonts-wqy-zenhei)")


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_cards_are_deterministic_per_seed(font: Path) -> None:
    config = SynthConfig(seed=7, level="moderate")
    first = CardGenerator(config, font=font)
    again = CardGenerator(config, font=font)
    cards = list(first.cards(3))
    assert [c.jpeg for c in cards] == [again.card(i).jpeg for i in range(3)]
    assert [c.truth for c in cards] == [again.card(i).truth for i in range(3)]
    # Card i does not depend on how many cards were asked for, nor on where the run started.
    assert next(again.cards(1, start=2)).jpeg == cards[2].jpeg
    other = CardGenerator(SynthConfig(seed=8, level="moderate"), font=font).card(0)
    assert other.jpeg != cards[0].jpeg
    assert other.truth.fields != cards[0].truth.fields


def test_same_holder_at_every_level(font: Path) -> None:
    truths = [
        CardGenerator(SynthConfig(seed=2, level=lv), font=font).card(0).truth for lv in LEVELS
    ]
    assert all(t.fields == truths[0].fields for t in truths)
    assert [t.level for t in truths] == list(LEVELS)


def test_numbers_valid_or_spoiled_as_recorded() -> None:
    rng = np.random.default_rng(0)
    people = [draw_person(rng, invalid_share=0.3, today=TODAY) for _ in range(400)]
    assert 60 < sum(not p.number_valid for p in people) < 180
    for p in people:
        assert is_valid(p.id_number, today=TODAY) is p.number_valid
        assert p.id_number[6:14] == f"{p.birth_date:%Y%m%d}"
        assert (int(p.id_number[16]) % 2 == 1) is (p.sex == "男")
        assert 2 <= len(p.name) <= 3
        assert p.valid_until is None or p.valid_until > TODAY
        assert p.valid_from <= TODAY
    assert any(p.valid_until is None for p in people)
    assert any(p.ethnicity != "汉" for p in people)
    assert all(p.number_valid for p in (draw_person(rng, invalid_share=0.0, today=TODAY)
                                        for _ in range(50)))  # fmt: skip


def test_card_truth_fields(font: Path) -> None:
    gen = CardGenerator(SynthConfig(seed=1, level="none", invalid_share=1.0), font=font)
    front, back = gen.card(0).truth, gen.card(1).truth
    assert front.side == "front"
    assert back.side == "back"
    assert set(front.fields) == {"name", "sex", "ethnicity", "birth_date", "address", "id_number"}
    assert set(back.fields) == {"authority", "valid_from", "valid_until"}
    assert front.number_valid is False
    assert not is_valid(front.fields["id_number"], today=TODAY)
    assert back.number_valid is None
    assert back.portrait_box is None
    assert date.fromisoformat(front.fields["birth_date"]) < TODAY
    until = back.fields["valid_until"]
    assert until == LONG_TERM or date.fromisoformat(until) > TODAY
    assert back.fields["authority"].endswith("分局")


@pytest.mark.parametrize("level", LEVELS)
def test_corners_and_portrait_inside_the_photo(font: Path, level: str) -> None:
    gen = CardGenerator(SynthConfig(seed=5, level=level), font=font)
    for card in gen.cards(4):
        image = _decode(card.jpeg)
        h, w = image.shape[:2]
        assert (w, h) == card.truth.image_size
        corners = np.array(card.truth.corners)
        assert corners.shape == (4, 2)
        assert (corners >= 0).all()
        assert (corners[:, 0] <= w).all()
        assert (corners[:, 1] <= h).all()
        if card.truth.side == "front":
            x0, y0, x1, y1 = card.truth.portrait_box or (-1, -1, -1, -1)
            assert 0 <= x0 < x1 <= w
            assert 0 <= y0 < y1 <= h
            # The portrait lies inside the card's quadrilateral.
            quad = corners.astype(np.float32).reshape(-1, 1, 2)
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            assert cv2.pointPolygonTest(quad, centre, False) > 0


def test_card_is_where_the_truth_says(font: Path) -> None:
    """The pixels inside the true quadrilateral are the card's light face, not the table."""
    card = CardGenerator(SynthConfig(seed=3, level="none"), font=font).card(1)
    image = _decode(card.jpeg)
    corners = np.array(card.truth.corners)
    centre = corners.mean(axis=0).astype(int)
    assert image[centre[1], centre[0]].mean() > 180
    # The emblem's red sits where the card's top-left area was mapped.
    top_left, bottom_right = corners[0], corners[2]
    emblem = top_left + (bottom_right - top_left) * (15.0 / 85.6, 14.5 / 54.0)
    b, g, r = image[int(emblem[1]), int(emblem[0])].astype(int)
    assert r > 150
    assert g < 90
    assert b < 90


def test_upside_down_cards_at_the_strong_level(font: Path) -> None:
    painter = CardPainter(font, px_per_mm=4.0)
    rng = np.random.default_rng(0)
    flat = painter.back(draw_person(rng, invalid_share=0.0, today=TODAY), rng)
    strong = [photograph(flat, "strong", np.random.default_rng([9, i])) for i in range(30)]
    flipped = [p for p in strong if p.upside_down]
    assert flipped, "the strong level must include upside-down cards"
    for photo in flipped:
        # The card's own top edge (corners 0 and 1) is now below its bottom edge.
        assert photo.corners[:2, 1].mean() > photo.corners[2:, 1].mean()
    flat_photos = [photograph(flat, "none", np.random.default_rng([9, i])) for i in range(5)]
    assert not any(p.upside_down or p.rotation_deg for p in flat_photos)


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        SynthConfig(level="extreme")


def test_missing_font_is_a_typed_config_error(tmp_path: Path) -> None:
    with pytest.raises(CjkFontMissingError) as caught:
        find_cjk_font(roots=[tmp_path], fc_list=False)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.code is ErrorCode.CONFIG_INVALID
    assert "fonts-wqy-zenhei" in caught.value.message
    not_a_font = tmp_path / "broken.ttc"
    not_a_font.write_bytes(b"not a font")
    with pytest.raises(CjkFontMissingError):
        CardGenerator(SynthConfig(), font=not_a_font)


def test_faces_from_the_shared_data(font: Path) -> None:
    bank = FaceBank.load(require(SHARED / "casia_facev5_subset"))
    gen = CardGenerator(SynthConfig(seed=4, level="none"), faces=bank, font=font)
    truth = gen.card(0).truth
    assert truth.face is not None
    person, path = truth.face
    assert path in bank.people[person]
    assert len(bank.people[person]) >= 2
    assert gen.card(1).truth.face is None  # backs have no portrait


def test_face_bank_refuses_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        FaceBank.load(tmp_path)

"""ID-card-like reference degradation (issue 14): size, determinism, and that it does degrade."""

from __future__ import annotations

import numpy as np
import pytest

from shiren.core.degrade import (
    IDCARD,
    Degradation,
    colourfulness,
    degrade,
    desaturate,
    parse_spec,
    portrait_crop,
    sharpness,
)
from shiren.core.geometry import BBox


def _photo(h: int = 400, w: int = 360, seed: int = 1) -> np.ndarray:
    """A colourful, detailed synthetic photo: colour gradients plus fine random texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, 255 - xx * 255 / w], axis=-1)
    texture = rng.integers(-60, 60, size=(h, w, 1))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def test_specs() -> None:
    assert parse_spec("none") is None
    assert parse_spec(" IDCard ") is IDCARD
    with pytest.raises(ValueError, match="idcard"):
        parse_spec("passport")


@pytest.mark.parametrize("box", [None, BBox(120, 150, 240, 290), BBox(-40, -30, 60, 90)])
def test_output_is_an_id_card_portrait(box: BBox | None) -> None:
    out = degrade(_photo(), IDCARD, face_box=box, seed=0)
    assert out.shape == (126, 102, 3)
    assert out.dtype == np.uint8


def test_deterministic_given_the_seed() -> None:
    photo = _photo()
    first = degrade(photo, IDCARD, seed=7)
    assert np.array_equal(first, degrade(photo, IDCARD, seed=7))
    assert not np.array_equal(first, degrade(photo, IDCARD, seed=8))  # the grain is seeded


def test_it_degrades_sharpness_and_colour() -> None:
    photo = _photo()
    box = BBox(110, 120, 250, 290)
    plain = portrait_crop(photo, IDCARD, box)  # the same portrait, only resized
    spoiled = degrade(photo, IDCARD, face_box=box, seed=0)
    assert sharpness(spoiled) < 0.5 * sharpness(plain)
    assert colourfulness(spoiled) < 0.7 * colourfulness(plain)
    assert colourfulness(plain) > 20.0


def test_portrait_is_placed_around_the_face() -> None:
    photo = np.zeros((300, 300, 3), np.uint8)
    photo[100:200, 100:200] = 255  # the "face": a white square
    how = Degradation(face_width_fraction=0.5, face_center_y_fraction=0.5)
    crop = portrait_crop(photo, how, BBox(100, 100, 200, 200))
    # The face is half the portrait's width and centred: columns 25..76 are white mid-height.
    row = crop[how.height_px // 2, :, 0]
    assert row[30:72].min() == 255
    assert row[:20].max() == 0
    assert row[-20:].max() == 0


def test_desaturate_keeps_grey_and_scales_chroma() -> None:
    grey = np.full((2, 2, 3), 90, np.uint8)
    assert np.array_equal(desaturate(grey, 0.3), grey)
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 200
    assert colourfulness(desaturate(red, 0.0)) == 0.0
    assert colourfulness(desaturate(red, 0.5)) == pytest.approx(100.0, abs=1.0)

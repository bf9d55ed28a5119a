"""Live framing guidance for the card step (:mod:`shiren.idcard.guide`): on rendered cards
photographed and shrunk to the page's 640 px, a well-framed sharp card passes, and a blurred,
distant, cut-off or glared one gets its own code; no card is ``idcard.not_found``."""

from __future__ import annotations

from datetime import date

import cv2
import numpy as np
import pytest

from shiren.eval.idcard_photo import photograph
from shiren.idcard.guide import guide
from tests.support import id_cards


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    paint = id_cards.painter()
    rng = np.random.default_rng(3)
    person = id_cards.holder(3, date(2026, 12, 7))
    photo = photograph(paint.back(person, rng), "none", rng)
    pixels = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    scale = 640 / max(pixels.shape[:2])
    small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small)


def test_a_sharp_well_framed_card_passes(frame: np.ndarray) -> None:
    assert guide(frame) == ()


def test_blur_is_named(frame: np.ndarray) -> None:
    blurred = np.ascontiguousarray(cv2.GaussianBlur(frame, (0, 0), 2.0))
    assert "idcard.blurry" in guide(blurred)


def test_a_distant_card_is_too_far(frame: np.ndarray) -> None:
    h, w = frame.shape[:2]  # the same table, seen from twice as far
    canvas = cv2.copyMakeBorder(frame, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
    far = np.ascontiguousarray(cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA))
    assert "idcard.too_far" in guide(far)


@pytest.mark.parametrize("pan", [8, 5, 3])
def test_a_card_past_the_edge_is_cut_off(frame: np.ndarray, pan: int) -> None:
    w = frame.shape[1]  # the camera pans by w/pan: the card slides off the left edge
    wide = cv2.copyMakeBorder(frame, 0, 0, 0, w // 2, cv2.BORDER_REPLICATE)
    codes = guide(np.ascontiguousarray(wide[:, w // pan : w // pan + w]))
    assert "idcard.cut_off" in codes


def test_glare_over_the_fields_is_named(frame: np.ndarray) -> None:
    glared = frame.copy()
    h, w = frame.shape[:2]
    cv2.circle(glared, (w // 2, h // 2), h // 10, (255, 255, 255), -1)
    assert "idcard.glare" in guide(glared)


def test_no_card_is_not_found() -> None:
    ramp = np.linspace(70, 110, 640, dtype=np.float32)[None, :, None]
    desk = np.broadcast_to(ramp, (480, 640, 3)).astype(np.uint8)  # an empty, evenly lit desk
    assert guide(np.ascontiguousarray(desk)) == ("idcard.not_found",)

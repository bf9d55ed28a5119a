"""Live framing guidance for the card step of the capture page: cheap, no OCR.

The page sends a small frame (at most 640 px wide) about twice a second while the borrower
lines the card up in its card-shaped guide; the answer says what to fix first.  Only the
outline cues of :func:`shiren.idcard.locate.outlines` run here (a few milliseconds), so the
verdicts are about *framing*, not content — whether the text can be read is judged on the
full-resolution photo the page takes afterwards (:meth:`CardReader.read`):

* ``idcard.not_found`` — no card-shaped outline (nothing in the guide, or a card on a background
  of the same brightness: the photo may still read, so the page lets the borrower take it);
* ``idcard.cut_off`` — a corner at or past the frame's edge;
* ``idcard.too_far`` — the card fills under :data:`GUIDE_MIN_AREA_FRACTION` of the frame;
* ``idcard.blurry`` — the variance of the Laplacian over the card, measured at the frame's own
  scale (no resampling), under :data:`GUIDE_BLUR_MIN_VAR`;
* ``idcard.glare`` — blown-out blobs over the card, as :func:`~shiren.idcard.locate.glare_fraction`
  measures on the rectified card.

The limits were set on rendered cards photographed at 640 px (tests/idcard/test_guide.py holds
them to that: a sharp, well-framed card passes; blurred, distant, cut-off and glared ones each
get their code).
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from shiren.core.geometry import RGBImage
from shiren.idcard import locate
from shiren.idcard.card import CardSide
from shiren.reasons import ReasonCode as R

GUIDE_MAX_SIDE_PX: Final = 640
"""Frames larger than this are shrunk first (the page sends 640 px; the cost stays flat)."""
GUIDE_MIN_AREA_FRACTION: Final = 0.25
"""The page's guide covers about 60 % of a 4:3 frame; a card under a quarter of the frame is
too small for its 5 mm print to survive a phone photo."""
GUIDE_BLUR_MIN_VAR: Final = 60.0
"""Laplacian variance over the card's inner area at the frame's scale: rendered cards
photographed and shrunk to 640 px measured about 900-3,300 sharp, 19-53 under a Gaussian blur
of σ = 1.5 px and 7-17 under σ = 2 px (two runs of 8-12 cards, distortion levels none and
moderate; ``scripts/measure_card_guide.py``)."""


GUIDE_EMPTY_VAR: Final = 8.0
"""Below this Laplacian variance the "card" has no print at all (an empty desk's light patch):
not a card.  Blurred cards measured above it down to σ = 2.5 px."""
_CUT_AREA: Final = (0.15, 0.9)
"""Share of the frame a bright region touching the edge must cover to be a card sliding out."""


def guide(pixels: RGBImage) -> tuple[str, ...]:
    """The framing codes for one guidance frame, most important first (empty: take the photo)."""
    height, width = pixels.shape[:2]
    side = max(height, width)
    if side > GUIDE_MAX_SIDE_PX:
        scale = GUIDE_MAX_SIDE_PX / side
        size = (round(width * scale), round(height * scale))
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))
    found = locate.outlines(pixels)  # two cards: input.idcard_multiple, the caller's to show
    where = found[0] if found else None
    sharpness = _sharpness(pixels, where.corners) if where is not None else 0.0
    if (
        where is None
        or sharpness < GUIDE_EMPTY_VAR
        or where.area_fraction < GUIDE_MIN_AREA_FRACTION
    ):
        sliding = any(
            o.cut_off
            and o.area_fraction >= _CUT_AREA[0]
            and _sharpness(pixels, o.corners) >= GUIDE_EMPTY_VAR
            for o in found
        )
        if sliding or _slides_off_the_edge(pixels):
            return (str(R.IDCARD_CUT_OFF),)
        if where is None or sharpness < GUIDE_EMPTY_VAR:
            return (str(R.IDCARD_NOT_FOUND),)
    codes: list[str] = []
    if where.cut_off:
        codes.append(str(R.IDCARD_CUT_OFF))
    if where.area_fraction < GUIDE_MIN_AREA_FRACTION:
        codes.append(str(R.IDCARD_TOO_FAR))
    if sharpness < GUIDE_BLUR_MIN_VAR:
        codes.append(str(R.IDCARD_BLURRY))
    card = locate.rectify(pixels, where.corners)
    if locate.glare_fraction(card, CardSide.UNKNOWN) >= locate.GLARE_MIN_FRACTION:
        codes.append(str(R.IDCARD_GLARE))
    return tuple(codes)


def _sharpness(pixels: RGBImage, corners: locate.Quad) -> float:
    inner = locate.inside(pixels, corners, shrink=0.1)
    return float(cv2.Laplacian(cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _slides_off_the_edge(pixels: RGBImage) -> bool:
    """A card partly out of the frame is no longer card-shaped, so no outline finds it: look
    for a large, textured bright region (the card is lighter than most desks) that touches
    the frame's edge instead."""
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return False
    biggest = max(contours, key=cv2.contourArea)
    height, width = gray.shape
    share = cv2.contourArea(biggest) / float(height * width)
    x, y, w, h = cv2.boundingRect(biggest)
    touches = x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1
    if not touches or not _CUT_AREA[0] <= share <= _CUT_AREA[1]:
        return False
    region = gray[y : y + h, x : x + w]
    return float(cv2.Laplacian(region, cv2.CV_64F).var()) >= GUIDE_EMPTY_VAR


__all__ = ["GUIDE_BLUR_MIN_VAR", "GUIDE_MAX_SIDE_PX", "GUIDE_MIN_AREA_FRACTION", "guide"]

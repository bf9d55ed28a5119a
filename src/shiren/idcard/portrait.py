"""The photo on the card's front, cut out for a face comparison with the applicant's selfie.

On the rectified card (856 × 540) the printed photo (26 × 32 mm, GA 450-2013) lies at about
x 0.62–0.93, y 0.10–0.75 of the card; that box is the crop when no face detector is given.  With
a detector (:class:`~shiren.models.protocols.FaceDetector`) the crop is re-centred on the face
found in a slightly larger area (warping and the card's rounded corners shift it by a few per
cent) and given the photo's own proportions; no face there means no portrait (the photo is
covered, blown out by glare, or not a face).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from shiren.core.geometry import RGBImage
from shiren.idcard.card import CARD_HEIGHT_PX, CARD_WIDTH_PX
from shiren.models.protocols import FaceDetector

PHOTO_BOX: Final = (0.62, 0.10, 0.93, 0.75)
"""The printed photo on the rectified front, as fractions (x0, y0, x1, y1) of the card."""
_SEARCH_BOX: Final = (0.55, 0.04, 0.98, 0.82)
"""Where the detector looks: the photo box with a margin for an imperfect warp."""
_PHOTO_ASPECT: Final = 26 / 32
"""Width / height of the printed photo (26 × 32 mm)."""
_HEAD_HEIGHTS: Final = 2.4
"""The photo's height in face-box heights: a head and shoulders portrait."""
_FACE_CENTRE_Y: Final = 0.45
"""Where the face's centre lies from the photo's top, as a fraction of its height."""


def _pixels(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (
        round(x0 * CARD_WIDTH_PX),
        round(y0 * CARD_HEIGHT_PX),
        round(x1 * CARD_WIDTH_PX),
        round(y1 * CARD_HEIGHT_PX),
    )


def extract(card: RGBImage, detector: FaceDetector | None = None) -> RGBImage | None:
    """An RGB crop of the front's photo: the fixed box without a detector; centred on the
    largest face found with one, or None when it finds none."""
    if detector is None:
        x0, y0, x1, y1 = _pixels(PHOTO_BOX)
        return np.ascontiguousarray(card[y0:y1, x0:x1])
    sx0, sy0, sx1, sy1 = _pixels(_SEARCH_BOX)
    area = np.ascontiguousarray(card[sy0:sy1, sx0:sx1])
    faces = detector.detect(area)
    if not faces:
        return None
    face = max(faces, key=lambda d: d.box.area).box
    height = _HEAD_HEIGHTS * face.height
    width = height * _PHOTO_ASPECT
    cx, cy = face.center
    top = cy - _FACE_CENTRE_Y * height
    left = cx - width / 2
    x0, y0 = max(0, round(sx0 + left)), max(0, round(sy0 + top))
    x1 = min(CARD_WIDTH_PX, round(sx0 + left + width))
    y1 = min(CARD_HEIGHT_PX, round(sy0 + top + height))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return np.ascontiguousarray(card[y0:y1, x0:x1])


__all__ = ["PHOTO_BOX", "extract"]

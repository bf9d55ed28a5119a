"""Find the card in a phone photo, warp it flat and upright, and measure how well it was taken.

**Finding it.**  A card is a bright, flat, rounded rectangle of a known shape (ISO/IEC 7810 ID-1,
85.6 × 54 mm: 1.585 : 1).  Two cheap cues are tried on a copy at most 640 px wide: edges (Canny,
closed by a dilation, outer contours) and brightness (Otsu on the grey image: the card is
usually lighter than the desk).  Each outer contour's convex hull is reduced to four corners;
a candidate must be a convex quadrilateral that its hull fills (the card is solid), covering at
least 1 % of the frame, with sides in a card's proportions allowing for perspective.  Two such
candidates of similar size that do not overlap are two cards: the reader refuses the photo then.
When no outline is found (a card filling the frame, a busy desk, a white card on white paper),
the reader falls back on the text: :func:`quad_from_text` estimates the card from where its
printed lines are.

**Guidance** is measured on the rectified card: cut off (a corner at or past the frame's edge),
too far (the card under 480 px or under 10 % of the frame), blurred (variance of the Laplacian,
Pech-Pacheco et al., ICPR 2000), glare (saturated blobs over the printed fields).  The limits were
set on the shared specimen and on rendered cards blurred and lit on purpose
(tests/idcard/test_reader_real.py); they are module constants, documented here, not tuned per
deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import RGBImage
from shiren.errors import ErrorCode, InputError
from shiren.idcard.card import CARD_HEIGHT_PX, CARD_WIDTH_PX, CardSide
from shiren.models.protocols import TextLine

Quad = npt.NDArray[np.float32]
"""``(4, 2)`` float32 corners in image pixels, clockwise from the card's top-left."""

ASPECT: Final = CARD_WIDTH_PX / CARD_HEIGHT_PX
_WORK_SIDE_PX: Final = 640
_MIN_AREA_FRACTION: Final = 0.01
"""Smaller outlines are not considered (a card that small is far too far to read anyway)."""
_ASPECT_RANGE: Final = (1.3, 2.2)
"""Long side / short side of a candidate: 1.585 flat, stretched or squeezed by perspective
(a card tilted 30° away from the camera shows 1.37 or 1.83)."""
_CARD_LIKE: Final = (1.4, 1.8)
"""Candidates this close to the card's shape count in full when ranked; others at
:data:`_OFF_SHAPE_WEIGHT` of their area (the photo box; a sheet of A4, at 1.41, only just
counts in full)."""
_OFF_SHAPE_WEIGHT: Final = 0.6
_AGREE: Final = 0.03
"""Two outlines are the same when no corner differs by more than 3 % of the frame's diagonal."""
_MIN_SOLIDITY: Final = 0.88
"""Hull area / quadrilateral area: a card fills its corners (only the rounding is missing)."""
_EDGE_MARGIN: Final = 0.01
"""A corner within 1 % of the frame's edge (or past it) counts as cut off."""
MIN_CARD_SIDE_PX: Final = 480
"""Below this the card's smallest print (≈ 3.5 % of its width) is under 17 px: too far."""
MIN_CARD_AREA_FRACTION: Final = 0.10
BLUR_MIN_LAPLACIAN_VAR: Final = 60.0
"""Variance of the Laplacian of the rectified card's grey image: sharp photos and renders score
over 150; a Gaussian blur of σ ≈ 2.5 px at card scale drops them under 40."""
GLARE_MIN_FRACTION: Final = 0.015
"""Share of the field area that is blown out (every channel ≥ 250, in blobs) to call it glare."""
_SATURATED: Final = 250
_FIELD_AREAS: Final = {
    CardSide.FRONT: (0.05, 0.08, 0.62, 0.95),
    CardSide.BACK: (0.15, 0.60, 0.95, 0.95),
    CardSide.UNKNOWN: (0.05, 0.08, 0.95, 0.95),
}
"""Where the printed fields are, as fractions (x0, y0, x1, y1) of the rectified card."""


@dataclass(frozen=True, slots=True, eq=False)
class Location:
    """A card found in a photo: its corners and what they say about the framing."""

    corners: Quad
    cut_off: bool
    long_side_px: float
    area_fraction: float

    @property
    def too_far(self) -> bool:
        return self.long_side_px < MIN_CARD_SIDE_PX or self.area_fraction < MIN_CARD_AREA_FRACTION


def order_corners(points: npt.NDArray[np.float32]) -> Quad:
    """Four points as top-left, top-right, bottom-right, bottom-left, with the long side first
    (a card photographed on its side is listed from a short-side corner: it is turned later)."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ring = points[np.argsort(angles)]  # clockwise on screen (y grows down)
    start = int(np.argmin(ring.sum(axis=1)))
    quad = np.roll(ring, -start, axis=0).astype(np.float32)
    top = np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])
    side = np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])
    return np.roll(quad, -1, axis=0) if side > top else quad


def find_card(image: RGBImage) -> Location | None:
    """The one card in ``image`` (the first of :func:`outlines`), or None when no outline was
    found.  Raises :class:`~shiren.errors.InputError` ``input.idcard_multiple`` for two cards."""
    found = outlines(image)
    return found[0] if found else None


def outlines(image: RGBImage) -> list[Location]:
    """The card-shaped outlines in ``image``, best first, each once (outlines the cues agree on
    are one).

    Every cue's card-shaped outlines are pooled; one that reaches the frame's edge comes after
    every framed one (a band of a bright desk is often "card-shaped" too, but a framed card ends
    inside the frame).  They are ranked by how many cues agree on the same corners (a broken
    edge in one cue gives a corner in the wrong place, the others outvote it), then by area,
    shapes near the card's own proportions preferred.  The reader tries another one when the
    text read on the first is not the size of a card's (:data:`TEXT_HEIGHT_PX`).

    Raises :class:`~shiren.errors.InputError` ``input.idcard_multiple`` when a second framed
    outline of similar size lies beside the first (two cards, or both sides on one photocopy).
    """
    height, width = image.shape[:2]
    scale = min(1.0, _WORK_SIDE_PX / max(height, width))
    size = (round(width * scale), round(height * scale))
    small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    blurred = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    gray: npt.NDArray[np.uint8] = np.asarray(blurred, dtype=np.uint8)
    found = [
        _location((quad / scale).astype(np.float32), width, height)
        for mask in _masks(gray)
        for quad in _candidates(mask)
    ]
    tolerance = _AGREE * float(np.hypot(width, height))
    inside = _ranked([f for f in found if not f.cut_off], tolerance)
    if inside:
        _refuse_two_cards(inside)
    ranked = inside + _ranked([f for f in found if f.cut_off], tolerance)
    distinct: list[Location] = []
    for location, _ in ranked:
        if all(_corner_gap(location, kept) > tolerance for kept in distinct):
            distinct.append(location)
    return distinct


def _corner_gap(one: Location, other: Location) -> float:
    """The largest distance between corresponding corners of two outlines (px)."""
    return float(np.linalg.norm(one.corners - other.corners, axis=1).max())


TEXT_HEIGHT_PX: Final = (18.0, 90.0)
"""The median height of the lines read on a rectified card (:func:`text_height`): a card's
printed lines are 3–7 mm tall (30–70 px at 10 px/mm; 33–52 px measured on ``shiren eval
idcard``'s photos).  Outside this range the outline was not the card's own: a patch inside it
(text too tall) or a sheet round it (text too small)."""


def text_height(lines: list[TextLine]) -> float | None:
    """The median height of ``lines`` (each box's left side, px); None under 2 lines."""
    if len(lines) < 2:
        return None
    return float(np.median([np.hypot(*np.subtract(line.box[3], line.box[0])) for line in lines]))


def _support(one: Location, found: list[Location], tolerance: float) -> int:
    """How many candidates (``one`` included) have every corner within ``tolerance`` px of its
    own: how many cues saw this outline."""
    return sum(_corner_gap(one, other) <= tolerance for other in found)


def _ranked(found: list[Location], tolerance: float) -> list[tuple[Location, int]]:
    """Best first, with their support: support × area, discounted for shapes far from the
    card's proportions (a small card-shaped patch of background must not beat the card seen at
    a steep angle)."""
    scored = [(f, _support(f, found, tolerance)) for f in found]

    def score(item: tuple[Location, int]) -> float:
        f, support = item
        return (
            support * f.area_fraction * (1.0 if _near_card_shape(f.corners) else _OFF_SHAPE_WEIGHT)
        )

    return sorted(scored, key=score, reverse=True)


def _near_card_shape(quad: Quad) -> bool:
    return _CARD_LIKE[0] <= _aspect(quad) <= _CARD_LIKE[1]


def _masks(gray: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint8]]:
    """Binary maps whose outlines may be the card: edges at three contrasts (a white card on
    white paper differs by only ~10 grey levels; a strong threshold keeps a busy desk's texture
    from joining the card's outline) and the brighter-than-Otsu region."""
    kernel = np.ones((3, 3), np.uint8)
    masks = [cv2.dilate(cv2.Canny(gray, low, 3 * low), kernel, iterations=2) for low in (8, 20, 40)]
    _, bright = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks.append(cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)))
    return [np.asarray(mask, dtype=np.uint8) for mask in masks]


def _candidates(mask: npt.NDArray[np.uint8]) -> list[Quad]:
    """Card-shaped outlines in ``mask`` (outer and inner: a card may lie on a sheet of paper)."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    min_area = _MIN_AREA_FRACTION * mask.shape[0] * mask.shape[1]
    found = []
    for contour in contours:
        _, _, w, h = cv2.boundingRect(contour)
        if w * h < min_area:
            continue
        hull = np.asarray(cv2.convexHull(contour), dtype=np.int32)
        hull_area = cv2.contourArea(hull)
        if hull_area < min_area:
            continue
        quad = _four_corners(hull)
        if quad is not None and _card_shaped(quad, hull_area):
            found.append(quad)
    return found


def _four_corners(hull: npt.NDArray[np.int32]) -> Quad | None:
    perimeter = cv2.arcLength(hull, True)
    for fraction in (0.02, 0.03, 0.045, 0.065):
        approx = cv2.approxPolyDP(hull, fraction * perimeter, True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return order_corners(approx.reshape(4, 2).astype(np.float32))
    return None


def _aspect(quad: Quad) -> float:
    top = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3]))
    side = float(np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1]))
    return max(top, side) / max(1e-6, min(top, side))


def _card_shaped(quad: Quad, hull_area: float) -> bool:
    area = _area(quad)
    if area <= 0 or hull_area / area < _MIN_SOLIDITY:
        return False
    return _ASPECT_RANGE[0] <= _aspect(quad) <= _ASPECT_RANGE[1]


def _area(quad: Quad) -> float:
    return float(cv2.contourArea(quad.astype(np.float32)))


def _refuse_two_cards(ranked: list[tuple[Location, int]]) -> None:
    """A second card: card-shaped, at least half the first's size, seen by two cues or more
    (one cue alone finds card-shaped patches in a noisy background), beside the first."""
    best = ranked[0][0]
    x, y, w, h = cv2.boundingRect(best.corners)
    for other, support in ranked[1:]:
        small = other.area_fraction < 0.5 * best.area_fraction
        if small or support < 2 or not _near_card_shape(other.corners):
            continue
        ox, oy, ow, oh = cv2.boundingRect(other.corners)
        apart_x = min(x + w, ox + ow) - max(x, ox) <= 0
        apart_y = min(y + h, oy + oh) - max(y, oy) <= 0
        if apart_x or apart_y:
            raise InputError(
                "more than one card in the photo",
                code=ErrorCode.IDCARD_MULTIPLE,
                detail={"cards": 2},
            )


def _location(corners: Quad, width: int, height: int) -> Location:
    margin = _EDGE_MARGIN * max(width, height)
    outside = (corners[:, 0] < margin) | (corners[:, 0] > width - 1 - margin)
    outside |= (corners[:, 1] < margin) | (corners[:, 1] > height - 1 - margin)
    long_side = max(
        float(np.linalg.norm(corners[1] - corners[0])),
        float(np.linalg.norm(corners[2] - corners[3])),
    )
    fraction = _area(corners) / float(width * height)
    return Location(corners, bool(outside.any()), long_side, fraction)


def rectify(image: RGBImage, corners: Quad) -> RGBImage:
    """The card warped flat to 856 × 540 px, ``corners[0]`` at the top-left."""
    target = np.asarray(
        [[0, 0], [CARD_WIDTH_PX, 0], [CARD_WIDTH_PX, CARD_HEIGHT_PX], [0, CARD_HEIGHT_PX]],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    shrink = np.linalg.norm(corners[1] - corners[0]) > CARD_WIDTH_PX
    flags = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    card = cv2.warpPerspective(
        image, matrix, (CARD_WIDTH_PX, CARD_HEIGHT_PX), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(card, dtype=np.uint8)


def to_card(lines: list[TextLine], corners: Quad) -> list[TextLine]:
    """Lines read in the photo, moved into the rectified card's pixels."""
    target = np.asarray(
        [[0, 0], [CARD_WIDTH_PX, 0], [CARD_WIDTH_PX, CARD_HEIGHT_PX], [0, CARD_HEIGHT_PX]],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    out = []
    for line in lines:
        points = np.asarray(line.box, dtype=np.float32).reshape(-1, 1, 2)
        moved = cv2.perspectiveTransform(points, matrix).reshape(-1, 2)
        box = tuple((float(x), float(y)) for x, y in moved)
        out.append(TextLine(box, line.text, line.confidence, line.char_positions))
    return out


def turn_around(lines: list[TextLine]) -> list[TextLine]:
    """Lines of a card read upside down, as they are on the card turned 180°."""
    return [
        TextLine(
            tuple((CARD_WIDTH_PX - x, CARD_HEIGHT_PX - y) for x, y in line.box),
            line.text,
            line.confidence,
            line.char_positions,
        )
        for line in lines
    ]


def reads_backwards(lines: list[TextLine]) -> bool | None:
    """Whether most text (by characters) reads right to left on the card, i.e. the card is upside
    down (the recogniser lists a line it turned around from the image's bottom right); None when
    too little was read to say."""
    forward = backward = 0
    for line in lines:
        (x0, _), (x1, _) = line.box[0], line.box[1]
        if x1 > x0:
            forward += len(line.text)
        else:
            backward += len(line.text)
    if forward + backward < 6 or max(forward, backward) < 0.7 * (forward + backward):
        return None
    return backward > forward


_MIN_TEXT_CARD_PX: Final = 16
"""A card estimated from its text smaller than this is no card (degenerate boxes)."""
_TEXT_BLOCK: Final = (0.07, 0.11, 0.93, 0.92)
"""Where the printed lines of either side lie, as fractions of the card (x0, y0, x1, y1)."""


def quad_from_text(lines: list[TextLine]) -> Quad | None:
    """The card's corners estimated from the lines read on a whole photo (no outline found):
    the text block's minimum-area rectangle, oriented by the lines' reading direction and grown
    to the card's shape.  None when fewer than 3 lines were read."""
    if len(lines) < 3:
        return None
    points = np.asarray([p for line in lines for p in line.box], dtype=np.float32)
    vectors = np.asarray([np.subtract(line.box[1], line.box[0]) for line in lines])
    weights = np.asarray([len(line.text) for line in lines], dtype=np.float64)
    angle = float(np.arctan2((vectors[:, 1] * weights).sum(), (vectors[:, 0] * weights).sum()))
    along = np.asarray([np.cos(angle), np.sin(angle)])
    across = np.asarray([-np.sin(angle), np.cos(angle)])
    u, v = points @ along, points @ across
    x0, y0, x1, y1 = _TEXT_BLOCK
    card_h = max(
        float(v.max() - v.min()) / (y1 - y0), float(u.max() - u.min()) / (x1 - x0) / ASPECT
    )
    if card_h < _MIN_TEXT_CARD_PX:
        return None
    card_w = card_h * ASPECT
    left = float(u.min()) - x0 * card_w
    top = float(v.min()) - y0 * card_h
    corners = [
        (left, top),
        (left + card_w, top),
        (left + card_w, top + card_h),
        (left, top + card_h),
    ]
    return np.asarray([a * along + b * across for a, b in corners], dtype=np.float32)


def locate_from_text(lines: list[TextLine], width: int, height: int) -> Location | None:
    """A :class:`Location` from :func:`quad_from_text` (cut off when it reaches past the frame)."""
    corners = quad_from_text(lines)
    return _location(corners, width, height) if corners is not None else None


def inside(image: RGBImage, corners: Quad, shrink: float = 0.2) -> RGBImage:
    """The photo's own pixels well inside the card: the bounding box of the quadrilateral shrunk
    by ``shrink`` towards its centre (no background, no resampling)."""
    centre = corners.mean(axis=0)
    inner = centre + (corners - centre) * (1.0 - shrink)
    height, width = image.shape[:2]
    x0, y0 = np.clip(np.floor(inner.min(axis=0)), 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(inner.max(axis=0)), 0, [width, height]).astype(int)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def blur_variance(card: RGBImage) -> float:
    """Variance of the Laplacian of the rectified card's grey image (higher = sharper)."""
    gray = cv2.cvtColor(card, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def glare_fraction(card: RGBImage, side: CardSide) -> float:
    """Share of the field area that is blown out in blobs (specks and thin strokes removed)."""
    x0, y0, x1, y1 = _FIELD_AREAS[side]
    area = card[
        int(y0 * CARD_HEIGHT_PX) : int(y1 * CARD_HEIGHT_PX),
        int(x0 * CARD_WIDTH_PX) : int(x1 * CARD_WIDTH_PX),
    ]
    blown = (area.min(axis=2) >= _SATURATED).astype(np.uint8)
    blown = cv2.morphologyEx(blown, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return float(blown.mean())


__all__ = [
    "ASPECT",
    "BLUR_MIN_LAPLACIAN_VAR",
    "GLARE_MIN_FRACTION",
    "MIN_CARD_AREA_FRACTION",
    "MIN_CARD_SIDE_PX",
    "TEXT_HEIGHT_PX",
    "Location",
    "Quad",
    "blur_variance",
    "find_card",
    "glare_fraction",
    "inside",
    "locate_from_text",
    "order_corners",
    "outlines",
    "quad_from_text",
    "reads_backwards",
    "rectify",
    "text_height",
    "to_card",
    "turn_around",
]

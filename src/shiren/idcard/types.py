"""The ID-card reader's interface: :class:`CardReader` and what it returns.

``CardReader(ocr, detector).read(photo)`` reads one side of one Chinese second-generation
resident ID card (居民身份证) from a phone photo, offline, and returns a
:class:`~shiren.idcard.card.CardReading` (re-exported here with :class:`CardSide`,
:class:`CardField` and :class:`CardCheck`, so that callers import from one place)::

    decode (shiren.core.image: size and format guards, EXIF orientation)
      → locate the card (its outline; else the text on the whole photo)   locate.py
      → warp it flat to 856 × 540, turn it upright                         locate.py
      → read its lines (PP-OCRv4 behind the TextRecognizer Protocol)       models/
      → side and typed fields                                              parse.py
      → capture guidance, consistency checks, recapture cue                locate.py, checks.py
      → the portrait                                                       portrait.py

A photo that cannot be one side of one card is an :class:`~shiren.errors.InputError`: not an
image (the decoder's ``input.image_*`` codes), two cards (``input.idcard_multiple``), another
document (``input.idcard_unsupported``).  A photo in which no card could be read is *not* an
error: it returns a reading with side ``unknown`` and the guidance ``idcard.not_found`` (what a
capture page tells the user), like every other framing problem.

Models are loaded once, by the constructor's caller (:meth:`CardReader.load` for the real ones);
a reader is then used for many photos.  It logs nothing: what it reads is personal information.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import RGBImage
from shiren.core.image import ImageLimits, decode_image, image_from_array
from shiren.errors import ErrorCode, InputError
from shiren.idcard import checks, locate, parse, portrait
from shiren.idcard.card import CardCheck, CardField, CardReading, CardSide
from shiren.models.protocols import FaceDetector, TextLine, TextRecognizer
from shiren.reasons import ReasonCode as R

OCR_MODEL: Final = "ppocr-v4"
FACE_MODEL: Final = "blazeface"
DET_MAX_SIDE_PX: Final = 608
"""The text detector's input: the rectified 856 px card shrunk to 608 × 384 px (lines are still
read from the full-size card); 35–40 ms sooner on one core than 736 px.  On ``shiren eval
idcard``'s photos (seed 0, 200 per level) every field read as well at 576 or 608 px as at 736 px
at ``none`` and ``moderate``, and within ± 3 cards per field at ``strong``; at 512 px the
one-character sex was lost on 4 of 100 ``moderate`` fronts, so 608 keeps a margin.  A whole
photo read when no outline is found is shrunk to it as well (its fields read the same as at
736 px on 100 ``moderate`` photos; 60 names instead of 64 on 100 ``strong`` ones)."""
_MAX_OUTLINES: Final = 3
"""Outlines read at most before the text on the whole photo is tried."""
_OTHER_OUTLINE: Final = 1.5
"""After an outline whose text was too tall (too small), only outlines at least this many
times larger (smaller) are tried."""
CARD_LIMITS: Final = ImageLimits(max_decode_side_px=2048)
"""Decoder limits: the defaults (15 MiB, 40 Mpx) and phone photos shrunk to 2048 px on their
long side while decoding (a card filling half of it still has more pixels than the 856 px the
reader warps it to)."""


@dataclass(frozen=True, slots=True, eq=False)
class _Found:
    """One attempt at the card: where it is, the rectified image, the lines read on it."""

    location: locate.Location
    card: RGBImage
    lines: list[TextLine]
    side: CardSide


class CardReader:
    """Reads one side of a resident ID card from a photo (see the module docstring).

    ``ocr`` reads text (:class:`~shiren.models.protocols.TextRecognizer`); ``detector``, when
    given, re-centres the portrait crop on the face found in the photo box (without one the crop
    is the photo box itself).
    """

    def __init__(self, ocr: TextRecognizer, detector: FaceDetector | None = None) -> None:
        self.ocr = ocr
        self.detector = detector

    @classmethod
    def load(cls) -> CardReader:
        """A reader with the real models (PP-OCRv4, BlazeFace), verified and loaded once."""
        from shiren.models.registry import build_model

        ocr = build_model(OCR_MODEL, det_max_side_px=DET_MAX_SIDE_PX)
        return cls(ocr, build_model(FACE_MODEL))

    def read(
        self,
        image: bytes | npt.NDArray[np.uint8],
        *,
        expected_id_number: str | None = None,
        today: date | None = None,
        expected_side: CardSide | str | None = None,
    ) -> CardReading:
        """Read one photo (encoded bytes, or an RGB uint8 array).

        ``expected_id_number``: the number the applicant gave (``idcard.number_mismatch``).
        ``today``: the day expiry is judged on (default: today in China Standard Time).
        ``expected_side``: the side the capture asked for (``idcard.wrong_side`` otherwise).
        Raises :class:`~shiren.errors.InputError` for what is not one side of one card (and
        ``input.invalid`` for an ``expected_side`` that is not ``front`` or ``back``).
        """
        wanted = _side(expected_side)
        pixels, scale = _decode(image)
        found = self._find(pixels)
        if found is not None and (kind := parse.other_document(found.lines)) is not None:
            raise InputError(
                "this is not a resident ID card",
                code=ErrorCode.IDCARD_UNSUPPORTED,
                detail={"document": kind},
            )
        if found is None or found.side is CardSide.UNKNOWN:
            return _not_found(found, scale)
        fields = _fields(found)
        glare = locate.glare_fraction(found.card, found.side)
        sharpness = locate.blur_variance(found.card)
        guidance = _guidance(found, glare, sharpness, wanted)
        run = checks.run(
            found.side,
            fields,
            card=found.card,
            glare=glare,
            photo_region=locate.inside(pixels, found.location.corners),
            expected_id_number=expected_id_number,
            today=today or checks.today_in_china(),
        )
        face = portrait.extract(found.card, self.detector) if found.side is CardSide.FRONT else None
        return CardReading(
            side=found.side,
            fields=fields,
            checks=run,
            portrait=face,
            corners=_corners(found.location.corners, scale),
            guidance=guidance,
            metrics=_metrics(found.location, glare, sharpness),
        )

    def _find(self, pixels: RGBImage) -> _Found | None:
        """The card by its outline; when that fails or reads as neither side (nor as another
        document), by the text on the whole photo.  When neither reads, the outline attempt
        (if any) is kept for its framing hints.

        An outline whose text is not the size of a card's print (a patch inside the card, a
        sheet round it) is not the card: a larger (or smaller) outline is tried next, up to
        :data:`_MAX_OUTLINES` in all."""
        first: _Found | None = None
        wanted: tuple[float, float] | None = None  # area fractions the next outline may have
        tried = 0
        for location in locate.outlines(pixels):
            if tried == _MAX_OUTLINES:
                break
            if wanted is not None and not wanted[0] < location.area_fraction < wanted[1]:
                continue
            tried += 1
            card = locate.rectify(pixels, location.corners)
            attempt = _upright(location, card, self.ocr.read(card))
            height = locate.text_height(attempt.lines)
            low, high = locate.TEXT_HEIGHT_PX
            fits = height is None or low <= height <= high
            if first is None or fits:
                first = attempt
            if height is None or fits:
                if attempt.side is not CardSide.UNKNOWN or parse.other_document(attempt.lines):
                    return attempt
                break  # the card's own outline, read as neither side: try the whole photo
            area = location.area_fraction
            wanted = (area * _OTHER_OUTLINE, 1.0) if height > high else (0.0, area / _OTHER_OUTLINE)
        raw = self.ocr.read(pixels)
        height, width = pixels.shape[:2]
        by_text = locate.locate_from_text(raw, width, height)
        if by_text is None:
            return first
        card = locate.rectify(pixels, by_text.corners)
        second = _upright(by_text, card, locate.to_card(raw, by_text.corners))
        if second.side is CardSide.UNKNOWN and not parse.other_document(second.lines):
            return first or second
        return second


def _decode(image: bytes | npt.NDArray[np.uint8]) -> tuple[RGBImage, float]:
    """Untrusted bytes through the guarded decoder, or a checked array; big ones shrunk."""
    if isinstance(image, bytes | bytearray | memoryview):
        decoded = decode_image(image, CARD_LIMITS)
        return decoded.pixels, decoded.scale
    pixels = image_from_array(image, CARD_LIMITS)
    side = max(pixels.shape[:2])
    limit = CARD_LIMITS.max_decode_side_px or side
    if side <= limit:
        return pixels, 1.0
    scale = limit / side
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)), scale


def _upright(location: locate.Location, card: RGBImage, lines: list[TextLine]) -> _Found:
    """The attempt with the card turned upright when its text reads backwards; two different
    numbers on it mean two cards."""
    if locate.reads_backwards(lines):
        card = np.ascontiguousarray(card[::-1, ::-1])
        lines = locate.turn_around(lines)
        corners = np.roll(location.corners, -2, axis=0)
        location = locate.Location(
            corners, location.cut_off, location.long_side_px, location.area_fraction
        )
    numbers = {number.value for number in parse.id_numbers(lines)}
    if len(numbers) > 1:
        raise InputError(
            "more than one card in the photo",
            code=ErrorCode.IDCARD_MULTIPLE,
            detail={"cards": len(numbers)},
        )
    return _Found(location, card, lines, parse.side_of(lines))


def _fields(found: _Found) -> dict[str, CardField]:
    if found.side is CardSide.FRONT:
        return parse.parse_front(found.lines)
    return parse.parse_back(found.lines)


def _side(expected: CardSide | str | None) -> CardSide | None:
    if expected is None:
        return None
    if str(expected) not in (CardSide.FRONT, CardSide.BACK):
        raise InputError(
            "expected_side must be front or back",
            code=ErrorCode.INPUT_INVALID,
            detail={"field": "expected_side", "allowed": [CardSide.FRONT, CardSide.BACK]},
        )
    return CardSide(str(expected))


def _guidance(
    found: _Found, glare: float, sharpness: float, expected: CardSide | None
) -> tuple[str, ...]:
    codes = []
    if expected is not None and expected is not found.side:
        codes.append(R.IDCARD_WRONG_SIDE)
    if found.location.cut_off:
        codes.append(R.IDCARD_CUT_OFF)
    if found.location.too_far:
        codes.append(R.IDCARD_TOO_FAR)
    if sharpness < locate.BLUR_MIN_LAPLACIAN_VAR:
        codes.append(R.IDCARD_BLURRY)
    if glare >= locate.GLARE_MIN_FRACTION:
        codes.append(R.IDCARD_GLARE)
    return tuple(str(code) for code in codes)


def _metrics(location: locate.Location, glare: float, sharpness: float) -> dict[str, float]:
    return {
        "laplacian_var": sharpness,
        "glare_fraction": glare,
        "card_long_side_px": location.long_side_px,
        "card_area_fraction": location.area_fraction,
    }


def _corners(corners: locate.Quad, scale: float) -> tuple[tuple[float, float], ...]:
    return tuple((float(x) / scale, float(y) / scale) for x, y in corners)


def _not_found(found: _Found | None, scale: float) -> CardReading:
    """No card could be read: guidance only (with the framing hints that still apply)."""
    codes = [str(R.IDCARD_NOT_FOUND)]
    corners = None
    if found is not None:
        corners = _corners(found.location.corners, scale)
        if found.location.cut_off:
            codes.append(str(R.IDCARD_CUT_OFF))
        if found.location.too_far:
            codes.append(str(R.IDCARD_TOO_FAR))
        if locate.blur_variance(found.card) < locate.BLUR_MIN_LAPLACIAN_VAR:
            codes.append(str(R.IDCARD_BLURRY))
    return CardReading(CardSide.UNKNOWN, {}, (), None, corners, tuple(codes))


__all__ = [
    "CARD_LIMITS",
    "FACE_MODEL",
    "OCR_MODEL",
    "CardCheck",
    "CardField",
    "CardReader",
    "CardReading",
    "CardSide",
]

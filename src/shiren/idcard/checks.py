"""Consistency checks of what was read on a card, each named by a stable reason code.

A :class:`~shiren.idcard.card.CardCheck` says ``passed=True`` (fine on this point), ``False`` (the
failure its code names was found) or ``None`` (not applicable, or a field it needs was not read).
The checks are pure functions of the fields (and of the rectified image for the recapture cue):

front
    ``idcard.number_invalid`` — the number fails GB 11643-1999 (region, date, ISO 7064 MOD 11-2
    check character; :mod:`shiren.domain.idnumber`);
    ``idcard.birth_date_mismatch`` — the printed birth date is not the one in digits 7–14;
    ``idcard.sex_mismatch`` — the printed sex is not the one digit 17 encodes (odd = male);
    ``idcard.number_mismatch`` — the number is not the one the caller expected;
back
    ``idcard.expired`` — ``valid_until`` is before today (China Standard Time);
    ``idcard.validity_invalid`` — the period is not one the law allows: 5, 10 or 20 years, or
    长期 (居民身份证法 art. 5), starting no later than today;
both
    ``idcard.fields_missing`` — a field of the side could not be read;
    ``idcard.recapture_suspected`` — cues of a photo of a screen or of a printout: moiré (a
    screen's pixel grid or a printer's halftone, aliased by the camera), a grey photocopy, an
    oversaturated screen, a sheet of glare.  A *review signal* only: no labelled recaptures were
    available, so the moiré threshold is set on honest synthetic photos (false alarms) and its
    catch rate measured on simulated recaptures; it never rejects a card by itself; its score
    and cues are in ``detail``.

No ``detail`` holds a name or a full ID number: details go to logs and API responses.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import RGBImage
from shiren.domain.idnumber import IdNumberError, parse
from shiren.idcard.card import BACK_FIELDS, FRONT_FIELDS, LONG_TERM, CardCheck, CardField, CardSide
from shiren.reasons import ReasonCode as R

_CST: Final = timezone(timedelta(hours=8), "CST")
_TERMS_YEARS: Final = (5, 10, 20)
RECAPTURE_THRESHOLD: Final = 0.5
"""Score at which ``idcard.recapture_suspected`` fails (each cue is scaled to 0..1 first)."""
MOIRE_PROMINENCE: Final = 0.55
"""Moiré: the tallest isolated peak of the photo's high-frequency spectrum over the card, in
log10 power above its own neighbourhood (:func:`moire_peak`), at which the moiré cue reaches
0.5 (it is scaled 0 → 1 over ± 0.1 round it).  Set on ``shiren eval idcard``'s honest synthetic
photos (200 per level, seed 0): at most 0.466 / 0.527 / 0.602 (levels none / moderate / strong;
98th percentiles 0.41 / 0.50 / 0.52), so none flagged at ``moderate`` (false alarms ≤ 2 %) and 1 %
at ``strong``.  Its catch rate was measured on simulated screen and print recaptures only
(:mod:`shiren.eval.idcard_recapture`; docs/IDCARD.md): a sharp recapture whose grid the camera
aliases is caught, a blurred one shows no moiré."""
_TILE: Final = 128
_TILE_STEP: Final = 64
_MAX_TILES: Final = 48
_BAND: Final = (0.35, 0.98)
"""Spectrum radii searched, over the Nyquist frequency (periods of 2.0–5.7 photo pixels)."""
_NEIGHBOUR_BINS: Final = (2, 3, 4)
"""A peak is compared with the spectrum these many bins away in four directions (the Hann
window's main lobe is 2 bins wide)."""
_SATURATION_LOW: Final = 0.01
"""Mean HSV saturation under this: a grey photocopy (a real card is faintly coloured: the
specimen 0.05, synthetic cards 0.019–0.079 even under strong colour casts)."""
_SATURATION_HIGH: Final = (0.35, 0.55)
"""Mean saturation ramp: a screen shown to the camera oversaturates the pale card."""
_GLARE_RANGE: Final = (0.6, 0.9)
"""Blown-out share of the field area, scaled 0 → 1: only a sheet of glare counts (a glossy screen
or a laminated printout under a lamp).  A spot is normal on a laminated card: synthetic genuine
cards with a lamp's reflection reach 0.5 (``shiren eval idcard``, strong level); those get the
``idcard.glare`` guidance instead."""

Fields = dict[str, CardField]


def _check(code: R, passed: bool | None, **detail: object) -> CardCheck:
    return CardCheck(str(code), passed, dict(detail))


def today_in_china() -> date:
    """Today in China Standard Time (UTC+8): cards expire on Beijing's calendar."""
    return datetime.now(UTC).astimezone(_CST).date()


def number_valid(fields: Fields, today: date) -> CardCheck:
    """``idcard.number_invalid``: the number read is a well-formed GB 11643 number."""
    number = fields.get("id_number")
    if number is None:
        return _check(R.IDCARD_NUMBER_INVALID, None, reason="not_read")
    try:
        parse(number.value, today=today)
    except IdNumberError as exc:
        return _check(R.IDCARD_NUMBER_INVALID, False, reason=str(exc.reason))
    return _check(R.IDCARD_NUMBER_INVALID, True)


def _digits_birth(number: str) -> date | None:
    """The birth date in an 18-character number's digits 7–14, even when its check character is
    wrong (a misread check digit must not hide a date that disagrees)."""
    if len(number) != 18 or not number[:17].isdigit():
        return None
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def birth_matches(fields: Fields) -> CardCheck:
    """``idcard.birth_date_mismatch``: the printed birth date is the number's."""
    number, printed = fields.get("id_number"), fields.get("birth_date")
    coded = _digits_birth(number.value) if number is not None else None
    if coded is None or printed is None:
        return _check(R.IDCARD_BIRTH_DATE_MISMATCH, None, reason="not_read")
    same = coded.isoformat() == printed.value
    return _check(R.IDCARD_BIRTH_DATE_MISMATCH, same)


def sex_matches(fields: Fields) -> CardCheck:
    """``idcard.sex_mismatch``: the printed sex is the one digit 17 encodes (odd = male)."""
    number, printed = fields.get("id_number"), fields.get("sex")
    if number is None or printed is None or len(number.value) != 18:
        return _check(R.IDCARD_SEX_MISMATCH, None, reason="not_read")
    if not number.value[16].isdigit() or printed.value not in ("男", "女"):
        return _check(R.IDCARD_SEX_MISMATCH, None, reason="unreadable")
    coded = "男" if int(number.value[16]) % 2 == 1 else "女"
    return _check(R.IDCARD_SEX_MISMATCH, coded == printed.value)


def _normalised(number: str) -> str:
    value = unicodedata.normalize("NFKC", number).strip().upper().replace(" ", "")
    try:
        return parse(value).number  # a legacy 15-digit number becomes its 18-character form
    except IdNumberError:
        return value


def number_matches(fields: Fields, expected: str | None) -> CardCheck:
    """``idcard.number_mismatch``: the number read is ``expected`` (after normalising both);
    ``detail.differing`` counts the positions that differ (one or two: likely a misread)."""
    number = fields.get("id_number")
    if expected is None:
        return _check(R.IDCARD_NUMBER_MISMATCH, None, reason="not_expected")
    if number is None:
        return _check(R.IDCARD_NUMBER_MISMATCH, None, reason="not_read")
    read, wanted = _normalised(number.value), _normalised(expected)
    differing = sum(a != b for a, b in zip(read, wanted, strict=False))
    differing += abs(len(read) - len(wanted))
    return _check(R.IDCARD_NUMBER_MISMATCH, differing == 0, differing=differing)


def not_expired(fields: Fields, today: date) -> CardCheck:
    """``idcard.expired``: the card is still valid on ``today`` (valid through ``valid_until``)."""
    until = fields.get("valid_until")
    if until is None:
        return _check(R.IDCARD_EXPIRED, None, reason="not_read")
    if until.value == LONG_TERM:
        return _check(R.IDCARD_EXPIRED, True, long_term=True)
    end = date.fromisoformat(until.value)
    return _check(R.IDCARD_EXPIRED, end >= today, days_left=(end - today).days)


def _add_years(start: date, years: int) -> tuple[date, ...]:
    """``start`` plus whole years; 29 February lands on 28 February or 1 March."""
    try:
        return (start.replace(year=start.year + years),)
    except ValueError:
        return (date(start.year + years, 2, 28), date(start.year + years, 3, 1))


def validity_lawful(fields: Fields, today: date) -> CardCheck:
    """``idcard.validity_invalid``: a 5-, 10- or 20-year period or 长期, begun by ``today``."""
    start, until = fields.get("valid_from"), fields.get("valid_until")
    if start is None or until is None:
        return _check(R.IDCARD_VALIDITY_INVALID, None, reason="not_read")
    begun = date.fromisoformat(start.value)
    if begun > today:
        return _check(R.IDCARD_VALIDITY_INVALID, False, reason="starts_in_future")
    if until.value == LONG_TERM:
        return _check(R.IDCARD_VALIDITY_INVALID, True, years="long_term")
    end = date.fromisoformat(until.value)
    for years in _TERMS_YEARS:
        if end in _add_years(begun, years):
            return _check(R.IDCARD_VALIDITY_INVALID, True, years=years)
    return _check(R.IDCARD_VALIDITY_INVALID, False, reason="term")


def fields_read(side: CardSide, fields: Fields) -> CardCheck:
    """``idcard.fields_missing``: every field of the side was read."""
    wanted = FRONT_FIELDS if side is CardSide.FRONT else BACK_FIELDS
    missing = [name for name in wanted if name not in fields]
    return _check(R.IDCARD_FIELDS_MISSING, not missing, missing=missing)


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


@cache
def _spectrum_tools() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """The 2-D Hann window of a tile and the bins of the half spectrum that are searched:
    the band of :data:`_BAND`, without the two axes (a card's edges and text rows put energy
    there on any photo) and without the lines of JPEG's 8-pixel block grid (any upload's
    compression puts energy there)."""
    n = _TILE
    window = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    ky = np.minimum(np.arange(n), n - np.arange(n))[:, None]
    kx = np.arange(n // 2 + 1)[None, :]
    radius = np.hypot(kx, ky) / (n / 2)
    block = n // 8
    grid_y = np.minimum(ky % block, block - ky % block) <= 1
    grid_x = np.minimum(kx % block, block - kx % block) <= 1
    band = (radius > _BAND[0]) & (radius < _BAND[1]) & (kx > 3) & (ky > 3) & ~(grid_y | grid_x)
    return window, band


def moire_peak(region: RGBImage) -> float:
    """How far the strongest isolated peak of ``region``'s high-frequency spectrum stands above
    the spectrum round it (log10 power; 0 on a region under 128 px).

    The power spectrum is the mean over 128-px tiles at half-tile steps (Welch's method: the
    periodic pattern of a screen's pixel grid or a printer's halftone is everywhere, the card's
    content is not; at most 48 tiles).  A bin's height is compared with the mean of the bins
    2–4 bins away on both sides, in the direction where those are highest: a peak
    stands out every way; a ridge (a motion blur's ripple, a row of text) does not stand out
    along itself.  Give it the photo's own pixels over the card
    (:func:`shiren.idcard.locate.inside`): a screen's grid is periodic in the camera's pixels,
    and warping the card flat smears it."""
    gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if min(gray.shape) < _TILE:
        return 0.0
    window, band = _spectrum_tools()
    tiles = np.lib.stride_tricks.sliding_window_view(gray, (_TILE, _TILE))
    tiles = tiles[::_TILE_STEP, ::_TILE_STEP].reshape(-1, _TILE, _TILE)
    if len(tiles) > _MAX_TILES:
        tiles = tiles[np.linspace(0, len(tiles) - 1, _MAX_TILES).round().astype(int)]
    tiles = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) * window
    total = np.zeros((_TILE, _TILE), np.float32)
    for tile in tiles:  # OpenCV's FFT, tile by tile: 3 × numpy's speed here
        spectrum = cv2.dft(np.ascontiguousarray(tile), flags=cv2.DFT_COMPLEX_OUTPUT)
        total += spectrum[..., 0] ** 2 + spectrum[..., 1] ** 2
    power = np.log10(total[:, : _TILE // 2 + 1] / len(tiles) + 1e-3)
    d = max(_NEIGHBOUR_BINS)
    # The half spectrum wraps round in y (negative frequencies at the bottom), not in x.
    padded = np.pad(np.pad(power, ((d, d), (0, 0)), mode="wrap"), ((0, 0), (d, d)), mode="edge")
    h, w = power.shape

    def side(uy: int, ux: int) -> npt.NDArray[np.float64]:
        """The mean of the bins :data:`_NEIGHBOUR_BINS` away along ``±(uy, ux)``."""
        found = [
            padded[d + r * uy : d + r * uy + h, d + r * ux : d + r * ux + w]
            + padded[d - r * uy : d - r * uy + h, d - r * ux : d - r * ux + w]
            for r in _NEIGHBOUR_BINS
        ]
        return np.asarray(sum(found), np.float64) / (2 * len(found))

    around = np.max([side(0, 1), side(1, 0), side(1, 1), side(1, -1)], axis=0)
    return float((power - around)[band].max())


def recapture(card: RGBImage, glare: float, photo_region: RGBImage | None = None) -> CardCheck:
    """``idcard.recapture_suspected``: the strongest of three cues, each scaled to 0..1 —
    moiré (a screen's pixel grid, a printer's halftone) in ``photo_region`` (default: the
    rectified ``card``), colour (grey photocopy, oversaturated screen) and sheet glare;
    suspected at :data:`RECAPTURE_THRESHOLD`.  A review signal."""
    moire = moire_peak(photo_region if photo_region is not None else card)
    saturation = float(cv2.cvtColor(card, cv2.COLOR_RGB2HSV)[:, :, 1].mean() / 255.0)
    cues = {
        "moire": _ramp(moire, MOIRE_PROMINENCE - 0.1, MOIRE_PROMINENCE + 0.1),
        "colour": max(
            1.0 if saturation < _SATURATION_LOW else 0.0, _ramp(saturation, *_SATURATION_HIGH)
        ),
        "glare": _ramp(glare, *_GLARE_RANGE),
    }
    score = max(cues.values())
    return _check(
        R.IDCARD_RECAPTURE_SUSPECTED,
        score < RECAPTURE_THRESHOLD,
        score=round(score, 4),
        cues={k: round(v, 4) for k, v in cues.items()},
        moire_prominence=round(moire, 3),
        saturation=round(saturation, 4),
    )


def run(
    side: CardSide,
    fields: Fields,
    *,
    card: RGBImage | None,
    glare: float,
    photo_region: RGBImage | None = None,
    expected_id_number: str | None,
    today: date,
) -> tuple[CardCheck, ...]:
    """Every check that applies to ``side``, in a fixed order (none for an unknown side)."""
    if side is CardSide.UNKNOWN:
        return ()
    if side is CardSide.FRONT:
        found = [
            number_valid(fields, today),
            birth_matches(fields),
            sex_matches(fields),
            number_matches(fields, expected_id_number),
        ]
    else:
        found = [not_expired(fields, today), validity_lawful(fields, today)]
    found.append(fields_read(side, fields))
    if card is not None:
        found.append(recapture(card, glare, photo_region))
    return tuple(found)


__all__ = [
    "MOIRE_PROMINENCE",
    "RECAPTURE_THRESHOLD",
    "birth_matches",
    "fields_read",
    "moire_peak",
    "not_expired",
    "number_matches",
    "number_valid",
    "recapture",
    "run",
    "sex_matches",
    "today_in_china",
    "validity_lawful",
]

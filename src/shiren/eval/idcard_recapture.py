"""Simulated recaptures of an ID card: a photo of the card shown on a screen, or of a printout.

``idcard.recapture_suspected`` (:mod:`shiren.idcard.checks`) is a review signal for uploads that
are not a photo of the card itself.  No labelled recaptures are available, so its moiré cue is
set on honest synthetic photos (:mod:`shiren.eval.idcard_photo`: the false-alarm rate) and its
catch rate is measured on the simulations below — on *simulations only*: real screens, printers
and phone cameras vary more, and this says nothing about a recapture made to evade the cue.

Both are drawn finely in the plane of the screen or paper, blurred by the lens (and by the
level's defocus), sampled by a colour-filter-array sensor (RGGB Bayer, bilinear demosaicing) at
2 × the photo's resolution, and shrunk to the photo by area averaging, as a phone app shrinks its
photo: the moiré is the beat between the screen's (or the halftone's) grid and the sensor's, as
in a real camera, and a blurred recapture shows none.

``screen``
    The card shown on a phone or monitor at 0.6–1.6 screen pixels per card pixel (514–1,370
    pixels across the card), each pixel three R, G, B stripes with a dimmed row for the gap
    between pixel rows; the display's tone (gamma 0.8–1.2, a blue white point, raised blacks),
    a dark app background and a bezel round it; on half of them a specular band (a window
    reflected by the glass); the camera's white balance taking back half of the cast.
``print``
    The card printed at 100–150 % by a four-colour AM halftone (C 15°, M 75°, Y 0°, K 45°;
    100–180 lines per inch, cosine dots, 8 % dot gain) on paper with fibres and mottle, either
    cut out or on its sheet, under a brightness ramp.

The camera follows the photo level's :class:`~shiren.eval.idcard_photo.PhotoParams` (placement,
tilt, perspective, defocus, motion blur, noise, JPEG quality).  :func:`measure` reads honest
photos and recaptures with a reader and reports the recapture score's distribution, the
false-alarm rate and the catch rate::

    python -m shiren.eval.idcard_recapture --cards 100 --level moderate
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from shiren.eval.idcard_content import draw_person
from shiren.eval.idcard_eval import ReaderLike, rate, read_or_refusal
from shiren.eval.idcard_photo import LEVELS, PARAMS, PhotoParams, table
from shiren.eval.idcard_render import FlatCard, print_portrait
from shiren.eval.idcard_synth import CardGenerator, FaceBank, SynthConfig

RGBImage = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
KINDS: Final = ("screen", "print")
_SIZE: Final = (1280, 960)
_MARGIN_PX: Final = 12
_SENSOR: Final = 2
"""The sensor's pixels per photo pixel (the phone shrinks its photo for the upload)."""
_SUBPIXELS: Final = 3
"""A screen pixel drawn as 3 × 3 cells (three colour stripes; a dimmed row for the gap)."""
_PRINT_FINE: Final = 4
"""The printout is drawn at 4 × the card's pixels (a halftone cell spans 5–10 of them)."""
_PX_PER_MM: Final = 10.0
"""Flat card pixels per millimetre (:class:`~shiren.eval.idcard_render.CardPainter`'s default)."""
_INK_ANGLES_DEG: Final = (15.0, 75.0, 0.0, 45.0)
_INK_ABSORB: Final = np.array(
    [[0.88, 0.22, 0.04], [0.06, 0.84, 0.18], [0.01, 0.06, 0.88], [0.9, 0.9, 0.9]], np.float32
)
"""How much of the light each ink (C, M, Y, K; rows) takes from R, G, B."""


@dataclass(frozen=True, slots=True)
class Recapture:
    """A simulated recapture upload: ``jpeg`` bytes, the card's corners in the photo (its own
    top-left first) and what was drawn (``pitch`` screen pixels per card pixel, ``lpi``, …)."""

    jpeg: bytes
    kind: str
    corners: F64
    settings: dict[str, float]


def recapture(card: FlatCard, kind: str, level: str, rng: np.random.Generator) -> Recapture:
    """``card`` shown on a screen (``kind="screen"``) or printed (``"print"``), photographed at
    ``level`` (:data:`~shiren.eval.idcard_photo.LEVELS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown recapture {kind!r}; expected one of {KINDS}")
    p = PARAMS[level]
    h, w = card.pixels.shape[:2]
    corners = _place(w, h, p, rng)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    homography = np.asarray(
        cv2.getPerspectiveTransform(src, corners.astype(np.float32)), np.float64
    )
    background = table(_SIZE, rng, plain=level == "none").astype(np.float32)
    defocus = float(rng.uniform(*p.blur_sigma_px))
    if kind == "screen":
        image, settings = _screen(card, homography, background, defocus, rng)
    else:
        image, settings = _print(card, homography, background, defocus, rng)
    if rng.random() < p.motion_blur:
        image = _motion_blur(image, int(rng.integers(p.motion_px[0], p.motion_px[1] + 1)), rng)
    if p.noise_sigma[1] > 0:
        noise = np.float32(rng.uniform(*p.noise_sigma))
        image = image + noise * rng.standard_normal(size=image.shape, dtype=np.float32)
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    quality = int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return Recapture(buf.tobytes(), kind, corners, {**settings, "defocus_px": defocus})


def _place(w: int, h: int, p: PhotoParams, rng: np.random.Generator) -> F64:
    """The card's corners in the photo: scaled, tilted (upside down as often as the level
    says), its corners jittered, placed inside the frame."""
    angle = float(rng.uniform(-p.tilt_deg, p.tilt_deg)) if p.tilt_deg else 0.0
    if rng.random() < p.upside_down:
        angle += 180.0
    theta = np.deg2rad(angle)
    turn = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    width_px = rng.uniform(*p.width_share) * _SIZE[0]
    jitter = rng.uniform(-p.jitter, p.jitter, size=(4, 2)) * w
    base = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) - (w / 2, h / 2)
    for _ in range(40):
        corners = ((base + jitter) * (width_px / w)) @ turn.T
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        room = np.array(_SIZE, np.float64) - 2 * _MARGIN_PX - (hi - lo)
        if (room >= 0).all():
            placed: F64 = corners + _MARGIN_PX - lo + rng.uniform(0.0, 1.0, size=2) * room
            return placed
        width_px *= 0.92
    raise AssertionError("the card never fitted in the photo")


def _warp_fine(
    fine: F32, to_photo: npt.NDArray[np.float64], fine_per_photo_px: float, defocus: float,
    rng: np.random.Generator,
) -> F32:  # fmt: skip
    """A finely drawn picture (``to_photo`` maps its pixels to the photo's) as a phone sees it:
    blurred by the lens (0.35–0.7 sensor pixels) and by ``defocus`` (photo pixels), sampled by a
    colour-filter-array sensor (RGGB Bayer, bilinear demosaicing) with :data:`_SENSOR` × the
    photo's resolution — the sampling that makes the moiré — and shrunk to the photo's size by
    area averaging, as a phone's app shrinks its photo."""
    lens = float(rng.uniform(0.35, 0.7))
    sigma = float(np.hypot(lens, defocus * _SENSOR)) * fine_per_photo_px / _SENSOR
    blurred = cv2.GaussianBlur(fine, (0, 0), sigma)
    to_sensor = np.diag([_SENSOR, _SENSOR, 1.0]) @ to_photo
    size = (_SIZE[0] * _SENSOR, _SIZE[1] * _SENSOR)
    sensor = cv2.warpPerspective(blurred, to_sensor, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    raw = np.clip(np.asarray(sensor) * 64, 0, 65535).astype(np.uint16)
    mosaic = np.empty(raw.shape[:2], np.uint16)
    mosaic[0::2, 0::2] = raw[0::2, 0::2, 0]  # R
    mosaic[0::2, 1::2] = raw[0::2, 1::2, 1]  # G
    mosaic[1::2, 0::2] = raw[1::2, 0::2, 1]  # G
    mosaic[1::2, 1::2] = raw[1::2, 1::2, 2]  # B
    # OpenCV names a Bayer pattern by the second row's first two cells: RGGB is its "BG".
    colour = cv2.cvtColor(mosaic, cv2.COLOR_BayerBG2RGB).astype(np.float32) / 64
    return np.asarray(cv2.resize(colour, _SIZE, interpolation=cv2.INTER_AREA), np.float32)


def _mask(shape: tuple[int, int], to_photo: npt.NDArray[np.float64]) -> F32:
    """Where a ``shape`` ``(h, w)`` rectangle of the plane ``to_photo`` maps from lands."""
    inside = np.ones(shape, np.float32)
    out = cv2.warpPerspective(inside, to_photo, _SIZE, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    return np.asarray(out, np.float32)[..., None]


def _shift_scale(dx: float, dy: float, scale: float) -> npt.NDArray[np.float64]:
    """The homography ``p -> p / scale - (dx, dy)`` (a finer plane onto card pixels)."""
    return np.array([[1 / scale, 0, -dx], [0, 1 / scale, -dy], [0, 0, 1]], np.float64)


def _photo_px_per_card_px(homography: npt.NDArray[np.float64], w: int, h: int) -> float:
    corners = cv2.perspectiveTransform(
        np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), homography
    )[0]
    area = float(cv2.contourArea(corners.astype(np.float32)))
    return float(np.sqrt(area / (w * h)))


def _screen(
    card: FlatCard, homography: npt.NDArray[np.float64], background: F32, lens: float,
    rng: np.random.Generator,
) -> tuple[F32, dict[str, float]]:  # fmt: skip
    h, w = card.pixels.shape[:2]
    pitch = float(rng.uniform(0.6, 1.6))  # screen pixels per card pixel
    margin = rng.uniform(0.04, 0.15, size=2) * (w, h)  # app background round the card (card px)
    bezel = 0.05 * w
    # The picture on the screen's own pixel grid (its origin at the screen's corner).
    cols = round((w + 2 * margin[0]) * pitch)
    rows = round((h + 2 * margin[1]) * pitch)
    shown = np.full((rows, cols, 3), np.float32(rng.uniform(10, 45)), np.float32)
    x0, y0 = round(margin[0] * pitch), round(margin[1] * pitch)
    size = (round(w * pitch), round(h * pitch))
    pixels = cv2.resize(card.pixels.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(card.alpha.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_AREA)
    region = shown[y0 : y0 + size[1], x0 : x0 + size[0]]
    region[:] = pixels * alpha[..., None] + region * (1 - alpha[..., None])
    gamma = float(rng.uniform(0.8, 1.2))
    cast = np.array([rng.uniform(0.88, 0.97), rng.uniform(0.96, 1.0), 1.0], np.float32)
    black = np.float32(rng.uniform(8, 28))
    shown = black + (255 - black) * (shown / 255) ** gamma * cast
    # Each screen pixel as 3 × 3 cells: R, G, B stripes side by side, the last row dimmed (the
    # gap between pixel rows); the total light kept.
    s = _SUBPIXELS
    fine = np.zeros((rows * s, cols * s, 3), np.float32)
    for c in range(3):
        fine[:, c::s, c] = np.repeat(shown[..., c], s, axis=0) * s
    fine[s - 1 :: s] *= np.float32(0.3)
    fine *= np.float32(s / (s - 0.7))
    to_card = _shift_scale(margin[0], margin[1], pitch * s)
    to_photo = homography @ to_card
    fine_per_photo = pitch * s / _photo_px_per_card_px(homography, w, h)
    screen = _warp_fine(fine, to_photo, fine_per_photo, lens, rng)
    lit = _mask(fine.shape[:2], to_photo)
    phone = _mask(
        (round((rows + 2 * bezel * pitch) * s), round((cols + 2 * bezel * pitch) * s)),
        to_photo @ _shift_scale(bezel * pitch * s, bezel * pitch * s, 1.0),
    )
    image = screen + (1 - lit) * (phone * 6.0 + (1 - phone) * background)
    glare = 0.0
    if rng.random() < 0.5:
        glare = float(rng.uniform(0.15, 0.45))
        image = image + _band(image.shape[:2], glare, rng)[..., None] * phone
    # The camera's white balance takes back half of the screen's colour cast.
    means = image.reshape(-1, 3).mean(axis=0)
    image = image * (1 + 0.5 * (means.mean() / np.maximum(means, 1.0) - 1)).astype(np.float32)
    settings = {"pitch": pitch, "gamma": gamma, "blue_cast": float(1 / cast[0]), "band": glare}
    return np.asarray(image, np.float32), settings


def _band(shape: tuple[int, ...], strength: float, rng: np.random.Generator) -> F32:
    """A soft straight band of light across the frame (a window reflected by the glass)."""
    height, width = shape
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    across = xs * np.float32(np.cos(angle)) + ys * np.float32(np.sin(angle))
    centre = rng.uniform(float(across.min()), float(across.max()))
    half = rng.uniform(0.05, 0.15) * max(width, height)
    band = np.exp(-(((across - np.float32(centre)) / np.float32(half)) ** 2))
    return np.asarray(band * np.float32(strength * 255.0), np.float32)


def _print(
    card: FlatCard, homography: npt.NDArray[np.float64], background: F32, lens: float,
    rng: np.random.Generator,
) -> tuple[F32, dict[str, float]]:  # fmt: skip
    h, w = card.pixels.shape[:2]
    scale = float(rng.uniform(1.0, 1.5))  # printed at 100-150 %
    lpi = float(rng.uniform(100, 180))
    period = 25.4 / lpi * _PX_PER_MM / scale * _PRINT_FINE  # in fine pixels
    paper = np.array(rng.uniform(232, 250, size=3), np.float32)
    f = _PRINT_FINE
    colour = cv2.resize(card.pixels.astype(np.float32), (w * f, h * f),
                        interpolation=cv2.INTER_LINEAR) / 255.0  # fmt: skip
    # Four-colour separation (full grey replacement) and one halftone screen per ink.
    k = 1 - colour.max(axis=2)
    cmy = (1 - colour - k[..., None]) / np.maximum(1 - k[..., None], 1e-3)
    ys, xs = np.mgrid[0 : h * f, 0 : w * f].astype(np.float32)
    light = np.ones_like(colour)
    for ink, angle in enumerate(_INK_ANGLES_DEG):
        amount = k if ink == 3 else cmy[..., ink]
        theta = np.deg2rad(angle)
        a = (xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta))) / period
        b = (-xs * np.float32(np.sin(theta)) + ys * np.float32(np.cos(theta))) / period
        spot = (np.cos(2 * np.pi * a) + np.cos(2 * np.pi * b)) / 4 + 0.5  # 1 at a dot's centre
        inked = (spot > 1 - np.clip(amount * 1.08, 0, 1)).astype(np.float32)  # 8 % dot gain
        light *= 1 - inked[..., None] * _INK_ABSORB[ink]
    fibres = cv2.GaussianBlur(rng.standard_normal(xs.shape, dtype=np.float32), (0, 0), 1.5 * f)
    printed = paper * light * (1 + 0.05 * fibres)[..., None]
    to_photo = homography @ _shift_scale(0, 0, f)
    fine_per_photo = f / _photo_px_per_card_px(homography, w, h)
    image = _warp_fine(printed, to_photo, fine_per_photo, lens, rng)
    cut_out = bool(rng.random() < 0.5)
    if cut_out:
        alpha = cv2.warpPerspective(card.alpha.astype(np.float32) / 255.0, homography, _SIZE,
                                    flags=cv2.INTER_LINEAR)  # fmt: skip
        on_card = np.asarray(alpha, np.float32)[..., None]
        sheet = on_card
    else:
        on_card = _mask((h * f, w * f), to_photo)
        edge = rng.uniform(10, 30) * _PX_PER_MM / scale
        sheet = _mask((round(h + 2 * edge), round(w + 2 * edge)),
                      homography @ _shift_scale(edge, edge, 1.0))  # fmt: skip
    mottle = cv2.resize(rng.uniform(-1, 1, (6, 8)).astype(np.float32), _SIZE,
                        interpolation=cv2.INTER_CUBIC)  # fmt: skip
    blank = paper * (1 + 0.03 * mottle)[..., None]
    image = image * on_card + (sheet - on_card) * blank + (1 - sheet) * background
    ramp = _ramp(rng)
    image = image * ramp[..., None]
    settings = {"scale": scale, "lpi": lpi, "period_photo_px": period / fine_per_photo,
                "cut_out": float(cut_out)}  # fmt: skip
    return np.asarray(image, np.float32), settings


def _ramp(rng: np.random.Generator) -> F32:
    """Uneven light: a linear brightness ramp of up to ± 10 % across the frame."""
    width, height = _SIZE
    angle, amount = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.1)
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * np.float32(np.sin(angle))
    return np.asarray(1 + np.float32(amount) * (xs + ys), np.float32)


def _motion_blur(image: F32, length: int, rng: np.random.Generator) -> F32:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
    kernel = np.asarray(cv2.warpAffine(kernel, turn, (length, length)), np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    return np.asarray(cv2.filter2D(image, -1, kernel), np.float32)


RECAPTURE: Final = "idcard.recapture_suspected"


@dataclass(frozen=True, slots=True)
class Scored:
    """One photo read: whether a side was read (the check runs only then), whether the
    recapture check failed, its score and cues."""

    read: bool
    flagged: bool
    score: float | None
    cues: dict[str, float]
    moire: float | None = None
    """The moiré peak's prominence (``detail.moire_prominence``), what the threshold is set on."""


def score_photo(reader: ReaderLike, jpeg: bytes) -> Scored:
    """``reader``'s recapture check on one photo (a refused or unread photo: not read)."""
    reading = read_or_refusal(reader, jpeg, None)
    check = next((c for c in reading.checks if str(c.code) == RECAPTURE), None)
    if check is None:
        return Scored(False, False, None, {})
    detail: dict[str, Any] = dict(getattr(check, "detail", {}) or {})
    score, moire = detail.get("score"), detail.get("moire_prominence")
    cues = {str(k): float(v) for k, v in dict(detail.get("cues", {})).items()}
    return Scored(
        True,
        check.passed is False,
        float(score) if score is not None else None,
        cues,
        float(moire) if moire is not None else None,
    )


def flat_card(generator: CardGenerator, index: int, faces: FaceBank | None) -> FlatCard:
    """A card side to recapture: a fictional holder (a front for even ``index``, a back for odd
    ones) from its own random stream (not the honest photo's card)."""
    rng = np.random.default_rng([generator.config.seed, index, 7])
    person = draw_person(rng, invalid_share=generator.config.invalid_share,
                         today=generator.config.today)  # fmt: skip
    if index % 2:
        return generator.painter.back(person, rng)
    pixels = faces.pixels(faces.draw(rng)[1]) if faces is not None else None
    return generator.painter.front(person, print_portrait(pixels, rng), rng)


def summary(scored: Sequence[Scored]) -> dict[str, Any]:
    """Flagged over all photos and over those read; quantiles of the score, of the moiré
    peak's prominence and of each cue."""
    read = [s for s in scored if s.read]
    scores = np.array([s.score for s in read if s.score is not None], np.float64)
    out: dict[str, Any] = {
        "photos": len(scored),
        "read": len(read),
        "flagged": rate(sum(s.flagged for s in scored), len(scored)),
        "flagged_when_read": rate(sum(s.flagged for s in read), len(read)),
    }
    moire = np.array([s.moire for s in read if s.moire is not None], np.float64)
    if scores.size:
        out["score"] = _quantiles(scores)
    if moire.size:
        out["moire_prominence"] = _quantiles(moire)
        for cue in sorted({k for s in read for k in s.cues}):
            out[f"cue_{cue}"] = _quantiles(np.array([s.cues.get(cue, 0.0) for s in read]))
    return out


def _quantiles(values: npt.NDArray[np.float64]) -> dict[str, float]:
    p50, p90, p95, p98 = np.percentile(values, [50, 90, 95, 98])
    return {"p50": float(p50), "p90": float(p90), "p95": float(p95), "p98": float(p98),
            "max": float(values.max())}  # fmt: skip


def measure(
    reader: ReaderLike,
    *,
    cards: int,
    level: str = "moderate",
    seed: int = 0,
    faces: FaceBank | None = None,
    font: Path | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Read ``cards`` honest photos (``shiren eval idcard``'s cards ``0 … cards - 1``) and as many
    recaptures of each kind at ``level``; the recapture check's :func:`summary` for each."""
    generator = CardGenerator(SynthConfig(seed=seed, level=level), faces=faces, font=font)
    out: dict[str, Any] = {"level": level, "cards": cards, "seed": seed}
    honest = []
    for card in generator.cards(cards):
        honest.append(score_photo(reader, card.jpeg))
        if progress is not None:
            progress(1)
    out["honest"] = summary(honest)
    for k, kind in enumerate(KINDS):
        found = []
        for index in range(cards):
            rng = np.random.default_rng([seed, index, 8, k])
            photo = recapture(flat_card(generator, index, faces), kind, level, rng)
            found.append(score_photo(reader, photo.jpeg))
            if progress is not None:
                progress(1)
        out[kind] = summary(found)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m shiren.eval.idcard_recapture``: :func:`measure` with the real reader, one
    thread; the report as JSON on stdout (and in ``--out``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--level", choices=LEVELS, default="moderate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faces", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from shiren.idcard.types import CardReader

    cv2.setNumThreads(1)
    faces = FaceBank.load(args.faces) if args.faces is not None else None
    report = measure(CardReader.load(), cards=args.cards, level=args.level, seed=args.seed,
                     faces=faces)  # fmt: skip
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


__all__ = [
    "KINDS", "RECAPTURE", "Recapture", "Scored", "flat_card", "main", "measure", "recapture",
    "score_photo", "summary",
]  # fmt: skip

if __name__ == "__main__":
    main()

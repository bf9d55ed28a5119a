"""Draw the two sides of a synthetic second-generation resident ID card (居民身份证), flat.

The card is ISO/IEC 7810 ID-1, 85.6 × 54 mm with 3.18 mm rounded corners; positions below are
in millimetres from the card's top-left corner, read off the demo specimen in
``shared/data/cn_idcard_specimen`` (its card spans 742 px = 85.6 mm) and GA 450-2013's layout:
labels in a blue-grey, values in black, the 26 × 32 mm portrait on the right of the front; the
national-emblem area, the title and the two back fields (签发机关, 有效期限) on the back.

The emblem is a stand-in (red disc, gold ring and stars): this draws test material, not a
counterfeit.  Drawing uses Pillow and a CJK TrueType font (the caller finds it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from shiren.eval.idcard_content import Person

RGBImage = npt.NDArray[np.uint8]
CARD_MM: Final = (85.6, 54.0)
CORNER_RADIUS_MM: Final = 3.18
PORTRAIT_MM: Final = (54.0, 7.0, 80.0, 39.0)
"""Portrait box on the front, ``(x0, y0, x1, y1)`` in mm: 26 × 32 mm."""
LABEL_RGB: Final = (42, 104, 140)
VALUE_RGB: Final = (18, 18, 20)
EMBLEM_RED: Final = (196, 32, 36)
GOLD: Final = (236, 196, 70)
_VALUE_X: Final = 16.9
_LABEL_X: Final = 6.6
_ADDRESS_WIDTH_MM: Final = 33.5
_ADDRESS_LINE_MM: Final = 4.6
_NUMBER_PITCH_MM: Final = 2.5


@dataclass(frozen=True, slots=True)
class FlatCard:
    """A drawn card side: ``pixels`` ``(H, W, 3)`` RGB, ``alpha`` ``(H, W)`` (0 outside the
    rounded corners), ``portrait_box`` ``(x0, y0, x1, y1)`` in card pixels (fronts only)."""

    pixels: RGBImage
    alpha: npt.NDArray[np.uint8]
    portrait_box: tuple[float, float, float, float] | None


class CardPainter:
    """Draws card sides at ``px_per_mm`` with one CJK font file (fonts cached by size)."""

    def __init__(self, font_path: Path, px_per_mm: float = 10.0) -> None:
        self.font_path = font_path
        self.px_per_mm = px_per_mm
        self.size_px = (round(CARD_MM[0] * px_per_mm), round(CARD_MM[1] * px_per_mm))
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def font(self, height_mm: float) -> ImageFont.FreeTypeFont:
        size = max(6, round(height_mm * self.px_per_mm))
        if size not in self._fonts:
            self._fonts[size] = ImageFont.truetype(str(self.font_path), size, index=0)
        return self._fonts[size]

    def front(self, person: Person, portrait: RGBImage, rng: np.random.Generator) -> FlatCard:
        """The front: fields on the left, ``portrait`` (any size; resized) on the right."""
        base = self._background(rng, tint=(226, 238, 236))
        box = tuple(v * self.px_per_mm for v in PORTRAIT_MM)
        x0, y0, x1, y1 = (round(v) for v in box)
        photo = np.asarray(
            cv2.resize(portrait, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA), np.uint8
        )
        base[y0:y1, x0:x1] = _blend_portrait(base[y0:y1, x0:x1], photo)
        image = Image.fromarray(base)
        draw = ImageDraw.Draw(image)
        self._front_text(draw, person)
        b = (box[0], box[1], box[2], box[3])
        return FlatCard(np.asarray(image, dtype=np.uint8).copy(), self._alpha(), b)

    def back(self, person: Person, rng: np.random.Generator) -> FlatCard:
        """The back: emblem stand-in, 中华人民共和国 / 居民身份证, 签发机关 and 有效期限."""
        base = self._background(rng, tint=(236, 236, 228))
        image = Image.fromarray(base)
        draw = ImageDraw.Draw(image)
        self._emblem(draw, centre_mm=(15.0, 14.5), radius_mm=8.6)
        self._spread(draw, "中华人民共和国", (29.5, 77.0), 11.5, 5.0, VALUE_RGB)
        self._spread(draw, "居民身份证", (31.0, 75.5), 22.0, 7.4, VALUE_RGB)
        self._spread(draw, "签发机关", (13.0, 27.0), 40.5, 2.8, LABEL_RGB)
        self._spread(draw, "有效期限", (13.0, 27.0), 47.0, 2.8, LABEL_RGB)
        self._text(draw, (30.5, 40.5), person.authority, 3.1)
        self._text(draw, (30.5, 47.0), person.validity_text, 3.1)
        return FlatCard(np.asarray(image, dtype=np.uint8).copy(), self._alpha(), None)

    # -- text --------------------------------------------------------------------------------

    def _front_text(self, draw: ImageDraw.ImageDraw, person: Person) -> None:
        label = 2.6
        self._spread(draw, "姓名", (_LABEL_X, _LABEL_X + 7.0), 9.2, label, LABEL_RGB)
        # The name in the same weight and size as the other values, as on the specimen.
        self._text(draw, (_VALUE_X, 9.2), person.name, 3.1)
        self._spread(draw, "性别", (_LABEL_X, _LABEL_X + 7.0), 15.9, label, LABEL_RGB)
        self._text(draw, (_VALUE_X, 15.9), person.sex, 3.1)
        self._spread(draw, "民族", (25.9, 31.6), 15.9, label, LABEL_RGB)
        self._text(draw, (34.0, 15.9), person.ethnicity, 3.1)
        self._spread(draw, "出生", (_LABEL_X, _LABEL_X + 7.0), 22.5, label, LABEL_RGB)
        self._birth(draw, person.birth_date)
        self._spread(draw, "住址", (_LABEL_X, _LABEL_X + 7.0), 29.5, label, LABEL_RGB)
        for i, line in enumerate(self._wrap(person.address, _ADDRESS_WIDTH_MM, 2.9)):
            self._text(draw, (_VALUE_X, 29.5 + i * _ADDRESS_LINE_MM), line, 2.9)
        self._spread(draw, "公民身份号码", (_LABEL_X, 25.0), 47.0, 2.9, LABEL_RGB)
        for i, char in enumerate(person.id_number):
            self._text(draw, (30.0 + i * _NUMBER_PITCH_MM, 47.0), char, 3.5)

    def _birth(self, draw: ImageDraw.ImageDraw, born: date) -> None:
        self._text(draw, (_VALUE_X, 22.5), f"{born.year}", 3.1)
        self._text(draw, (26.2, 22.5), "年", 2.6, colour=LABEL_RGB)
        self._text(draw, (31.0, 22.5), f"{born.month}", 3.1, anchor="mm")
        self._text(draw, (33.6, 22.5), "月", 2.6, colour=LABEL_RGB)
        self._text(draw, (38.2, 22.5), f"{born.day}", 3.1, anchor="mm")
        self._text(draw, (40.8, 22.5), "日", 2.6, colour=LABEL_RGB)

    def _text(
        self,
        draw: ImageDraw.ImageDraw,
        at_mm: tuple[float, float],
        text: str,
        height_mm: float,
        *,
        colour: tuple[int, int, int] = VALUE_RGB,
        anchor: str = "lm",
    ) -> None:
        """``text`` with its left edge (``anchor="mm"``: its centre) at ``at_mm[0]`` and its
        middle at ``at_mm[1]``."""
        xy = (at_mm[0] * self.px_per_mm, at_mm[1] * self.px_per_mm)
        draw.text(xy, text, fill=colour, font=self.font(height_mm), anchor=anchor)

    def _spread(
        self,
        draw: ImageDraw.ImageDraw,
        text: str,
        span_mm: tuple[float, float],
        y_mm: float,
        height_mm: float,
        colour: tuple[int, int, int],
    ) -> None:
        """``text`` with its characters spread evenly from ``span_mm[0]`` to ``span_mm[1]``."""
        font = self.font(height_mm)
        last = font.getlength(text[-1]) / self.px_per_mm
        step = (span_mm[1] - span_mm[0] - last) / max(len(text) - 1, 1)
        for i, char in enumerate(text):
            self._text(draw, (span_mm[0] + i * step, y_mm), char, height_mm, colour=colour)

    def _wrap(self, text: str, width_mm: float, height_mm: float) -> list[str]:
        """``text`` cut into lines no wider than ``width_mm`` (characters never split)."""
        font = self.font(height_mm)
        limit = width_mm * self.px_per_mm
        lines, line = [], ""
        for char in text:
            if line and font.getlength(line + char) > limit:
                lines.append(line)
                line = ""
            line += char
        return [*lines, line] if line else lines

    # -- pictures ----------------------------------------------------------------------------

    def _emblem(
        self, draw: ImageDraw.ImageDraw, centre_mm: tuple[float, float], radius_mm: float
    ) -> None:
        """A stand-in for the national emblem: red disc, gold ring, one big and four small
        stars."""
        s = self.px_per_mm
        cx, cy, r = centre_mm[0] * s, centre_mm[1] * s, radius_mm * s
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=EMBLEM_RED, outline=GOLD, width=3)
        inner = r * 0.82
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), outline=GOLD, width=2)
        draw.polygon(_star(cx - r * 0.28, cy - r * 0.2, r * 0.3), fill=GOLD)
        for k in range(4):
            angle = np.deg2rad(-60 + k * 30)
            sx, sy = cx - r * 0.28 + r * 0.5 * np.cos(angle), cy - r * 0.2 + r * 0.5 * np.sin(angle)
            draw.polygon(_star(float(sx), float(sy), r * 0.1), fill=GOLD)
        draw.rectangle((cx - r * 0.45, cy + r * 0.3, cx + r * 0.45, cy + r * 0.45), fill=GOLD)

    def _background(self, rng: np.random.Generator, tint: tuple[int, int, int]) -> RGBImage:
        """A light guilloche: a soft two-colour gradient and families of pale sine curves."""
        w, h = self.size_px
        xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        left = np.array(tint, np.float32)
        right = np.array((242, 232, 236), np.float32)
        base = np.broadcast_to(left * (1 - xs) + right * xs, (h, w, 3)).copy()
        phase = rng.uniform(0, 2 * np.pi, size=2)
        for family, colour in enumerate(((150, 190, 200), (215, 170, 185))):
            canvas = np.zeros((h, w), np.uint8)
            for k in range(0, h + 40, 9):
                x = np.arange(0, w, 4, dtype=np.float32)
                wave = 14 * np.sin(x / (60 + 25 * family) + phase[family] + k * 0.09)
                pts = np.stack([x, k + wave + 6 * np.sin(x / 13.0)], axis=1).astype(np.int32)
                cv2.polylines(canvas, [pts], isClosed=False, color=255, thickness=1)
            mask = (canvas.astype(np.float32) / 255.0 * 0.22)[..., None]
            base = base * (1 - mask) + np.array(colour, np.float32) * mask
        grain = rng.normal(0.0, 2.0, size=(h, w, 1)).astype(np.float32)
        return np.clip(base + grain, 0, 255).astype(np.uint8)

    def _alpha(self) -> npt.NDArray[np.uint8]:
        w, h = self.size_px
        radius = round(CORNER_RADIUS_MM * self.px_per_mm)
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=radius, fill=255)
        return np.asarray(mask, dtype=np.uint8).copy()


def print_portrait(face: RGBImage | None, rng: np.random.Generator) -> RGBImage:
    """A printed card portrait (26:32, ``(320, 260, 3)``) from a face photo, framed as an ID
    photo (the face found by OpenCV's Haar cascade about 58 % of the width, centred a little
    below the middle; a plain centre crop when none is found), its backdrop (the colour of the
    top corners) washed to near white, partly desaturated, lower contrast.  ``None`` draws a
    grey head-and-shoulders silhouette."""
    h_out, w_out = 320, 260
    if face is None:
        return _silhouette(h_out, w_out)
    pixels = face.astype(np.float32)
    backdrop = _backdrop(pixels)
    box = locate_face(face)
    if box is None:
        h, w = face.shape[:2]
        side = min(w, h * w_out / h_out)
        box = ((w - side) / 2 + side * 0.21, h * 0.2, side * 0.58, side * 0.58)
    x, y, bw, bh = box
    scale = w_out * 0.58 / bw
    shift = (w_out / 2 - (x + bw / 2) * scale, h_out * 0.52 - (y + bh / 2) * scale)
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float32)
    fill = tuple(float(v) for v in backdrop)
    framed = cv2.warpAffine(pixels, matrix, (w_out, h_out), flags=cv2.INTER_AREA,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=fill)  # fmt: skip
    out = _wash(np.asarray(framed, np.float32), backdrop)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * np.float32(rng.uniform(0.35, 0.6))
    out = 128 + (out - 128) * np.float32(0.88) + 10
    printed: RGBImage = np.clip(out, 0, 255).astype(np.uint8)
    return printed


def locate_face(pixels: RGBImage) -> tuple[float, float, float, float] | None:
    """The largest frontal face ``(x, y, w, h)`` OpenCV's Haar cascade finds, or None."""
    grey = cv2.equalizeHist(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))
    smallest = max(24, min(grey.shape) // 8)
    found = _cascade().detectMultiScale(grey, 1.08, 3, minSize=(smallest, smallest))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda f: int(f[2]) * int(f[3]))
    return float(x), float(y), float(w), float(h)


@functools.cache
def _cascade() -> cv2.CascadeClassifier:
    # opencv-python ships the cascades in cv2/data (cv2.data.haarcascades, untyped).
    path = Path(cv2.__file__).parent / "data" / "haarcascade_frontalface_default.xml"
    return cv2.CascadeClassifier(str(path))


def _backdrop(pixels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The backdrop's colour: the median of the two top corners."""
    patch = max(4, pixels.shape[1] // 10)
    corners = np.concatenate([pixels[:patch, :patch], pixels[:patch, -patch:]]).reshape(-1, 3)
    colour: npt.NDArray[np.float32] = np.median(corners, axis=0).astype(np.float32)
    return colour


def _wash(
    pixels: npt.NDArray[np.float32], backdrop: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Blend pixels near the backdrop's colour towards white (ID photos have a light ground)."""
    distance = np.linalg.norm(pixels - backdrop, axis=2)
    weight = np.clip(1.0 - distance / 60.0, 0.0, 1.0)
    weight = cv2.GaussianBlur(weight.astype(np.float32), (0, 0), 3)[..., None]
    white = np.array((238, 240, 242), np.float32)
    blended: npt.NDArray[np.float32] = pixels * (1 - weight) + white * weight
    return blended


def _silhouette(h: int, w: int) -> RGBImage:
    image = Image.new("RGB", (w, h), (236, 238, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.28, h * 0.14, w * 0.72, h * 0.62), fill=(120, 120, 124))
    draw.ellipse((w * 0.05, h * 0.64, w * 0.95, h * 1.3), fill=(96, 96, 100))
    return np.asarray(image, dtype=np.uint8).copy()


def _blend_portrait(card: RGBImage, photo: RGBImage) -> RGBImage:
    """The portrait printed onto the card: light areas let a little of the pattern through."""
    light = (photo.astype(np.float32).mean(axis=2, keepdims=True) / 255.0) ** 4 * 0.35
    out = photo.astype(np.float32) * (1 - light) + card.astype(np.float32) * light
    printed: RGBImage = np.clip(out, 0, 255).astype(np.uint8)
    return printed


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """The ten points of a five-pointed star centred on ``(cx, cy)``, point up."""
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * 0.4
        angle = -np.pi / 2 + k * np.pi / 5
        points.append((cx + radius * float(np.cos(angle)), cy + radius * float(np.sin(angle))))
    return points


__all__ = [
    "CARD_MM",
    "LABEL_RGB",
    "PORTRAIT_MM",
    "CardPainter",
    "FlatCard",
    "locate_face",
    "print_portrait",
]

"""Synthetic second-generation ID cards for the tests, drawn with Pillow and a CJK font.

The layout follows the real card's (GA 450-2013's front and back, measured on the shared demo
specimen) closely enough for the reader's layout rules: labels in blue on the left, values in
black beside them, the photo on the right, the number along the bottom; the back with the emblem,
the title, the issuing authority and the validity period.  Every number used with these cards is
made up (and most fail the check digit on purpose or carry an impossible region): no real card.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFont

W, H = 856, 540
LABEL = (45, 105, 160)
INK = (20, 20, 20)
Image8 = npt.NDArray[np.uint8]


@cache
def cjk_font_path() -> str:
    """WenQuanYi Zen Hei (``fonts-wqy-zenhei``, installed by scripts/browser-deps.sh) or any
    font that covers Chinese; missing: skip outside CI, fail in CI."""
    candidates = [Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")]
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "WenQuanYi Zen Hei:lang=zh"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        candidates.append(Path(found))
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += sorted(Path("/usr/share/fonts").rglob("*wqy*"))
    for path in candidates:
        if path.is_file() and path.suffix.lower() in (".ttc", ".ttf", ".otf"):
            return str(path)
    if os.environ.get("CI"):
        pytest.fail("no CJK font: run scripts/browser-deps.sh (fonts-wqy-zenhei)")
    pytest.skip("no CJK font (apt-get install fonts-wqy-zenhei)")
    raise AssertionError  # unreachable


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(cjk_font_path(), size)


@dataclass(frozen=True)
class Front:
    name: str = "张伟明"
    sex: str = "男"
    ethnicity: str = "汉"
    birth: date = date(1990, 3, 7)
    address: str = "北京市朝阳区建国路八十八号院三号楼二单元五零一室"
    number: str = "11010519900307123X"


@dataclass(frozen=True)
class Back:
    authority: str = "北京市公安局朝阳分局"
    valid_from: str = "2016.03.01"
    valid_until: str = "2036.03.01"


def _background(seed: int) -> Image.Image:
    """A pale card with faint wavy guilloche lines, like the printed security background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([228 + 10 * x / W, 236 + 6 * y / H, 238 + 0 * x], axis=-1)
    waves = 4 * np.sin(x / 9 + 3 * np.sin(y / 40)) * np.cos(y / 11)
    pixels = base + waves[..., None] + rng.normal(0, 1.5, (H, W, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _spaced(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int,
            fill: tuple[int, int, int], gap: float) -> None:  # fmt: skip
    x, y = xy
    face = font(size)
    for char in text:
        draw.text((x, y), char, font=face, fill=fill)
        x += face.getlength(char) + gap


def render_front(card: Front = Front(), seed: int = 0) -> Image8:
    """The front (portrait side) at 856 × 540."""
    img = _background(seed)
    draw = ImageDraw.Draw(img)
    lx, vx = 0.07 * W, 0.19 * W
    _spaced(draw, (lx, 0.135 * H), "姓名", 21, LABEL, 14)
    draw.text((vx, 0.125 * H), card.name, font=font(28), fill=INK)
    _spaced(draw, (lx, 0.26 * H), "性别", 21, LABEL, 14)
    draw.text((vx, 0.25 * H), card.sex, font=font(26), fill=INK)
    _spaced(draw, (0.36 * W, 0.26 * H), "民族", 21, LABEL, 14)
    draw.text((0.46 * W, 0.25 * H), card.ethnicity, font=font(26), fill=INK)
    _spaced(draw, (lx, 0.385 * H), "出生", 21, LABEL, 14)
    born = card.birth
    for x, text in ((0.19, str(born.year)), (0.28, "年"), (0.33, str(born.month)),
                    (0.37, "月"), (0.42, str(born.day)), (0.46, "日")):  # fmt: skip
        draw.text((x * W, 0.375 * H), text, font=font(26), fill=INK)
    _spaced(draw, (lx, 0.51 * H), "住址", 21, LABEL, 14)
    for row, start in enumerate(range(0, len(card.address), 11)):
        y = (0.50 + 0.075 * row) * H
        draw.text((vx, y), card.address[start : start + 11], font=font(25), fill=INK)
    _spaced(draw, (lx, 0.845 * H), "公民身份号码", 21, LABEL, 3)
    _spaced(draw, (0.35 * W, 0.835 * H), card.number, 29, INK, 3)
    _portrait(draw)
    return np.asarray(img, dtype=np.uint8)


def _portrait(draw: ImageDraw.ImageDraw) -> None:
    """A grey head-and-shoulders silhouette where the photo goes (no real face)."""
    x0, y0, x1, y1 = 0.64 * W, 0.12 * H, 0.92 * W, 0.76 * H
    draw.rectangle((x0, y0, x1, y1), fill=(214, 222, 228))
    cx = (x0 + x1) / 2
    draw.ellipse((cx - 55, y0 + 45, cx + 55, y0 + 185), fill=(120, 110, 105))
    draw.pieslice((x0 + 5, y1 - 120, x1 - 5, y1 + 120), 180, 360, fill=(60, 70, 90))


def render_back(card: Back = Back(), seed: int = 1) -> Image8:
    """The back (national emblem side) at 856 × 540."""
    img = _background(seed)
    draw = ImageDraw.Draw(img)
    draw.ellipse((0.07 * W, 0.07 * H, 0.22 * W, 0.31 * H), fill=(200, 40, 40))
    draw.regular_polygon((0.145 * W, 0.19 * H, 34), 5, fill=(250, 210, 60))
    _spaced(draw, (0.36 * W, 0.11 * H), "中华人民共和国", 30, INK, 9)
    _spaced(draw, (0.31 * W, 0.25 * H), "居民身份证", 52, INK, 18)
    _spaced(draw, (0.19 * W, 0.705 * H), "签发机关", 21, INK, 6)
    draw.text((0.37 * W, 0.695 * H), card.authority, font=font(25), fill=INK)
    _spaced(draw, (0.19 * W, 0.835 * H), "有效期限", 21, INK, 6)
    validity = f"{card.valid_from}-{card.valid_until}"
    draw.text((0.37 * W, 0.825 * H), validity, font=font(25), fill=INK)
    return np.asarray(img, dtype=np.uint8)


def _rounded_mask(radius: int = 30) -> Image8:
    mask = Image.new("L", (W, H), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, W - 1, H - 1), radius, fill=255)
    return np.asarray(mask, dtype=np.uint8)


def desk(size: tuple[int, int] = (1280, 960), seed: int = 2) -> Image8:
    """A darker, slightly textured desk top for the card to lie on."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    wood = 110 + 25 * np.sin(x / 37 + 2 * np.sin(y / 90)) + 10 * y / height
    rgb = np.stack([wood * 1.1, wood * 0.85, wood * 0.6], axis=-1) + rng.normal(
        0, 3, (height, width, 1)
    )
    return np.clip(rgb, 0, 255).astype(np.uint8)


def photograph(card: Image8, *, corners: list[tuple[float, float]] | None = None,
               size: tuple[int, int] = (1280, 960), blur_sigma: float = 0.0,
               upside_down: bool = False, seed: int = 2,
               base: Image8 | None = None) -> Image8:  # fmt: skip
    """``card`` lying on a desk (or on ``base``, another photo), seen by a phone: warped onto
    ``corners`` (clockwise from the card's top-left; default: centred, 70 % of the frame's width,
    tilted a little)."""
    width, height = size
    if corners is None:
        corners = [(0.16 * width, 0.22 * height), (0.85 * width, 0.19 * height),
                   (0.87 * width, 0.76 * height), (0.14 * width, 0.78 * height)]  # fmt: skip
    if upside_down:
        corners = corners[2:] + corners[:2]
    source = np.asarray([[0, 0], [W, 0], [W, H], [0, H]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, np.asarray(corners, dtype=np.float32))
    warped = cv2.warpPerspective(card, matrix, size, flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(_rounded_mask(), matrix, size, flags=cv2.INTER_LINEAR)
    a = (alpha.astype(np.float32) / 255.0)[..., None]
    ground = desk(size, seed) if base is None else base.astype(np.float32)
    photo = warped * a + ground * (1 - a)
    if blur_sigma > 0:
        photo = cv2.GaussianBlur(photo, (0, 0), blur_sigma)
    return np.clip(photo, 0, 255).astype(np.uint8)


def encode(image: Image8, fmt: str = "JPEG") -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, quality=92)
    return buffer.getvalue()


def render_licence(seed: int = 3) -> Image8:
    """Another document of the same size: a driving licence's title and labels (not an ID card)."""
    img = _background(seed)
    draw = ImageDraw.Draw(img)
    _spaced(draw, (0.12 * W, 0.06 * H), "中华人民共和国机动车驾驶证", 30, INK, 4)
    _spaced(draw, (0.06 * W, 0.25 * H), "姓名", 21, INK, 6)
    draw.text((0.2 * W, 0.245 * H), "王小明", font=font(25), fill=INK)
    _spaced(draw, (0.06 * W, 0.37 * H), "住址", 21, INK, 6)
    draw.text((0.2 * W, 0.365 * H), "上海市徐汇区漕溪北路一号", font=font(25), fill=INK)
    _spaced(draw, (0.06 * W, 0.49 * H), "准驾车型", 21, INK, 6)
    draw.text((0.3 * W, 0.485 * H), "C1", font=font(25), fill=INK)
    return np.asarray(img, dtype=np.uint8)


def with_glare(photo: Image8, centre: tuple[float, float], radius_px: float) -> Image8:
    """A blown-out reflection (a lamp on the laminate) centred at ``centre`` (fractions)."""
    height, width = photo.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    d2 = (x - centre[0] * width) ** 2 + (y - centre[1] * height) ** 2
    light = 400 * np.exp(-d2 / (2 * radius_px**2))
    return np.clip(photo + light[..., None], 0, 255).astype(np.uint8)

"""Synthetic second-generation resident ID cards (居民身份证), made at run time, seeded.

:class:`CardGenerator` draws a fictional holder (:mod:`shiren.eval.idcard_content`), paints one
side of the card flat (:mod:`shiren.eval.idcard_render`) and photographs it the way a phone would
(:mod:`shiren.eval.idcard_photo`); each :class:`SyntheticCard` carries the JPEG and its
:class:`CardTruth` (side, every printed field, whether the number's check character is right,
the card's corners and the portrait's box in the photo).

Determinism: card ``i`` of seed ``s`` depends only on ``(s, i)``, the level and the face bank —
never on how many cards are asked for.  The holder and the portrait come from one random stream,
the photo from another, so the same holder is photographed at every level.

Portraits are faces from a labelled data set (``shared/data/casia_facev5_subset`` or
``asian_celeb_subset``, research-only licences): they are read at run time and nothing drawn here
is written into the repository.  Without a face bank a grey silhouette stands in.

A CJK font is needed to draw the text: ``fonts-wqy-zenhei`` (Debian; ``scripts/browser-deps.sh``
installs it).  Without one, :class:`CardGenerator` raises :class:`CjkFontMissingError`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageFont

from shiren.errors import ConfigError
from shiren.eval.idcard_content import draw_person
from shiren.eval.idcard_photo import LEVELS, photograph
from shiren.eval.idcard_render import (
    PORTRAIT_MM,
    CardPainter,
    RGBImage,
    locate_face,
    print_portrait,
)
from shiren.eval.identities import read_identities

FONT_ROOTS: Final = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
FONT_NAMES: Final = (
    "wqy-zenhei.ttc",
    "wqy-microhei.ttc",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "SourceHanSansSC-Regular.otf",
)
"""CJK fonts tried in this order under :data:`FONT_ROOTS` (then ``fc-list :lang=zh``)."""
INSTALL_HINT: Final = "apt-get install -y fonts-wqy-zenhei (or run scripts/browser-deps.sh)"
_FACE_TRIES: Final = 6
DEFAULT_TODAY: Final = date(2025, 6, 1)
"""The day the cards are made "on": fixed, so a seed means the same cards on any date."""


class CjkFontMissingError(ConfigError):
    """No CJK font to draw the cards with (``config.invalid``); ``detail["hint"]`` says how to
    install one."""


def find_cjk_font(roots: Sequence[Path] = FONT_ROOTS, *, fc_list: bool = True) -> Path:
    """The first CJK font file found: :data:`FONT_NAMES` under ``roots``, else the first file
    ``fc-list :lang=zh`` names.  Raises :class:`CjkFontMissingError` when there is none."""
    for name in FONT_NAMES:
        for root in roots:
            found = sorted(root.rglob(name)) if root.is_dir() else []
            if found:
                return found[0]
    if fc_list and (listed := _fc_list_zh()):
        return listed[0]
    raise CjkFontMissingError(
        f"no CJK font found to draw ID cards; install one: {INSTALL_HINT}",
        detail={"searched": [str(r) for r in roots], "hint": INSTALL_HINT},
    )


def _fc_list_zh() -> list[Path]:
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    try:
        done = subprocess.run(
            [exe, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    paths = (Path(line.strip().rstrip(":")) for line in done.stdout.splitlines() if line.strip())
    return sorted(p for p in paths if p.is_file())


def _checked_font(path: Path) -> Path:
    try:
        ImageFont.truetype(str(path), 12, index=0)
    except OSError:
        raise CjkFontMissingError(
            f"the CJK font {path} cannot be read; install one: {INSTALL_HINT}",
            detail={"font": str(path), "hint": INSTALL_HINT},
        ) from None
    return path


@dataclass(frozen=True, slots=True)
class FaceBank:
    """Face photos by identity: ``people`` maps an identity to image paths relative to
    ``root`` (sorted)."""

    root: Path
    people: dict[str, list[str]]

    @classmethod
    def load(cls, source: Path) -> FaceBank:
        """A data set folder holding ``labels.csv`` (``path,identity``; the shared data's
        layout) or one sub-folder per person.  Raises ``ConfigError`` when neither is there."""
        try:
            if (source / "labels.csv").is_file():
                people = read_identities(source / "labels.csv").people
            else:
                people = read_identities(source).people
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"no labelled face images under {source}", detail={"faces": str(source)}
            ) from exc
        if not people:
            raise ConfigError(
                f"no labelled face images under {source}", detail={"faces": str(source)}
            )
        return cls(source, people)

    def draw(self, rng: np.random.Generator) -> tuple[str, str]:
        """An identity (one with two images or more when there is one) and one of its images."""
        names = sorted(p for p, paths in self.people.items() if len(paths) >= 2)
        names = names or sorted(self.people)
        person = names[int(rng.integers(len(names)))]
        paths = self.people[person]
        return person, paths[int(rng.integers(len(paths)))]

    def pixels(self, path: str) -> RGBImage:
        """The image at ``path`` (relative to :attr:`root`) as RGB ``(H, W, 3)`` uint8."""
        with Image.open(self.root / path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """What to make: the seed, the photo's distortion level (:data:`LEVELS`), the share of
    numbers with a wrong check character, the day the cards are made on, the drawing scale."""

    seed: int = 0
    level: str = "moderate"
    invalid_share: float = 0.1
    today: date = DEFAULT_TODAY
    px_per_mm: float = 10.0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown distortion level {self.level!r}; expected one of {LEVELS}")
        if not 0.0 <= self.invalid_share <= 1.0:
            raise ValueError("invalid_share must lie in [0, 1]")


Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class CardTruth:
    """What is on synthetic card ``index`` and where.

    ``fields`` as the reader reports them (dates ``YYYY-MM-DD``, ``长期``); ``number_valid`` is
    None on a back; ``corners`` are the card's own top-left, top-right, bottom-right and
    bottom-left corners in photo pixels; ``portrait_box`` ``(x0, y0, x1, y1)`` bounds the
    portrait in photo pixels (fronts only); ``face`` is ``(identity, path)`` of the portrait's
    source image (None for a silhouette or a back).
    """

    index: int
    side: str
    fields: dict[str, str]
    number_valid: bool | None
    corners: tuple[Point, Point, Point, Point]
    portrait_box: tuple[float, float, float, float] | None
    face: tuple[str, str] | None
    level: str
    rotation_deg: float
    upside_down: bool
    image_size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class SyntheticCard:
    """One simulated upload: ``jpeg`` bytes and its ground truth."""

    jpeg: bytes
    truth: CardTruth


class CardGenerator:
    """Makes :class:`SyntheticCard` s; even indices are fronts, odd ones backs.

    ``font`` defaults to :func:`find_cjk_font` (raises :class:`CjkFontMissingError`); ``faces``
    None draws silhouettes instead of portraits.
    """

    def __init__(
        self,
        config: SynthConfig | None = None,
        *,
        faces: FaceBank | None = None,
        font: Path | None = None,
    ) -> None:
        self.config = config or SynthConfig()
        self.faces = faces
        self.painter = CardPainter(_checked_font(font or find_cjk_font()), self.config.px_per_mm)

    def card(self, index: int) -> SyntheticCard:
        """Card ``index``: a front when ``index`` is even, a back when odd."""
        rng = self._content_rng(index)
        person = draw_person(rng, invalid_share=self.config.invalid_share, today=self.config.today)
        face: tuple[str, str] | None = None
        if index % 2 == 0:
            pixels = None
            if self.faces is not None:
                face, pixels = self._portrait_source(self.faces, rng)
            flat = self.painter.front(person, print_portrait(pixels, rng), rng)
            side, fields, valid = "front", person.front_fields(), person.number_valid
        else:
            flat = self.painter.back(person, rng)
            side, fields, valid = "back", person.back_fields(), None
        photo = photograph(
            flat, self.config.level, np.random.default_rng([self.config.seed, index, 1])
        )
        box = None
        if flat.portrait_box is not None:
            x0, y0, x1, y1 = flat.portrait_box
            quad = photo.project(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64))
            lo, hi = quad.min(axis=0), quad.max(axis=0)
            box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        c = [(float(x), float(y)) for x, y in photo.corners]
        truth = CardTruth(
            index=index, side=side, fields=fields, number_valid=valid,
            corners=(c[0], c[1], c[2], c[3]), portrait_box=box, face=face,
            level=self.config.level, rotation_deg=photo.rotation_deg,
            upside_down=photo.upside_down, image_size=photo.size,
        )  # fmt: skip
        return SyntheticCard(photo.jpeg, truth)

    def cards(self, count: int, start: int = 0) -> Iterator[SyntheticCard]:
        """Cards ``start`` … ``start + count - 1``, made one at a time."""
        for index in range(start, start + count):
            yield self.card(index)

    @staticmethod
    def _portrait_source(
        faces: FaceBank, rng: np.random.Generator
    ) -> tuple[tuple[str, str], RGBImage]:
        """A face image for the portrait: ID photos are frontal by rule, so draw again (a few
        times) while OpenCV's frontal-face cascade finds no face; the other images of the person
        (turned heads, odd framing) stay available as selfies."""
        for _ in range(_FACE_TRIES):
            face = faces.draw(rng)
            pixels = faces.pixels(face[1])
            if locate_face(pixels) is not None:
                break
        return face, pixels

    def _content_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, index, 0])


__all__ = [
    "DEFAULT_TODAY",
    "FONT_NAMES",
    "PORTRAIT_MM",
    "CardGenerator",
    "CardTruth",
    "CjkFontMissingError",
    "FaceBank",
    "SynthConfig",
    "SyntheticCard",
    "find_cjk_font",
]

"""Finding the card: every card-shaped outline, best first and each once; a first outline whose
text is not the size of a card's print is given up for a larger (or smaller) one."""

from __future__ import annotations

from datetime import date

import cv2
import numpy as np

from shiren.core.geometry import RGBImage
from shiren.idcard import locate
from shiren.idcard.card import CardSide
from shiren.idcard.types import CardReader
from shiren.models.protocols import ModelInfo, TextLine

TODAY = date(2026, 12, 6)
CARD_GREY = 225
PATCH_GREY = 150


def photo() -> RGBImage:
    """A light card whose left edge touches the frame (its outline counts as cut off), and on it
    a darker card-shaped patch (a photo box, a label block) that is framed."""
    image = np.full((900, 1200, 3), 60, np.uint8)
    cv2.rectangle(image, (2, 150), (1000, 780), (CARD_GREY,) * 3, -1)
    cv2.rectangle(image, (100, 300), (420, 500), (PATCH_GREY,) * 3, -1)
    return image


def line(text: str, x0: float, y0: float, x1: float, y1: float) -> TextLine:
    return TextLine(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), text, 0.99)


FRONT = [
    line("姓名张伟明", 56, 66, 251, 102),
    line("性别男", 56, 136, 191, 166),
    line("民族汉", 303, 136, 423, 166),
    line("出生1990年3月7日", 56, 204, 419, 236),
    line("住址北京市朝阳区建国路", 56, 273, 438, 303),
    line("公民身份号码", 59, 456, 205, 482),
    line("110105199003071239", 300, 455, 664, 487),
]


class LayoutOcr:
    """Reads the card's lines on the card's own outline and two huge lines on the patch (its
    few characters blown up to fill the rectified image)."""

    info = ModelInfo("fake", "1", "0" * 64, "none", "test", (0, 0))

    def __init__(self) -> None:
        self.reads: list[float] = []

    def read(self, image: RGBImage) -> list[TextLine]:
        grey = float(np.median(image))
        self.reads.append(grey)
        if abs(grey - PATCH_GREY) < 10:
            return [line("性别", 40, 20, 420, 190), line("出生19", 40, 300, 850, 420)]
        if abs(grey - CARD_GREY) < 10:
            return list(FRONT)
        return []


def test_outlines_are_ranked_and_each_listed_once() -> None:
    found = locate.outlines(photo())
    assert len(found) >= 2
    assert not found[0].cut_off  # the framed patch first
    assert any(f.cut_off and f.area_fraction > 0.5 for f in found)
    for i, one in enumerate(found):
        for other in found[i + 1 :]:
            assert np.abs(one.corners - other.corners).max() > 10


def test_text_height() -> None:
    assert locate.text_height(FRONT) == 30.0
    assert locate.text_height(FRONT[:1]) is None


def test_an_outline_whose_text_is_too_big_gives_way_to_a_larger_one() -> None:
    ocr = LayoutOcr()
    reading = CardReader(ocr).read(photo(), today=TODAY)
    assert reading.side is CardSide.FRONT
    assert reading.value("id_number") == "110105199003071239"
    assert reading.value("name") == "张伟明"
    assert reading.corners is not None
    assert max(x for x, _ in reading.corners) > 900  # the card's outline, not the patch's
    assert "idcard.cut_off" in reading.guidance
    assert [abs(g - PATCH_GREY) < 10 for g in ocr.reads] == [True, False]

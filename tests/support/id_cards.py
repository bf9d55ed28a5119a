"""ID-card photos for tests: a fictional holder's card, drawn at run time with a CJK font and
the given face printed as its portrait, photographed on a table (:mod:`shiren.eval.idcard_*`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import cv2
import numpy as np
import pytest

from shiren.eval.idcard_content import Person, draw_person
from shiren.eval.idcard_photo import photograph
from shiren.eval.idcard_render import CardPainter, print_portrait
from shiren.eval.idcard_synth import CjkFontMissingError, find_cjk_font


def painter() -> CardPainter:
    """The card painter; the test skips (fails in CI) without a CJK font."""
    try:
        return CardPainter(find_cjk_font())
    except CjkFontMissingError:
        pytest.skip("no CJK font (scripts/browser-deps.sh installs fonts-wqy-zenhei)")


def holder(seed: int, today: date, **changes: object) -> Person:
    """A fictional holder with a valid number and a card valid on ``today``."""
    person = draw_person(np.random.default_rng(seed), invalid_share=0.0, today=today)
    return replace(person, **changes)  # type: ignore[arg-type]


def front_photo(paint: CardPainter, face_jpeg: bytes, person: Person, seed: int = 0) -> bytes:
    """A JPEG photo of ``person``'s card front with ``face_jpeg``'s face as the portrait."""
    rng = np.random.default_rng(seed)
    face = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    portrait = print_portrait(np.ascontiguousarray(face[..., ::-1]), rng)
    return photograph(paint.front(person, portrait, rng), "none", rng).jpeg


def back_photo(paint: CardPainter, person: Person, seed: int = 1) -> bytes:
    """A JPEG photo of ``person``'s card back."""
    rng = np.random.default_rng(seed)
    return photograph(paint.back(person, rng), "none", rng).jpeg


__all__ = ["back_photo", "front_photo", "holder", "painter"]

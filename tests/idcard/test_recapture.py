"""The recapture cue against simulated recaptures (shiren.eval.idcard_recapture): a sharp photo
of the card on a screen or of a halftone printout raises it, the card photographed itself does
not; and the simulation itself (shape, seeding, its kinds)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from shiren.eval.idcard_recapture import KINDS, recapture, score_photo, summary
from shiren.eval.idcard_render import FlatCard
from shiren.idcard import checks, locate
from shiren.idcard.card import CardCheck, CardReading, CardSide

from .cards import _rounded_mask, photograph, render_front


def flat() -> FlatCard:
    return FlatCard(render_front(), _rounded_mask(), None)


def decoded(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[:, :, ::-1])


def check_on(photo: np.ndarray) -> checks.CardCheck:
    found = locate.find_card(photo)
    assert found is not None
    card = locate.rectify(photo, found.corners)
    return checks.recapture(card, glare=0.0, photo_region=locate.inside(photo, found.corners))


@pytest.mark.parametrize(("kind", "seed"), [("screen", 5), ("print", 0)])
def test_a_sharp_recapture_raises_the_cue(kind: str, seed: int) -> None:
    """Seeds whose recapture is sharp (the level ``none``: no defocus) and whose grid the sensor
    aliases into a visible moiré: a screen at 0.69 screen pixels per card pixel, a 119-lpi
    halftone printed at 139 %."""
    shot = recapture(flat(), kind, "none", np.random.default_rng(seed))
    check = check_on(decoded(shot.jpeg))
    assert check.passed is False, check.detail
    assert float(check.detail["moire_prominence"]) > checks.MOIRE_PROMINENCE  # type: ignore[arg-type]


def test_the_card_photographed_itself_does_not() -> None:
    check = check_on(photograph(render_front()))
    assert check.passed is True, check.detail
    assert float(check.detail["moire_prominence"]) < checks.MOIRE_PROMINENCE  # type: ignore[arg-type]


def test_a_blurred_recapture_shows_no_moire() -> None:
    """Defocus blurs the screen's grid before the sensor samples it: nothing left to see (and
    nothing this cue can catch)."""
    shot = recapture(flat(), "screen", "moderate", np.random.default_rng(1))
    assert shot.settings["defocus_px"] > 1.0
    assert checks.moire_peak(locate.inside(decoded(shot.jpeg), shot.corners.astype(np.float32))) < (
        checks.MOIRE_PROMINENCE
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_simulation(kind: str) -> None:
    one = recapture(flat(), kind, "moderate", np.random.default_rng(3))
    again = recapture(flat(), kind, "moderate", np.random.default_rng(3))
    assert one.jpeg == again.jpeg
    assert one.kind == kind
    image = decoded(one.jpeg)
    assert image.shape == (960, 1280, 3)
    assert one.corners.shape == (4, 2)
    assert (one.corners >= 0).all()
    assert (one.corners[:, 0] <= 1280).all()
    assert (one.corners[:, 1] <= 960).all()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="recapture"):
        recapture(flat(), "hologram", "moderate", np.random.default_rng(0))


class FakeReader:
    """Flags every photo whose first byte is odd; reads nothing from a photo starting with 0."""

    def read(self, image: bytes, **_: object) -> CardReading:
        if image[0] == 0:
            return CardReading(CardSide.UNKNOWN, {}, (), None, None, ("idcard.not_found",))
        odd = image[0] % 2 == 1
        detail = {"score": 0.9 if odd else 0.1, "cues": {"moire": 0.9 if odd else 0.1},
                  "moire_prominence": 0.7 if odd else 0.3}  # fmt: skip
        check = CardCheck("idcard.recapture_suspected", not odd, detail)
        return CardReading(CardSide.FRONT, {}, (check,), None, None, ())


def test_the_measurement_adds_up() -> None:
    scored = [score_photo(FakeReader(), bytes([b])) for b in (0, 1, 2, 3)]
    assert [s.read for s in scored] == [False, True, True, True]
    assert [s.flagged for s in scored] == [False, True, False, True]
    out = summary(scored)
    assert (out["photos"], out["read"]) == (4, 3)
    assert (out["flagged"]["k"], out["flagged"]["n"]) == (2, 4)
    assert (out["flagged_when_read"]["k"], out["flagged_when_read"]["n"]) == (2, 3)
    assert out["moire_prominence"]["max"] == 0.7
    assert out["cue_moire"]["p50"] == 0.9

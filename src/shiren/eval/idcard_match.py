"""Does the portrait a reader cuts from a card still match its holder's selfie?

For each synthetic front whose face comes from an identity with two images or more, every
*other* image of that person plays the selfie.  Two comparisons are scored with shiren's own face
engine (a :class:`~shiren.verifier.Verifier`'s templates and score; higher = more alike):

* ``card_portrait`` — selfie vs the portrait the reader cut out of the photographed card (what a
  lender comparing a selfie with an uploaded ID card gets);
* ``original`` — selfie vs the full original photo the card was printed from (the same pairs
  without the card: the price of printing, photographing and cutting is the difference).

Impostors: the same card portrait (or original photo) against every image of every other
identity in the face bank.  Reported for both: FNMR and FMR at the shipped pass threshold,
the threshold giving FMR <= 1e-2 (and 1e-3) on that comparison's impostors and the FNMR there,
and a proposed card-portrait threshold.  A portrait in which no face is found (or no portrait)
scores ``-inf`` against everyone: a false non-match, never a false match (failure policy
"reject", :func:`shiren.eval.metrics.apply_failure_policy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from shiren.errors import FaceError, ImageError
from shiren.eval.idcard_eval import LevelRun, rate
from shiren.eval.idcard_synth import FaceBank
from shiren.eval.metrics import operating_point

if TYPE_CHECKING:
    from shiren.verifier import Verifier

FloatArray = npt.NDArray[np.float32]
FMR_TARGETS: Final = (1e-2, 1e-3)


def templates_of(
    verifier: Verifier, images: Mapping[str, Any], progress: Callable[[int], object] | None = None
) -> dict[str, FloatArray | None]:
    """``{key: template or None}`` for images given as paths or RGB arrays (None: no usable
    face)."""
    out: dict[str, FloatArray | None] = {}
    for key, image in images.items():
        try:
            out[key] = verifier.analyze(image).template
        except (FaceError, ImageError):
            out[key] = None
        if progress is not None:
            progress(1)
    return out


def portrait_match(
    verifier: Verifier,
    bank: FaceBank,
    run: LevelRun,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """The card-portrait match of one level's fronts (see the module docstring)."""
    people = {p: paths for p, paths in bank.people.items() if len(paths) >= 2}
    cards = [t for t in run.truths if t.face is not None and t.face[0] in people]
    bank_templates = templates_of(
        verifier, {path: str(bank.root / path) for paths in people.values() for path in paths},
        progress,
    )  # fmt: skip
    portraits = templates_of(
        verifier, {str(t.index): run.portraits[t.index] for t in cards if t.index in run.portraits},
        progress,
    )  # fmt: skip
    scores: dict[str, dict[str, list[float]]] = {
        "card_portrait": {"genuine": [], "impostor": []},
        "original": {"genuine": [], "impostor": []},
    }
    for truth in cards:
        assert truth.face is not None
        person, used = truth.face
        probes = {
            "card_portrait": portraits.get(str(truth.index)),
            "original": bank_templates.get(used),
        }
        for name, probe in probes.items():
            for other, paths in people.items():
                kind = "genuine" if other == person else "impostor"
                for path in paths:
                    if path != used:
                        scores[name][kind].append(_score(verifier, probe, bank_templates[path]))
    threshold = float(verifier.threshold)
    report = {name: _protocol(s["genuine"], s["impostor"], threshold) for name, s in scores.items()}
    report["card_portrait"]["fta"] = rate(
        sum(portraits.get(str(t.index)) is None for t in cards), len(cards)
    )
    return {
        "cards": len(cards),
        "identities": len(people),
        "shipped_threshold": threshold,
        **report,
        "proposed_card_threshold": _proposal(report["card_portrait"]),
    }


def _score(verifier: Verifier, probe: FloatArray | None, reference: FloatArray | None) -> float:
    if probe is None or reference is None:
        return -math.inf
    return float(verifier.score(probe, reference))


def _protocol(
    genuine: Sequence[float], impostor: Sequence[float], threshold: float
) -> dict[str, Any]:
    g, i = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    out: dict[str, Any] = {
        "n_genuine": int(g.size),
        "n_impostor": int(i.size),
        "fnmr_at_shipped": rate(int((g < threshold).sum()), int(g.size)),
        "fmr_at_shipped": rate(int((i >= threshold).sum()), int(i.size)),
    }
    if g.size == 0 or i.size == 0:
        return out
    for target in FMR_TARGETS:
        point = operating_point(g, i, target)
        out[f"at_fmr_{target:g}"] = {
            "threshold": point.threshold,
            "fnmr": rate(point.n_genuine - point.n_true_accept, point.n_genuine),
            "fmr": rate(point.n_false_accept, point.n_impostor),
            "resolvable": point.resolvable,
        }
    return out


def _proposal(card: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card-portrait threshold at FMR 1e-3 when the impostors resolve it, else at 1e-2."""
    for target in sorted(FMR_TARGETS):
        point = card.get(f"at_fmr_{target:g}")
        if point is not None and point["resolvable"]:
            return {
                "threshold": point["threshold"],
                "fmr_target": target,
                "fnmr": point["fnmr"],
                "note": "indicative: few identities; confirm on a larger East-Asian set",
            }
    return None


__all__ = ["FMR_TARGETS", "portrait_match", "templates_of"]

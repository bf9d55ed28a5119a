"""The ISO/IEC 30107-3 PAD metrics, as pure functions of scores, labels and a threshold.

Conventions, everywhere in this module:

* a **score** is a live score, higher = more likely bona fide; a presentation is *accepted as
  bona fide* when ``score >= threshold`` (a tie at the threshold is accepted);
* ``-inf`` marks a **failure to acquire** (no face found, unreadable image).  It is rejected at
  every threshold: a deployed system that cannot find a face does not let the attempt through.
  So an attack that fails to acquire counts as *correctly rejected* and a live presentation that
  fails counts as a *BPCER error*.  This is the conservative reading for the bona fide user and
  the optimistic one for APCER, which is why failures to acquire are always reported separately
  next to the rates.  ``NaN`` and ``+inf`` are refused;
* **APCER** of one attack type (PAI species) = attacks of that type accepted / attacks of that
  type.  The reported ``apcer`` is the ISO one: the **maximum** over the attack types present;
* **BPCER** = bona fide presentations rejected / bona fide presentations;
* **ACER** = (APCER + BPCER) / 2 (deprecated by ISO/IEC 30107-3 but still quoted everywhere);
* ``BPCER@APCER=x``: BPCER at the *smallest* threshold whose worst-type APCER is ``<= x``;
  ``APCER@BPCER=x``: worst-type APCER at the *largest* threshold whose BPCER is ``<= x``.  Both
  are properties of the curve of the rows they are computed on (an oracle threshold), unlike
  APCER/BPCER/ACER, which use a threshold fixed in advance on other rows.

Every rate carries its counts and an exact (Clopper–Pearson) 95 % interval.  Nothing here reads a
file or runs a model: :mod:`shiren.eval.pad` assembles these numbers into the report, so they can
be checked on hand-computed examples (tests/test_pad_eval.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.eval.intervals import clopper_pearson
from shiren.eval.metrics import Roc, auc, max_false_accepts, roc_curve

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FTA_SCORE = -math.inf
"""The score of a presentation that failed to acquire: rejected at every threshold."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``errors`` out of ``n`` trials; ``rate`` and ``ci95`` are ``None`` when ``n == 0``."""

    errors: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    @property
    def ci95(self) -> tuple[float, float] | None:
        return clopper_pearson(self.errors, self.n) if self.n else None

    def to_dict(self) -> dict[str, Any]:
        ci = self.ci95
        return {
            "rate": self.rate,
            "errors": self.errors,
            "n": self.n,
            "ci95": list(ci) if ci is not None else None,
        }


def check_pad_scores(scores: npt.ArrayLike, name: str = "scores") -> FloatArray:
    """``scores`` as a 1-D float64 array; ``-inf`` (failure to acquire) is legal, NaN and
    ``+inf`` are refused with :class:`ValueError`.  May be empty."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN: score failures as -inf (failure to acquire)")
    if np.isposinf(s).any():
        raise ValueError(f"{name} contains +inf, which is not a live score")
    return s


def apcer(attack_scores: npt.ArrayLike, threshold: float) -> Rate:
    """Attacks accepted as bona fide (``score >= threshold``) out of all attacks given."""
    s = check_pad_scores(attack_scores, "attack_scores")
    return Rate(int(np.count_nonzero(s >= threshold)), int(s.size))


def bpcer(live_scores: npt.ArrayLike, threshold: float) -> Rate:
    """Bona fide presentations rejected (``score < threshold``, or failed to acquire)."""
    s = check_pad_scores(live_scores, "live_scores")
    return Rate(int(np.count_nonzero(s < threshold)), int(s.size))


def apcer_by_type(
    scores: npt.ArrayLike,
    is_live: npt.ArrayLike,
    types: Sequence[str],
    threshold: float,
    *,
    expected_types: Iterable[str] = (),
) -> dict[str, Rate]:
    """APCER of every attack type, sorted by type name.

    ``types`` gives each row's attack type (ignored on live rows).  ``expected_types`` adds
    types that may have no row here (e.g. present in the fit rows only): they are reported with
    ``n = 0`` and ``rate = None`` instead of silently disappearing.
    """
    s, live, kinds = _rows(scores, is_live, types)
    names = sorted(set(kinds[~live].tolist()) | set(expected_types))
    return {t: apcer(s[~live & (kinds == t)], threshold) for t in names}


def worst_type(by_type: Mapping[str, Rate]) -> tuple[str, Rate] | None:
    """The attack type with the highest APCER (ISO/IEC 30107-3's APCER of the system), ties to
    the type name first in order; types without rows are ignored; ``None`` if none has rows."""
    rated = [(t, r) for t, r in sorted(by_type.items()) if r.n > 0]
    if not rated:
        return None
    return max(rated, key=lambda item: item[1].errors / item[1].n)


def acer(apcer_rate: float | None, bpcer_rate: float | None) -> float | None:
    """``(APCER + BPCER) / 2``, or ``None`` when either is undefined."""
    if apcer_rate is None or bpcer_rate is None:
        return None
    return (apcer_rate + bpcer_rate) / 2.0


def threshold_at_bpcer(live_scores: npt.ArrayLike, target: float) -> float | None:
    """The **largest** threshold whose BPCER on ``live_scores`` is ``<= target``.

    With the live scores sorted ascending and ``k`` the number of rejections the target allows
    (exactly: the largest ``k`` with ``k / n <= target``), that is the ``(k+1)``-th lowest live
    score: every live score below it is rejected (at most ``k``, fewer with ties) and any higher
    threshold would also reject it.  The largest such threshold gives the lowest APCER.

    When more than ``k`` live rows failed to acquire the target cannot be met; the threshold is
    then the lowest finite live score (accept every live face that was found).  Returns
    ``None`` when there is no live row, ``+inf`` when every live row failed to acquire.
    """
    s = np.sort(check_pad_scores(live_scores, "live_scores"))
    if s.size == 0:
        return None
    k = max_false_accepts(int(s.size), target)
    finite = s[np.isfinite(s)]
    if finite.size == 0:
        return math.inf
    if k >= s.size:  # every live row may be rejected: no constraint; accept only above all
        return float(np.nextafter(finite[-1], math.inf))
    return float(s[k]) if math.isfinite(s[k]) else float(finite[0])


def threshold_at_apcer(
    scores: npt.ArrayLike, is_live: npt.ArrayLike, types: Sequence[str], target: float
) -> float | None:
    """The **smallest** threshold at which the APCER of *every* attack type is ``<= target``.

    Per type with ``n`` attacks, at most ``k`` (largest ``k / n <= target``) may score at or
    above the threshold, so it must exceed the ``(k+1)``-th highest attack score of that type;
    the per-type threshold is the lowest observed score (of any row) above that boundary, and the
    result is the maximum over types.  Returns ``None`` when there is no attack row.  Thresholds
    are always finite: if every attack may be accepted it is the lowest finite score (accept every
    acquired presentation); if no observed score lies above a boundary it is just above it.
    """
    s, live, kinds = _rows(scores, is_live, types)
    attacks = ~live
    if not attacks.any():
        return None
    candidates = np.unique(s[np.isfinite(s)])
    lowest = float(candidates[0]) if candidates.size else 0.0
    chosen = -math.inf
    for kind in sorted(set(kinds[attacks].tolist())):
        a = np.sort(s[attacks & (kinds == kind)])
        k = max_false_accepts(int(a.size), target)
        if k >= a.size:
            continue
        boundary = a[a.size - 1 - k]
        if not math.isfinite(boundary):  # -inf: the failures alone keep the type in target
            continue
        j = int(np.searchsorted(candidates, boundary, side="right"))
        above = (
            float(candidates[j]) if j < candidates.size else float(np.nextafter(boundary, 1e300))
        )
        chosen = max(chosen, above)
    return chosen if math.isfinite(chosen) else lowest


@dataclass(frozen=True, slots=True)
class PadPoint:
    """One operating point on a set of rows: the threshold and the rates it gives there."""

    threshold: float | None
    bpcer: Rate
    apcer_by_type: dict[str, Rate]

    @property
    def apcer(self) -> float | None:
        worst = worst_type(self.apcer_by_type)
        return worst[1].rate if worst is not None else None

    def to_dict(self) -> dict[str, Any]:
        worst = worst_type(self.apcer_by_type)
        return {
            "threshold": self.threshold,
            "apcer": self.apcer,
            "apcer_worst_type": worst[0] if worst is not None else None,
            "apcer_by_type": {t: r.to_dict() for t, r in self.apcer_by_type.items()},
            "bpcer": self.bpcer.rate,
            "bpcer_detail": self.bpcer.to_dict(),
            "acer": acer(self.apcer, self.bpcer.rate),
        }


def pad_point(
    scores: npt.ArrayLike,
    is_live: npt.ArrayLike,
    types: Sequence[str],
    threshold: float | None,
    *,
    expected_types: Iterable[str] = (),
) -> PadPoint:
    """APCER per type and BPCER at ``threshold`` (``None``: no threshold, every rate empty)."""
    s, live, kinds = _rows(scores, is_live, types)
    if threshold is None:
        names = sorted(set(kinds[~live].tolist()) | set(expected_types))
        return PadPoint(None, Rate(0, 0), {t: Rate(0, 0) for t in names})
    return PadPoint(
        threshold,
        bpcer(s[live], threshold),
        apcer_by_type(s, live, kinds.tolist(), threshold, expected_types=expected_types),
    )


def bpcer_at_apcer(
    scores: npt.ArrayLike, is_live: npt.ArrayLike, types: Sequence[str], target: float
) -> dict[str, Any]:
    """BPCER at the smallest threshold keeping every attack type's APCER ``<= target``.

    ``resolvable`` is ``False`` when some type has fewer than ``1 / target`` attacks: then the
    only way to meet the target is to accept none of them and the result says little about the
    true rate at ``target``.
    """
    s, live, kinds = _rows(scores, is_live, types)
    t = threshold_at_apcer(s, live, kinds.tolist(), target)
    point = pad_point(s, live, kinds.tolist(), t)
    sizes = Counter(kinds[~live].tolist())
    return {
        "target_apcer": target,
        **point.to_dict(),
        "resolvable": bool(sizes)
        and all(max_false_accepts(n, target) >= 1 for n in sizes.values()),
    }


def apcer_at_bpcer(
    scores: npt.ArrayLike, is_live: npt.ArrayLike, types: Sequence[str], target: float
) -> dict[str, Any]:
    """Worst-type APCER at the largest threshold keeping BPCER ``<= target``."""
    s, live, kinds = _rows(scores, is_live, types)
    t = threshold_at_bpcer(s[live], target)
    point = pad_point(s, live, kinds.tolist(), t)
    n_live = int(live.sum())
    return {
        "target_bpcer": target,
        **point.to_dict(),
        "resolvable": n_live > 0 and max_false_accepts(n_live, target) >= 1,
    }


def pad_roc(scores: npt.ArrayLike, is_live: npt.ArrayLike) -> Roc | None:
    """The ROC with live = genuine and attacks pooled = impostors (``far`` = pooled APCER,
    ``fnmr`` = BPCER), or ``None`` unless both classes are present."""
    s = check_pad_scores(scores)
    live = np.asarray(is_live, dtype=bool)
    if s.size == 0 or live.all() or not live.any():
        return None
    return roc_curve(s, live)


def pad_auc(scores: npt.ArrayLike, is_live: npt.ArrayLike) -> float | None:
    """P(live score > attack score) + ½ P(tie), attacks pooled; ``None`` without both classes."""
    roc = pad_roc(scores, is_live)
    return auc(roc) if roc is not None else None


def pad_metrics(
    scores: npt.ArrayLike,
    is_live: npt.ArrayLike,
    types: Sequence[str],
    threshold: float | None,
    *,
    subjects: Sequence[str | None] | None = None,
    expected_types: Iterable[str] = (),
) -> dict[str, Any]:
    """Every reported number for one scorer on one set of rows, at a threshold fixed in advance.

    Keys: ``threshold``, ``apcer`` (worst type), ``apcer_worst_type``, ``apcer_by_type``,
    ``apcer_pooled``, ``bpcer``, ``bpcer_detail``, ``acer``, ``bpcer_at_apcer_1pct``,
    ``bpcer_at_apcer_5pct``, ``apcer_at_bpcer_5pct`` (numbers; details under
    ``operating_points``), ``auc``, ``per_subject`` and ``counts``.
    """
    s, live, kinds = _rows(scores, is_live, types)
    expected = sorted(set(expected_types))
    point = pad_point(s, live, kinds.tolist(), threshold, expected_types=expected)
    at_1 = bpcer_at_apcer(s, live, kinds.tolist(), 0.01)
    at_5 = bpcer_at_apcer(s, live, kinds.tolist(), 0.05)
    apcer_5 = apcer_at_bpcer(s, live, kinds.tolist(), 0.05)
    out = point.to_dict()
    pooled = apcer(s[~live], threshold) if threshold is not None else Rate(0, 0)
    out["apcer_pooled"] = pooled.to_dict()
    out["bpcer_at_apcer_1pct"] = at_1["bpcer"]
    out["bpcer_at_apcer_5pct"] = at_5["bpcer"]
    out["apcer_at_bpcer_5pct"] = apcer_5["apcer"]
    out["operating_points"] = {
        "bpcer_at_apcer_1pct": at_1,
        "bpcer_at_apcer_5pct": at_5,
        "apcer_at_bpcer_5pct": apcer_5,
    }
    out["auc"] = pad_auc(s, live)
    out["counts"] = {
        "n": int(s.size),
        "live": int(live.sum()),
        "attack": int((~live).sum()),
        "attack_by_type": dict(sorted(Counter(kinds[~live].tolist()).items())),
        "failed_to_acquire": int(np.isneginf(s).sum()),
    }
    out["per_subject"] = _per_subject(s, live, kinds, subjects, threshold)
    return out


def _per_subject(
    s: FloatArray,
    live: BoolArray,
    kinds: npt.NDArray[np.str_],
    subjects: Sequence[str | None] | None,
    threshold: float | None,
) -> list[dict[str, Any]]:
    if subjects is None or threshold is None:
        return []
    subj = np.array(["" if v is None else str(v) for v in subjects], dtype=np.str_)
    if subj.shape != s.shape:
        raise ValueError("subjects must have one entry per score")
    rows = []
    for name in sorted(set(subj.tolist()) - {""}):
        mask = subj == name
        point = pad_point(s[mask], live[mask], kinds[mask].tolist(), threshold)
        row = {"subject": name, **point.to_dict()}
        row["n_live"], row["n_attack"] = int(live[mask].sum()), int((~live[mask]).sum())
        row["failed_to_acquire"] = int(np.isneginf(s[mask]).sum())
        rows.append(row)
    return rows


def _rows(
    scores: npt.ArrayLike, is_live: npt.ArrayLike, types: Sequence[str]
) -> tuple[FloatArray, BoolArray, npt.NDArray[np.str_]]:
    s = check_pad_scores(scores)
    live = np.asarray(is_live)
    if live.shape != s.shape:
        raise ValueError(f"is_live must have shape {s.shape}, got {live.shape}")
    if live.dtype != np.bool_ and not np.isin(live, (0, 1)).all():
        raise ValueError("is_live must be booleans or 0/1")
    kinds = np.asarray(list(types), dtype=np.str_) if len(types) else np.zeros(0, dtype=np.str_)
    if kinds.shape != s.shape:
        raise ValueError(f"types must have shape {s.shape}, got {kinds.shape}")
    return s, live.astype(bool), kinds


__all__ = [
    "FTA_SCORE",
    "PadPoint",
    "Rate",
    "acer",
    "apcer",
    "apcer_at_bpcer",
    "apcer_by_type",
    "bpcer",
    "bpcer_at_apcer",
    "check_pad_scores",
    "pad_auc",
    "pad_metrics",
    "pad_point",
    "pad_roc",
    "threshold_at_apcer",
    "threshold_at_bpcer",
    "worst_type",
]

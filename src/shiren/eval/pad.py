"""Presentation-attack detection (PAD) evaluation with the ISO/IEC 30107-3 metrics.

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

Every rate carries its counts and an exact (Clopper–Pearson) 95 % interval.  The pure metric
functions come first; reading labels, scoring images and assembling a report follow.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox
from shiren.errors import ErrorCode, InputError
from shiren.eval.intervals import clopper_pearson
from shiren.eval.metrics import Roc, auc, max_false_accepts, roc_curve
from shiren.liveness.pad_model import PadModel, train_pad_model
from shiren.liveness.texture import texture_features

if TYPE_CHECKING:
    from shiren.models.protocols import FaceDetector, ModelInfo, PresentationAttackDetector

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
InputMode = Literal["frames", "crops"]

FTA_SCORE = -math.inf
"""The score of a presentation that failed to acquire: rejected at every threshold."""

DEFAULT_TARGET_BPCER = 0.05
"""Operating point used when the threshold is chosen on the fit rows: BPCER <= 5 %."""

LIVE_LABEL = "live"
DEFAULT_ATTACK_LABEL = "attack"
SPLIT_COLUMNS = ("split", "official_nuaa_split")


# --------------------------------------------------------------------------------------------
# Pure metrics
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# DET plot
# --------------------------------------------------------------------------------------------


def plot_pad_det(curves: Mapping[str, Roc], path: Path, *, title: str = "PAD DET") -> Path:
    """DET plot (ISO/IEC 30107-3 style): BPCER against APCER (attacks pooled), both on
    normal-deviate axes, one curve per scorer.  Reuses :mod:`shiren.eval.plots`' axes, so PAD and
    verification plots look alike; only the axis names differ."""
    from shiren.eval.plots import _det_axes, _finish, _new_figure, probit

    if not curves:
        raise ValueError("plot_pad_det needs at least one curve")
    fig, ax = _new_figure()
    floor = min(0.5 / min(r.n_genuine, r.n_impostor) for r in curves.values())
    for name, roc in curves.items():
        apcer_curve = np.clip(roc.far, 0.5 / roc.n_impostor, 1 - 0.5 / roc.n_impostor)
        bpcer_curve = np.clip(roc.fnmr, 0.5 / roc.n_genuine, 1 - 0.5 / roc.n_genuine)
        ax.plot(
            probit(apcer_curve),
            probit(bpcer_curve),
            lw=1.5,
            label=f"{name} AUC={auc(roc):.4f} (live={roc.n_genuine}, attack={roc.n_impostor})",
        )
    _det_axes(ax, max(floor, 1e-5))
    ax.set_xlabel("APCER (attacks accepted)")
    ax.set_ylabel("BPCER (bona fide rejected)")
    return _finish(fig, ax, title, path)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PadSample:
    """One labelled image: ``path`` relative to the data root, ``label`` the attack type (or
    ``"live"``), ``split`` and ``subject`` when the CSV has them."""

    path: str
    is_live: bool
    label: str
    split: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class PadLabels:
    """The rows of a ``labels.csv`` and what is known about the file itself."""

    samples: tuple[PadSample, ...]
    source: Path
    sha256: str
    has_split: bool
    has_subject: bool

    def rows(self, split: str | None) -> list[PadSample]:
        """Rows of ``split``; every row when the CSV has no split column or ``split`` is None."""
        if split is None or not self.has_split:
            return list(self.samples)
        return [s for s in self.samples if s.split == split]

    def label_counts(self, rows: Iterable[PadSample]) -> dict[str, int]:
        return dict(sorted(Counter(s.label for s in rows).items()))


def read_pad_labels(path: Path) -> PadLabels:
    """Read a PAD ``labels.csv``: columns ``path``, ``is_live`` (1 bona fide / 0 attack) and
    optionally ``label`` (attack type; live rows are ``live``), ``split`` or
    ``official_nuaa_split``, ``subject``.

    Paths must be relative and stay inside the data root (no ``..``): a labels file is data, and
    data must not make the evaluator read arbitrary files.  Errors are :class:`InputError` with
    the offending line number.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            "labels file not found", code=ErrorCode.INPUT_FILE_NOT_FOUND, detail={"file": path.name}
        ) from None
    except OSError:
        raise InputError(
            "labels file cannot be read",
            code=ErrorCode.INPUT_FILE_UNREADABLE,
            detail={"file": path.name},
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad_labels("labels file is not UTF-8", path, 0) from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if not {"path", "is_live"} <= set(columns):
        raise _bad_labels("labels file needs the columns path and is_live", path, 1)
    split_col = next((c for c in SPLIT_COLUMNS if c in columns), None)
    samples: list[PadSample] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        rel = row["path"]
        if not rel:
            raise _bad_labels("empty path", path, line)
        pure = PurePosixPath(rel.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts:
            raise _bad_labels("paths must be relative to the data root, without '..'", path, line)
        if rel in seen:
            raise _bad_labels("duplicate path", path, line)
        seen.add(rel)
        flag = row["is_live"].lower()
        if flag not in {"0", "1", "true", "false"}:
            raise _bad_labels("is_live must be 1 (bona fide) or 0 (attack)", path, line)
        live = flag in {"1", "true"}
        label = row.get("label") or (LIVE_LABEL if live else DEFAULT_ATTACK_LABEL)
        if not live and label == LIVE_LABEL:
            raise _bad_labels("an attack row (is_live=0) is labelled live", path, line)
        samples.append(
            PadSample(
                path=str(pure),
                is_live=live,
                label=LIVE_LABEL if live else label,
                split=(row.get(split_col) or None) if split_col else None,
                subject=row.get("subject") or None,
            )
        )
    if not samples:
        raise _bad_labels("labels file has no rows", path, 1)
    return PadLabels(
        samples=tuple(samples),
        source=path,
        sha256=hashlib.sha256(data).hexdigest(),
        has_split=split_col is not None,
        has_subject="subject" in columns,
    )


def _bad_labels(message: str, path: Path, line: int) -> InputError:
    return InputError(
        message, code=ErrorCode.INPUT_INVALID, detail={"file": path.name, "line": line}
    )


# --------------------------------------------------------------------------------------------
# Acquisition: image → face box → base score and texture features, once per image
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Acquired:
    """What was measured on one image.  ``failure`` is the error code when the face could not be
    acquired (then ``box``, ``base_live`` and ``features`` are ``None``)."""

    path: str
    box: BBox | None = None
    base_live: float | None = None
    features: FloatArray | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(slots=True)
class Timings:
    """Per-image wall times in milliseconds, by stage."""

    stages: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stages.setdefault(stage, []).append(1000.0 * seconds)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {
            stage: {
                "n": len(ms),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p95_ms": round(float(np.percentile(ms, 95)), 3),
                "mean_ms": round(float(np.mean(ms)), 3),
            }
            for stage, ms in sorted(self.stages.items())
            if ms
        }


def acquire(
    paths: Sequence[str],
    root: Path,
    *,
    input_mode: InputMode,
    detector: FaceDetector | None,
    base: PresentationAttackDetector | None,
    texture: bool,
    timings: Timings | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Acquired]:
    """Load every distinct image once, find its face and compute what the scorers need.

    ``input_mode="frames"``: the best face of ``detector`` (none → failure ``face.not_found``);
    ``"crops"``: the image is the face, the box is the whole image.  An unreadable image or a face
    the base detector refuses (an :class:`InputError`) is a failure to acquire with that error's
    code; a :class:`~shiren.errors.ServiceError` (a model broken) propagates.
    """
    from shiren.core.image import load_image

    if input_mode == "frames" and detector is None:
        raise ValueError("input_mode='frames' needs a face detector")
    out: dict[str, Acquired] = {}
    for rel in dict.fromkeys(paths):
        out[rel] = _acquire_one(rel, root, input_mode, detector, base, texture, timings, load_image)
        if progress is not None:
            progress(1)
    return out


def _acquire_one(
    rel: str,
    root: Path,
    input_mode: InputMode,
    detector: FaceDetector | None,
    base: PresentationAttackDetector | None,
    texture: bool,
    timings: Timings | None,
    load: Callable[[Path], Any],
) -> Acquired:
    clock = timings or Timings()
    try:
        start = time.perf_counter()
        pixels = load(root / rel).pixels
        clock.add("decode", time.perf_counter() - start)
        if input_mode == "crops":
            box = BBox(0.0, 0.0, float(pixels.shape[1]), float(pixels.shape[0]))
        else:
            assert detector is not None
            start = time.perf_counter()
            found = detector.detect(pixels)
            clock.add("detect", time.perf_counter() - start)
            if not found:
                return Acquired(rel, failure=str(ErrorCode.FACE_NOT_FOUND))
            box = found[0].box
        item = Acquired(rel, box=box)
        if base is not None:
            start = time.perf_counter()
            item.base_live = float(base.live_score(pixels, box))
            clock.add("base_model", time.perf_counter() - start)
        if texture:
            start = time.perf_counter()
            item.features = texture_features(pixels, box)
            clock.add("texture_features", time.perf_counter() - start)
        return item
    except InputError as exc:
        return Acquired(rel, failure=str(exc.code))
    except FileNotFoundError:
        return Acquired(rel, failure=str(ErrorCode.INPUT_FILE_NOT_FOUND))


# --------------------------------------------------------------------------------------------
# Scorers and the report
# --------------------------------------------------------------------------------------------

Scorer = Callable[[Sequence[Acquired]], FloatArray]
"""Scores of acquired images, ``-inf`` for failures to acquire."""


def base_scorer(items: Sequence[Acquired]) -> FloatArray:
    """The base detector's live probability, as measured during acquisition."""
    return np.array(
        [a.base_live if a.ok and a.base_live is not None else FTA_SCORE for a in items],
        dtype=np.float64,
    )


def model_scorer(model: PadModel) -> Scorer:
    """Scores of a texture (or fused) :class:`PadModel` from the acquired features."""

    def score(items: Sequence[Acquired]) -> FloatArray:
        out = np.full(len(items), FTA_SCORE, dtype=np.float64)
        ok = [i for i, a in enumerate(items) if a.ok and a.features is not None]
        if model.uses_base:
            ok = [i for i in ok if items[i].base_live is not None]
        if ok:
            feats = np.stack([_features(items[i]) for i in ok])
            base = [float(items[i].base_live or 0.0) for i in ok] if model.uses_base else None
            out[ok] = model.probabilities(feats, base)
        return out

    return score


def _features(item: Acquired) -> FloatArray:
    if item.features is None:  # pragma: no cover - filtered by the callers
        raise ValueError(f"no features for {item.path}")
    return item.features


def fit_model_on(
    rows: Sequence[PadSample],
    acquired: Mapping[str, Acquired],
    *,
    base_info: ModelInfo | None,
    training: Mapping[str, Any],
    l2: float = 1e-2,
) -> PadModel:
    """Fit a texture (``base_info`` None) or fused model on the acquired ``rows``.

    Rows that failed to acquire cannot be fitted on and are left out (their count is recorded
    in ``training.rows_failed_to_acquire``).  Raises :class:`InputError` when a class is missing.
    """
    usable = [
        r
        for r in rows
        if acquired[r.path].ok
        and acquired[r.path].features is not None
        and (base_info is None or acquired[r.path].base_live is not None)
    ]
    n_live = sum(r.is_live for r in usable)
    if n_live == 0 or n_live == len(usable):
        raise InputError(
            "fitting a PAD model needs live and attack rows that were acquired",
            code=ErrorCode.INPUT_INVALID,
            detail={"live": n_live, "attack": len(usable) - n_live},
        )
    feats = np.stack([_features(acquired[r.path]) for r in usable])
    labels = np.array([r.is_live for r in usable])
    base = (
        np.array([float(acquired[r.path].base_live or 0.0) for r in usable])
        if base_info is not None
        else None
    )
    info = dict(training)
    info["rows_used"] = len(usable)
    info["rows_failed_to_acquire"] = len(rows) - len(usable)
    info["rows_used_per_label"] = dict(sorted(Counter(r.label for r in usable).items()))
    return train_pad_model(feats, labels, base_live=base, base_info=base_info, training=info, l2=l2)


DEFAULT_FOLDS = 5


@dataclass(frozen=True, slots=True)
class CrossFitted:
    """A model fitted on all fit rows, and the out-of-fold scores of those rows.

    Why: a model scores the rows it was trained on too confidently (near 0 or 1), so a threshold
    chosen on them is far too strict for new data (on NUAA: BPCER 5 % on the fit rows became
    over 10 % on the test session).  Each fit row is therefore scored by a model trained
    *without* its fold, and the threshold is chosen on those scores, as it would be on new data.
    """

    model: PadModel
    out_of_fold: dict[str, float]
    folds: int
    grouped_by: str

    def scorer(self) -> Scorer:
        """Out-of-fold scores for the fit rows, the full model's scores for every other row."""
        full = model_scorer(self.model)

        def score(items: Sequence[Acquired]) -> FloatArray:
            out = full(items)
            for i, item in enumerate(items):
                if item.path in self.out_of_fold:
                    out[i] = self.out_of_fold[item.path]
            return out

        return score


def cross_fit(
    rows: Sequence[PadSample],
    acquired: Mapping[str, Acquired],
    *,
    base_info: ModelInfo | None,
    training: Mapping[str, Any],
    l2: float = 1e-2,
    folds: int = DEFAULT_FOLDS,
) -> CrossFitted:
    """Fit on all ``rows`` and score each row out of fold (see :class:`CrossFitted`).

    Folds group rows by ``subject`` when every row has one (so no person is on both sides of a
    fold), else by position; groups go to folds round-robin in sorted order (deterministic).
    A fold whose complement lacks a class is an :class:`InputError`: too little data to fit.
    """
    final = fit_model_on(rows, acquired, base_info=base_info, training=training, l2=l2)
    grouped = all(r.subject for r in rows)
    keys = [str(r.subject) if grouped else str(i) for i, r in enumerate(rows)]
    groups = sorted(set(keys), key=lambda k: (len(k), k))
    n_folds = min(folds, len(groups))
    if n_folds < 2:
        raise InputError(
            "out-of-fold scoring needs at least two subjects or rows",
            code=ErrorCode.INPUT_INVALID,
        )
    fold_of = {g: i % n_folds for i, g in enumerate(groups)}
    scores: dict[str, float] = {}
    for fold in range(n_folds):
        inside = [r for r, k in zip(rows, keys, strict=True) if fold_of[k] != fold]
        held = [r for r, k in zip(rows, keys, strict=True) if fold_of[k] == fold]
        model = fit_model_on(inside, acquired, base_info=base_info, training={}, l2=l2)
        held_scores = model_scorer(model)([acquired[r.path] for r in held])
        scores.update({r.path: float(v) for r, v in zip(held, held_scores, strict=True)})
    return CrossFitted(final, scores, n_folds, "subject" if grouped else "row")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """How the operating threshold is set: ``given`` (a number) or chosen on the fit rows at
    ``target_bpcer``."""

    given: float | None = None
    target_bpcer: float = DEFAULT_TARGET_BPCER


def evaluate_scorers(
    labels: PadLabels,
    acquired: Mapping[str, Acquired],
    scorers: Mapping[str, Scorer],
    *,
    split: str | None,
    fit_split: str | None,
    rule: ThresholdRule,
) -> dict[str, Any]:
    """Choose each scorer's threshold on the fit rows (or use the given one) and report it on
    the report rows.  Returns ``{"scorers": {name: metrics}, "protocol": ..., "rocs": ...}``
    (``rocs`` holds the :class:`Roc` objects for plotting; drop it before writing JSON)."""
    report_rows = labels.rows(split)
    fit_rows = labels.rows(fit_split)
    if not report_rows:
        raise InputError(
            f"no rows in split {split!r}", code=ErrorCode.INPUT_INVALID, detail={"split": split}
        )
    if rule.given is None and not fit_rows:
        raise InputError(
            f"no rows in fit split {fit_split!r} to choose the threshold on",
            code=ErrorCode.INPUT_INVALID,
            detail={"fit_split": fit_split},
        )
    held_out = labels.has_split and split != fit_split and split is not None
    held_out = held_out and not ({r.path for r in report_rows} & {r.path for r in fit_rows})
    expected_types = sorted({r.label for r in labels.samples if not r.is_live})
    out: dict[str, Any] = {}
    rocs: dict[str, Roc] = {}
    for name, scorer in scorers.items():
        report_scores = scorer([acquired[r.path] for r in report_rows])
        source: dict[str, Any]
        if rule.given is not None:
            threshold: float | None = rule.given
            source = {"kind": "given", "value": rule.given}
        else:
            fit_scores = scorer([acquired[r.path] for r in fit_rows])
            fit_live = np.array([r.is_live for r in fit_rows])
            threshold = threshold_at_bpcer(fit_scores[fit_live], rule.target_bpcer)
            fit_point = pad_point(fit_scores, fit_live, [r.label for r in fit_rows], threshold)
            source = {
                "kind": "fit_rows_at_target_bpcer",
                "target_bpcer": rule.target_bpcer,
                "fit_split": fit_split if labels.has_split else None,
                "held_out": held_out,
                "fit_rows": len(fit_rows),
                "fit_bpcer": fit_point.bpcer.rate,
                "fit_apcer": fit_point.apcer,
            }
            if not held_out:
                source["warning"] = (
                    "the threshold was NOT chosen on held-out data (no split column, or the fit "
                    "rows are the reported rows): APCER/BPCER/ACER are optimistic"
                )
        metrics = pad_metrics(
            report_scores,
            np.array([r.is_live for r in report_rows]),
            [r.label for r in report_rows],
            threshold,
            subjects=[r.subject for r in report_rows] if labels.has_subject else None,
            expected_types=expected_types,
        )
        metrics["threshold_source"] = source
        out[name] = metrics
        roc = pad_roc(report_scores, np.array([r.is_live for r in report_rows]))
        if roc is not None:
            rocs[name] = roc
    protocol = {
        "split": split if labels.has_split else None,
        "fit_split": fit_split if labels.has_split else None,
        "has_split_column": labels.has_split,
        "held_out": held_out,
        "report_rows": len(report_rows),
        "fit_rows": len(fit_rows),
        "report_rows_per_label": labels.label_counts(report_rows),
        "fit_rows_per_label": labels.label_counts(fit_rows),
        "failure_to_acquire_policy": (
            "a presentation whose face cannot be acquired is scored -inf: rejected at every "
            "threshold (a BPCER error if live, a correct rejection if an attack); failures are "
            "counted separately under failures_to_acquire"
        ),
        "apcer_definition": "maximum over attack types of the per-type APCER (ISO/IEC 30107-3)",
    }
    return {"scorers": out, "protocol": protocol, "rocs": rocs}


def failures_to_acquire(
    rows: Sequence[PadSample], acquired: Mapping[str, Acquired], *, max_paths: int = 50
) -> dict[str, Any]:
    """Failure-to-acquire counts (with intervals) on ``rows``: overall, live, attack, by reason,
    and the first ``max_paths`` failing paths (relative to the data root)."""
    failed = [r for r in rows if not acquired[r.path].ok]
    live = [r for r in rows if r.is_live]
    return {
        "all": Rate(len(failed), len(rows)).to_dict(),
        "live": Rate(sum(r.is_live for r in failed), len(live)).to_dict(),
        "attack": Rate(sum(not r.is_live for r in failed), len(rows) - len(live)).to_dict(),
        "by_reason": dict(sorted(Counter(str(acquired[r.path].failure) for r in failed).items())),
        "paths": [r.path for r in failed[:max_paths]],
    }


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (models and data in provenance)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_known_research_only(labels: PadLabels, root: Path) -> bool:
    """Whether the data looks like NUAA (research-only terms): its file layout or folder name.
    Used to warn, and to record in a trained model, that it must not be used in production."""
    names = {root.name.lower(), labels.source.parent.name.lower()}
    layout = any(s.path.startswith(("ClientRaw/", "ImposterRaw/")) for s in labels.samples)
    return layout or any("nuaa" in n for n in names)


__all__ = [
    "DEFAULT_FOLDS",
    "DEFAULT_TARGET_BPCER",
    "FTA_SCORE",
    "Acquired",
    "CrossFitted",
    "PadLabels",
    "PadPoint",
    "PadSample",
    "Rate",
    "Scorer",
    "ThresholdRule",
    "Timings",
    "acer",
    "acquire",
    "apcer",
    "apcer_at_bpcer",
    "apcer_by_type",
    "base_scorer",
    "bpcer",
    "bpcer_at_apcer",
    "check_pad_scores",
    "cross_fit",
    "evaluate_scorers",
    "failures_to_acquire",
    "file_sha256",
    "fit_model_on",
    "is_known_research_only",
    "model_scorer",
    "pad_auc",
    "pad_metrics",
    "pad_point",
    "pad_roc",
    "plot_pad_det",
    "read_pad_labels",
    "threshold_at_apcer",
    "threshold_at_bpcer",
    "worst_type",
]

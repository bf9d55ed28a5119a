"""The 1:1 verification report: LFW 10-fold protocol, ROC/DET, EER, TAR@FAR, failures, cohorts.

Inputs are pairs (:mod:`shiren.eval.pairs`) and templates already computed
(:mod:`shiren.eval.embeddings`); this module only counts and derives rates.  A pair whose image
failed to process is scored as a non-match (policy "reject", see
:func:`shiren.eval.metrics.apply_failure_policy`) and counted in ``n_failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.similarity import Metric, paired_similarity
from shiren.eval.embeddings import TemplateSet
from shiren.eval.intervals import clopper_pearson
from shiren.eval.kfold import kfold_accuracy
from shiren.eval.metrics import apply_failure_policy, auc, eer, roc_curve, tar_at_far
from shiren.eval.pairs import Pair
from shiren.eval.plots import plot_det, plot_roc

FAR_TARGETS = {"1e-2": 1e-2, "1e-3": 1e-3}


@dataclass(frozen=True, slots=True)
class PairScores:
    """Scores of every pair (NaN where an image failed), labels, folds and cohorts."""

    scores: np.ndarray[Any, np.dtype[np.float64]]
    labels: np.ndarray[Any, np.dtype[np.bool_]]
    folds: np.ndarray[Any, np.dtype[np.int64]]
    cohorts: tuple[str | None, ...]


def score_pairs(pairs: Sequence[Pair], templates: TemplateSet, metric: Metric) -> PairScores:
    """Similarity of each pair's two templates (NaN when either image failed)."""
    scores = np.full(len(pairs), np.nan, dtype=np.float64)
    ok = [
        i for i, p in enumerate(pairs) if p.a in templates.templates and p.b in templates.templates
    ]
    if ok:
        a = np.stack([templates.templates[pairs[i].a] for i in ok])
        b = np.stack([templates.templates[pairs[i].b] for i in ok])
        scores[ok] = paired_similarity(a, b, metric)
    return PairScores(
        scores=scores,
        labels=np.array([p.same for p in pairs], dtype=bool),
        folds=np.array([p.fold if p.fold is not None else 0 for p in pairs], dtype=np.int64),
        cohorts=tuple(p.cohort for p in pairs),
    )


def _rate(k: int, n: int) -> dict[str, Any]:
    low, high = clopper_pearson(k, n) if n else (float("nan"), float("nan"))
    return {
        "rate": k / n if n else None,
        "k": k,
        "n": n,
        "ci95": [low, high],
        "ci_method": "clopper-pearson",
    }


def error_rates_at(
    scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], threshold: float
) -> dict[str, Any]:
    """FNMR and FMR at a fixed threshold, with exact counts and 95 % Clopper–Pearson intervals."""
    accept = scores >= threshold
    genuine, impostor = labels, ~labels
    return {
        "threshold": threshold,
        "fnmr": _rate(int((~accept & genuine).sum()), int(genuine.sum())),
        "fmr": _rate(int((accept & impostor).sum()), int(impostor.sum())),
    }


def verification_report(
    data: PairScores, threshold: float, n_images: int, failures: dict[str, str]
) -> dict[str, Any]:
    """Every number of the report (JSON-ready); plots are written by :func:`write_plots`."""
    applied = apply_failure_policy(data.scores, data.labels, "reject")
    scores, labels = applied.scores, applied.labels
    kfold = kfold_accuracy(scores, labels, data.folds)
    roc = roc_curve(scores, labels)
    eer_value, eer_threshold = eer(scores, labels)
    report: dict[str, Any] = {
        "n_pairs": len(scores),
        "n_genuine": int(labels.sum()),
        "n_impostor": int((~labels).sum()),
        "n_images": n_images,
        "n_failed": applied.n_failed,
        "n_failed_images": len(failures),
        "failure_policy": "reject: a pair with an image that failed counts as a non-match",
        "failures_by_code": _count_codes(failures),
        "crashes": sum(1 for code in failures.values() if code == "internal.crash"),
        "accuracy_mean": kfold.accuracy_mean,
        "accuracy_std": kfold.accuracy_std,
        "accuracy_sem": kfold.accuracy_sem,
        "folds": [
            {"fold": f, "threshold": t, "accuracy": a, "n_correct": c, "n_pairs": n}
            for f, t, a, c, n in zip(
                kfold.folds,
                kfold.thresholds,
                kfold.accuracies,
                kfold.n_correct,
                kfold.n_pairs,
                strict=True,
            )
        ],
        "auc": auc(roc),
        "eer": eer_value,
        "eer_threshold": eer_threshold,
        "tar_at_far": {},
        "operating_point": error_rates_at(scores, labels, threshold),
    }
    for key, target in FAR_TARGETS.items():
        point = tar_at_far(scores, labels, target)
        report["tar_at_far"][key] = point.tar
        report.setdefault("tar_at_far_detail", {})[key] = {
            "tar": point.tar,
            "threshold": point.threshold,
            "far_achieved": point.far,
            "n_false_accept": point.n_false_accept,
            "n_impostor": point.n_impostor,
            "n_true_accept": point.n_true_accept,
            "n_genuine": point.n_genuine,
            "resolvable": point.resolvable,
        }
    cohorts = _cohort_rates(scores, labels, data.cohorts, threshold)
    if cohorts:
        report["cohorts"] = cohorts
    return report


def _count_codes(failures: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for code in failures.values():
        counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items()))


def _cohort_rates(
    scores: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    cohorts: Sequence[str | None],
    threshold: float,
) -> dict[str, Any]:
    names = sorted({c for c in cohorts if c})
    tags = np.array([c or "" for c in cohorts])
    return {
        name: error_rates_at(scores[tags == name], labels[tags == name], threshold)
        for name in names
    }


def write_plots(data: PairScores, out_dir: Path) -> dict[str, str]:
    """ROC and DET plots (PNG) of the whole set and, where cohorts exist, DET per cohort."""
    applied = apply_failure_policy(data.scores, data.labels, "reject")
    roc = roc_curve(applied.scores, applied.labels)
    files = {
        "roc": str(plot_roc(roc, out_dir / "roc.png", label="all pairs")),
        "det": str(plot_det({"all pairs": roc}, out_dir / "det.png")),
    }
    tags = np.array([c or "" for c in data.cohorts])
    curves = {}
    for name in sorted(set(tags) - {""}):
        mask = tags == name
        if applied.labels[mask].any() and (~applied.labels[mask]).any():
            curves[name] = roc_curve(applied.scores[mask], applied.labels[mask])
    if curves:
        files["det_cohorts"] = str(
            plot_det(curves, out_dir / "det_cohorts.png", title="DET by cohort")
        )
    return files

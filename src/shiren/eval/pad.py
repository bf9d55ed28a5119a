"""Presentation-attack detection (PAD) evaluation with the ISO/IEC 30107-3 metrics: the report.

The pieces, each beside this module: the metrics and their conventions (a score is a live score,
``-inf`` a failure to acquire, APCER the worst attack type's; :mod:`shiren.eval.pad_metrics`),
reading ``labels.csv`` (:mod:`shiren.eval.pad_labels`), measuring every image once
(:mod:`shiren.eval.pad_acquire`) and the scorers and model fitting (:mod:`shiren.eval.pad_fit`).
This module chooses each scorer's threshold on the fit rows and reports it on held-out rows
(:func:`evaluate_scorers`), draws the DET plot and keeps the report's provenance helpers; it
re-exports the names callers import from ``shiren.eval.pad``.

Why the threshold is chosen on other rows: APCER, BPCER and ACER at a threshold chosen on the
reported rows are optimistic (an oracle threshold), so the report says where its threshold came
from and warns when the rows were not held out.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.errors import ErrorCode, InputError
from shiren.eval.metrics import Roc, auc
from shiren.eval.pad_acquire import Acquired, Timings, acquire
from shiren.eval.pad_fit import (
    DEFAULT_FOLDS,
    CrossFitted,
    Scorer,
    base_scorer,
    cross_fit,
    fit_model_on,
    mean_scorer,
    model_scorer,
    other_scorer,
)
from shiren.eval.pad_labels import PadLabels, PadSample, read_pad_labels
from shiren.eval.pad_metrics import (
    FTA_SCORE,
    PadPoint,
    Rate,
    acer,
    apcer,
    apcer_at_bpcer,
    apcer_by_type,
    bpcer,
    bpcer_at_apcer,
    check_pad_scores,
    pad_auc,
    pad_metrics,
    pad_point,
    pad_roc,
    threshold_at_apcer,
    threshold_at_bpcer,
    worst_type,
)

DEFAULT_TARGET_BPCER = 0.05
"""Operating point used when the threshold is chosen on the fit rows: BPCER <= 5 %."""


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
    "mean_scorer",
    "model_scorer",
    "other_scorer",
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

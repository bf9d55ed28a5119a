"""PAD scorers and model fitting: the base model's scores, texture/fused models, cross-fitting.

A scorer maps acquired images to live scores (``-inf`` for failures to acquire).  A texture or
fused :class:`~shiren.liveness.pad_model.PadModel` is fitted on the acquired fit rows; to choose
its threshold without the optimism of scoring its own training rows, :func:`cross_fit` scores each
fit row with a model trained without it (see :class:`CrossFitted` for why this matters).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shiren.errors import ErrorCode, InputError
from shiren.eval.pad_acquire import Acquired
from shiren.eval.pad_labels import PadSample
from shiren.eval.pad_metrics import FTA_SCORE, FloatArray
from shiren.liveness.pad_model import PadModel, train_pad_model

if TYPE_CHECKING:
    from shiren.models.protocols import ModelInfo

Scorer = Callable[[Sequence[Acquired]], FloatArray]
"""Scores of acquired images, ``-inf`` for failures to acquire."""


def base_scorer(items: Sequence[Acquired]) -> FloatArray:
    """The base detector's live probability, as measured during acquisition."""
    return np.array(
        [a.base_live if a.ok and a.base_live is not None else FTA_SCORE for a in items],
        dtype=np.float64,
    )


def other_scorer(name: str) -> Scorer:
    """The live score of the further PAD model ``name`` (:attr:`Acquired.others`)."""

    def score(items: Sequence[Acquired]) -> FloatArray:
        return np.array(
            [a.others[name] if a.ok and name in a.others else FTA_SCORE for a in items],
            dtype=np.float64,
        )

    return score


def mean_scorer(parts: Sequence[Scorer]) -> Scorer:
    """Score-level fusion with no fitted weight: the mean of ``parts``' live scores (a failure
    to acquire in any part stays a failure).  Nothing is learnt, so nothing trained on
    research-only data is shipped when such a rule is adopted; only its threshold is chosen."""

    def score(items: Sequence[Acquired]) -> FloatArray:
        stacked = np.stack([part(items) for part in parts])
        return np.asarray(stacked.mean(axis=0), dtype=np.float64)

    return score


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


__all__ = [
    "DEFAULT_FOLDS",
    "CrossFitted",
    "Scorer",
    "base_scorer",
    "cross_fit",
    "fit_model_on",
    "mean_scorer",
    "model_scorer",
    "other_scorer",
]

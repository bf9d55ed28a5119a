"""Error rates per demographic cohort from cached templates (numpy only, no models).

Conventions (as in :mod:`shiren.eval.metrics`): scores are similarities, higher = more alike; a
pair matches when ``score >= threshold``.  Every rate carries its integer counts and a 95 %
Clopper–Pearson interval (:func:`shiren.eval.intervals.clopper_pearson`).

* **FMR** of a cohort: over *all* unordered pairs of distinct images inside the cohort whose
  identities differ.  An image without an identity label counts as its own identity, so every
  pair involving it is an impostor pair (UTKFace has no identities and some near-duplicates:
  the highest-scoring impostor pairs are kept for inspection).  The pairs share images, so they
  are not independent and the binomial interval is optimistic (too narrow).
* The **cross-cohort** group holds the pairs whose two images are in different cohorts.
* **FNMR** of a cohort: over all pairs of distinct images of the same labelled identity.
* Scores are computed in row blocks with :func:`shiren.core.similarity.similarity_matrix` and
  counted on the upper triangle, so no Python loop runs over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from shiren.core.similarity import Metric, similarity_matrix
from shiren.eval.intervals import clopper_pearson
from shiren.eval.metrics import max_false_accepts

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CROSS = "cross-cohort"
BLOCK_ROWS = 512
HIST_BINS = 4000  # on [-1, 1]: bin width 5e-4, for the FMR-vs-threshold curve only
N_TOP_PAIRS = 20


@dataclass(frozen=True, slots=True)
class Rate:
    """``errors`` in ``trials``; ``rate`` and the 95 % Clopper–Pearson ``ci`` (None: no trials)."""

    errors: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.errors / self.trials if self.trials else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return clopper_pearson(self.errors, self.trials) if self.trials else None


@dataclass(slots=True)
class Tally:
    """The pair scores of one group: exact counts at ``thresholds``, the top-``keep`` impostor
    scores with their image indices, all genuine scores, and an impostor histogram."""

    thresholds: FloatArray
    keep: int
    n_impostor: int = 0
    false_matches: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    top_scores: FloatArray = field(default_factory=lambda: np.zeros(0, np.float32))
    top_pairs: IntArray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    genuine_parts: list[FloatArray] = field(default_factory=list)
    histogram: IntArray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))

    def __post_init__(self) -> None:
        self.false_matches = np.zeros(self.thresholds.size, np.int64)

    @property
    def genuine(self) -> FloatArray:
        if not self.genuine_parts:
            return np.zeros(0, np.float32)
        return np.concatenate(self.genuine_parts).astype(np.float32)

    def add(
        self,
        scores: FloatArray,
        impostor: BoolArray,
        genuine: BoolArray,
        rows: IntArray,
        cols: IntArray,
    ) -> None:
        """Add one block: ``scores`` ``(R, C)``, masks of the same shape, image indices."""
        self.genuine_parts.append(scores[genuine])
        imp = scores[impostor]
        self.n_impostor += int(imp.size)
        self.false_matches += (imp[:, None] >= self.thresholds[None, :]).sum(0)
        bins = np.clip(((imp + 1.0) * (HIST_BINS / 2)).astype(np.int64), 0, HIST_BINS - 1)
        self.histogram += np.bincount(bins, minlength=HIST_BINS)
        self._keep_top(scores, impostor, rows, cols)

    def _keep_top(
        self, scores: FloatArray, impostor: BoolArray, rows: IntArray, cols: IntArray
    ) -> None:
        cutoff = self.top_scores.min() if self.top_scores.size >= self.keep else -np.inf
        r, c = np.nonzero(impostor & (scores >= cutoff))
        all_scores = np.concatenate([self.top_scores, scores[r, c]])
        all_pairs = np.concatenate([self.top_pairs, np.stack([rows[r], cols[c]], axis=1)])
        if all_scores.size > self.keep:
            best = np.argpartition(-all_scores, self.keep - 1)[: self.keep]
            all_scores, all_pairs = all_scores[best], all_pairs[best]
        self.top_scores, self.top_pairs = all_scores.astype(np.float32), all_pairs


def identity_codes(identities: Sequence[str | None]) -> IntArray:
    """One integer per image; an unlabelled image gets a code of its own (negative)."""
    known: dict[str, int] = {}
    codes = [
        known.setdefault(name, len(known)) if name else -(i + 1)
        for i, name in enumerate(identities)
    ]
    return np.asarray(codes, dtype=np.int64)


def pair_count(n: int) -> int:
    """Unordered pairs of ``n`` distinct items."""
    return n * (n - 1) // 2


def _blocks(
    templates: FloatArray, index: IntArray, metric: Metric, block_rows: int
) -> Iterator[tuple[FloatArray, BoolArray, IntArray, IntArray]]:
    """Upper-triangle blocks over the images ``index``: (scores, upper mask, rows, cols)."""
    for start in range(0, index.size, block_rows):
        rows, cols = index[start : start + block_rows], index[start:]
        scores = similarity_matrix(templates[rows], templates[cols], metric)
        upper = np.arange(cols.size)[None, :] > np.arange(rows.size)[:, None]
        yield scores, upper, rows, cols


def tally_group(
    templates: FloatArray,
    ids: IntArray,
    index: IntArray,
    thresholds: FloatArray,
    keep: int,
    metric: Metric,
    *,
    cohorts: IntArray | None = None,
    block_rows: int = BLOCK_ROWS,
) -> Tally:
    """Tally the pairs among images ``index``; with ``cohorts``, only pairs across cohorts."""
    tally = Tally(thresholds=np.asarray(thresholds, np.float32), keep=max(keep, 1))
    for scores, upper, rows, cols in _blocks(templates, index, metric, block_rows):
        mask = upper
        if cohorts is not None:
            mask = mask & (cohorts[rows][:, None] != cohorts[cols][None, :])
        same = ids[rows][:, None] == ids[cols][None, :]
        tally.add(scores, mask & ~same, mask & same, rows, cols)
    return tally


def threshold_at_fmr(tally: Tally, target: float) -> float:
    """The smallest observed score usable as a threshold with FMR <= ``target`` (as
    :func:`shiren.eval.metrics.threshold_at_far_sorted`); ``+inf`` if none; needs ``keep`` >
    ``target * n_impostor``."""
    allowed = max_false_accepts(tally.n_impostor, target)
    if tally.n_impostor == 0:
        return -math.inf
    if allowed >= tally.n_impostor:  # everything may match: the lowest observed score
        return float(min(tally.top_scores.min(), tally.genuine.min(initial=np.inf)))
    if allowed >= tally.top_scores.size:
        raise ValueError("keep too small for this target")
    top = np.sort(tally.top_scores)[::-1]
    boundary = top[allowed]
    above = np.concatenate([top[top > boundary], tally.genuine[tally.genuine > boundary]])
    return float(above.min()) if above.size else math.inf


def keep_for(n_pairs: int, targets: Sequence[float]) -> int:
    """How many top impostor scores to keep to resolve every target FMR, and the top pairs."""
    most = max((max_false_accepts(n_pairs, t) for t in targets), default=0)
    return max(most + 2, N_TOP_PAIRS)


def fmr_at(tally: Tally) -> list[Rate]:
    """FMR at each of the tally's thresholds."""
    return [Rate(int(k), tally.n_impostor) for k in tally.false_matches]


def fnmr_at(tally: Tally, thresholds: Sequence[float]) -> list[Rate]:
    """FNMR at each threshold from the tally's genuine scores (no trials: 0 of 0)."""
    genuine = tally.genuine
    return [Rate(int((genuine < t).sum()), int(genuine.size)) for t in thresholds]


def fmr_at_threshold(tally: Tally, threshold: float) -> Rate | None:
    """FMR at a threshold not in the tally's list, from the kept top scores; None if the kept
    scores cannot tell (the threshold lies below the lowest kept score)."""
    top = tally.top_scores
    if tally.n_impostor and top.size < tally.n_impostor and threshold < top.min():
        return None
    return Rate(int((top >= threshold).sum()), tally.n_impostor)


def ratio(rates: Sequence[Rate]) -> float | None:
    """Worst / best rate over the groups with trials; None ("unbounded") when the best is 0
    (or nothing was measured)."""
    values = [r.rate for r in rates if r.rate is not None]
    if not values or min(values) == 0.0:
        return None
    return max(values) / min(values)


def fmr_curve(tally: Tally) -> tuple[FloatArray, FloatArray]:
    """(thresholds, FMR) from the impostor histogram: FMR at each bin's lower edge."""
    edges = np.linspace(-1.0, 1.0, HIST_BINS + 1)[:-1].astype(np.float32)
    at_least = np.cumsum(tally.histogram[::-1])[::-1]
    fmr = at_least / max(tally.n_impostor, 1)
    return edges, fmr.astype(np.float32)


def bootstrap_fmr_ci(
    templates: FloatArray,
    ids: IntArray,
    index: IntArray,
    threshold: float,
    metric: Metric,
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[float, float] | None:
    """95 % percentile interval of a cohort's FMR, resampling *images* with replacement (the
    pairs share images, which the binomial interval ignores).  Uses the full score matrix, so
    only for cohorts of a few thousand images."""
    if index.size < 2:
        return None
    scores = similarity_matrix(templates[index], templates[index], metric)
    same = ids[index][:, None] == ids[index][None, :]
    hits = ((scores >= threshold) & ~same).astype(np.float64)
    valid = (~same).astype(np.float64)
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(n_boot):
        weight = np.bincount(rng.integers(0, index.size, index.size), minlength=index.size)
        w = weight.astype(np.float64)
        trials = float(w @ valid @ w)
        rates.append(float(w @ hits @ w) / trials if trials else 0.0)
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)

"""Calibration on the lender's own population: the enrolled gallery as a sample of impostor pairs.

Every enrolled subject is a different person (the 1:N duplicate search finds the exceptions), so
the similarities between the templates of ``N`` distinct subjects are ``N (N - 1) / 2`` impostor
scores drawn from exactly the people the lender serves.  From them this module derives:

* the FMR at a given threshold (a pair *matches* when ``score >= threshold``), with an exact
  Clopper-Pearson interval (:func:`shiren.eval.intervals.clopper_pearson`: beta quantiles by
  bisection on the regularized incomplete beta, no scipy needed);
* the threshold proposed for a target FMR, with a distribution-free interval from order
  statistics (the number of pairs at or above the true threshold is Binomial(n, target));
* ``insufficient`` when fewer than ``3 / target`` pairs are available (rule of three: even zero
  false matches could not show that the target is met).

Pairs.  With ``N (N - 1) / 2 <= max_pairs`` every pair is scored, block by block (memory bounded
by ``chunk_elems`` similarities at a time).  Above that, ``max_pairs`` pairs are drawn **uniformly
with replacement** from all pairs of distinct subjects by ``numpy.random.default_rng(seed)``
(deterministic), so the false-match count is exactly Binomial(M, FMR of all the gallery's pairs).

Probable duplicates.  A pair whose *cosine* similarity reaches ``duplicate_cutoff`` (the fraud
policy's ``duplicate_threshold``, the same score the 1:N search uses) is most likely one person
under two ID numbers, not an impostor pair: it is counted and excluded.

Limits (see docs/MODEL_CARD.md): pairs sharing a subject are not independent, so the intervals,
exact for this gallery's pairs, are too narrow for people not yet enrolled; relatives and twins
enrolled as different subjects raise the measured FMR (conservative).  Nothing demographic is an
input, ever: only templates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.core.similarity import Metric, paired_similarity, similarity_matrix
from shiren.eval.calibrate import is_resolvable, min_impostors
from shiren.eval.intervals import clopper_pearson, regularized_beta
from shiren.eval.metrics import max_false_accepts
from shiren.eval.provenance import to_jsonable

Scores = npt.NDArray[np.float32]
Sorted = npt.NDArray[np.float64]
"""Impostor scores sorted ascending: float32 similarities (what the service compares) widened
to float64, so a threshold is compared exactly as the service compares it."""

DEFAULT_MAX_PAIRS = 5_000_000
"""All pairs up to ~3,160 subjects; a sample of this many above (20 MB of float32 scores)."""
DEFAULT_CHUNK_ELEMS = 1 << 22
"""Similarities computed per block (~32 MB of float64)."""
_PAIR_CHUNK = 16_384
"""Sampled pairs scored per block (two (chunk, D) float64 arrays)."""
DEFAULT_TARGETS = (1e-3, 1e-4)


@dataclass(frozen=True, slots=True)
class ImpostorSample:
    """The impostor scores of a gallery, sorted ascending, probable duplicates excluded.

    ``n_pairs_possible`` = ``N (N - 1) / 2``; ``n_pairs_scored`` pairs were scored (all of them,
    or a sample with replacement when ``sampled``); ``scores`` holds those of them below the
    duplicate cutoff (``n_pairs_scored - n_probable_duplicates`` values)."""

    scores: Sorted
    n_subjects: int
    n_pairs_possible: int
    n_pairs_scored: int
    sampled: bool
    seed: int
    duplicate_cutoff: float
    n_probable_duplicates: int

    @property
    def n_pairs(self) -> int:
        """Impostor pairs used (scored, minus the probable duplicates)."""
        return int(self.scores.size)


@dataclass(frozen=True, slots=True)
class FmrEstimate:
    """FMR at ``threshold``: ``n_false_matches`` of ``n_pairs`` impostor pairs scored
    ``>= threshold``; ``fmr_ci`` is the Clopper-Pearson interval at ``1 - alpha``."""

    threshold: float
    n_pairs: int
    n_false_matches: int
    fmr: float
    fmr_ci: tuple[float, float]


@dataclass(frozen=True, slots=True)
class ThresholdProposal:
    """The threshold for ``target_fmr`` on this sample and what it achieves.

    ``threshold`` is the smallest observed score (or the next float above the maximum) at which
    at most ``floor(target * n)`` pairs match; ``threshold_ci`` ``(low, high)`` covers the
    population's true threshold (the score exceeded by a fraction ``target`` of impostor pairs)
    with probability ``>= 1 - alpha`` (order statistics; ``-inf`` / ``+inf`` where the sample
    cannot bound it).  ``insufficient``: fewer than ``min_pairs`` (``3 / target``) pairs."""

    target_fmr: float
    threshold: float
    threshold_ci: tuple[float, float]
    achieved: FmrEstimate
    insufficient: bool
    min_pairs: int


@dataclass(frozen=True, slots=True)
class GalleryReport:
    """The whole calibration of one gallery: sample, FMR at the current threshold, proposals."""

    metric: str
    alpha: float
    sample: ImpostorSample
    current: FmrEstimate | None
    proposals: list[ThresholdProposal] = field(default_factory=list)


# -- pairs -----------------------------------------------------------------------------------


def impostor_sample(
    templates: npt.ArrayLike,
    metric: Metric,
    *,
    duplicate_cutoff: float,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    chunk_elems: int = DEFAULT_CHUNK_ELEMS,
) -> ImpostorSample:
    """Impostor scores of an ``(N, D)`` gallery of ``N`` distinct subjects (see the module
    docstring: all pairs, or ``max_pairs`` drawn with replacement; duplicates excluded)."""
    gallery = np.asarray(templates, dtype=np.float32)
    if gallery.ndim != 2 or gallery.shape[0] < 2:
        raise ValueError(f"need an (N, D) array with N >= 2, got shape {gallery.shape}")
    if max_pairs < 1 or chunk_elems < 1:
        raise ValueError("max_pairs and chunk_elems must be >= 1")
    n = gallery.shape[0]
    possible = n * (n - 1) // 2
    sampled = possible > max_pairs
    if sampled:
        scores, dup = _sampled_pairs(gallery, metric, duplicate_cutoff, max_pairs, seed)
    else:
        scores, dup = _all_pairs(gallery, metric, duplicate_cutoff, chunk_elems)
    return ImpostorSample(
        scores=np.sort(scores).astype(np.float64),
        n_subjects=n,
        n_pairs_possible=possible,
        n_pairs_scored=max_pairs if sampled else possible,
        sampled=sampled,
        seed=seed,
        duplicate_cutoff=duplicate_cutoff,
        n_probable_duplicates=dup,
    )


def _all_pairs(
    gallery: Scores, metric: Metric, cutoff: float, chunk_elems: int
) -> tuple[Scores, int]:
    """Every pair ``i < j``, scored in row blocks against the rows after them."""
    n = gallery.shape[0]
    kept: list[Scores] = []
    duplicates = 0
    rows = max(1, chunk_elems // n)
    for start in range(0, n - 1, rows):
        stop = min(n - 1, start + rows)
        block = gallery[start:stop]
        rest = gallery[start + 1 :]
        # upper triangle: row i (= start + r) is paired with columns j > i, i.e. c >= r
        upper = np.triu(np.ones((stop - start, n - start - 1), dtype=bool))
        scores = similarity_matrix(block, rest, metric)[upper]
        cos = scores if metric == "cosine" else similarity_matrix(block, rest, "cosine")[upper]
        dup = cos >= cutoff
        duplicates += int(dup.sum())
        kept.append(scores[~dup])
    return np.concatenate(kept).astype(np.float32), duplicates


def _sampled_pairs(
    gallery: Scores, metric: Metric, cutoff: float, m: int, seed: int
) -> tuple[Scores, int]:
    """``m`` pairs of distinct subjects, uniform over all pairs, drawn with replacement."""
    n = gallery.shape[0]
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, m)
    second = rng.integers(0, n - 1, m)
    second += second >= first  # uniform over the n - 1 others: (i, j) uniform over i != j
    kept: list[Scores] = []
    duplicates = 0
    for start in range(0, m, _PAIR_CHUNK):
        a = gallery[first[start : start + _PAIR_CHUNK]]
        b = gallery[second[start : start + _PAIR_CHUNK]]
        scores = paired_similarity(a, b, metric)
        cos = scores if metric == "cosine" else paired_similarity(a, b, "cosine")
        dup = cos >= cutoff
        duplicates += int(dup.sum())
        kept.append(scores[~dup])
    return np.concatenate(kept).astype(np.float32), duplicates


# -- rates and thresholds ---------------------------------------------------------------------


def fmr_at(sorted_scores: Sorted, threshold: float, alpha: float = 0.05) -> FmrEstimate:
    """FMR at ``threshold`` on ascending ``sorted_scores`` (pairs with ``score >= threshold``)."""
    n = int(sorted_scores.size)
    if n == 0:
        raise ValueError("no impostor pairs")
    k = n - int(np.searchsorted(sorted_scores, threshold, side="left"))
    return FmrEstimate(float(threshold), n, k, k / n, clopper_pearson(k, n, alpha))


def propose_threshold(
    sorted_scores: Sorted, target_fmr: float, alpha: float = 0.05
) -> ThresholdProposal:
    """The threshold for ``target_fmr`` on ascending ``sorted_scores`` (see
    :class:`ThresholdProposal`)."""
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"a target FMR must lie in (0, 1), got {target_fmr}")
    n = int(sorted_scores.size)
    if n == 0:
        raise ValueError("no impostor pairs")
    threshold = _threshold_for(sorted_scores, max_false_accepts(n, target_fmr))
    return ThresholdProposal(
        target_fmr=target_fmr,
        threshold=threshold,
        threshold_ci=threshold_interval(sorted_scores, target_fmr, alpha),
        achieved=fmr_at(sorted_scores, threshold, alpha),
        insufficient=not is_resolvable(n, target_fmr),
        min_pairs=min_impostors(target_fmr),
    )


def _threshold_for(sorted_scores: Sorted, allowed: int) -> float:
    """The smallest observed score at which at most ``allowed`` pairs match; with ``allowed``
    = 0, the next float32 above the highest score."""
    n = int(sorted_scores.size)
    if allowed >= n:
        return float(sorted_scores[0])
    boundary = sorted_scores[n - 1 - allowed]  # the (allowed + 1)-th highest must not match
    j = int(np.searchsorted(sorted_scores, boundary, side="right"))
    if j < n:
        return float(sorted_scores[j])
    return float(np.nextafter(np.float32(boundary), np.float32(np.inf)))


def threshold_interval(
    sorted_scores: Sorted, target_fmr: float, alpha: float = 0.05
) -> tuple[float, float]:
    """``(low, high)`` covering the population threshold ``t`` (``P(score >= t) = target``)
    with probability ``>= 1 - alpha``, for continuous scores.

    ``K`` = #pairs with ``score >= t`` is Binomial(n, target), and ``t <= s[j]`` (the j-th
    highest score) exactly when ``K >= j``.  With ``a`` the largest rank with
    ``P(K < a) <= alpha / 2`` and ``b`` the smallest with ``P(K >= b) <= alpha / 2``,
    ``P(s[b] < t <= s[a]) = P(a <= K < b) >= 1 - alpha``; ``s[0] = +inf``, ``s[n+1] = -inf``.
    """
    n = int(sorted_scores.size)
    a, b = quantile_ranks(n, target_fmr, alpha)
    high = math.inf if a == 0 else float(sorted_scores[n - a])
    low = -math.inf if b > n else float(sorted_scores[n - b])
    return low, high


def quantile_ranks(n: int, p: float, alpha: float = 0.05) -> tuple[int, int]:
    """The ranks ``(a, b)`` of :func:`threshold_interval` for ``K ~ Binomial(n, p)``."""
    a = _smallest_k(n, p, lambda c: c > alpha / 2)  # CDF(a - 1) <= alpha / 2 < CDF(a)
    b = _smallest_k(n, p, lambda c: c >= 1.0 - alpha / 2) + 1  # CDF(b - 1) >= 1 - alpha / 2
    return a, b


def _smallest_k(n: int, p: float, ok: Callable[[float], bool]) -> int:
    """The smallest ``k`` in ``[0, n]`` with ``ok(CDF(k))`` (the CDF is increasing; CDF(n)=1)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(binomial_cdf(mid, n, p)):
            hi = mid
        else:
            lo = mid + 1
    return lo


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(K <= k)`` for ``K ~ Binomial(n, p)``: ``I_{1-p}(n - k, k + 1)`` (exact, no scipy)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return regularized_beta(1.0 - p, n - k, k + 1)


# -- the report -------------------------------------------------------------------------------


def gallery_report(
    templates: npt.ArrayLike,
    metric: Metric,
    *,
    threshold: float | None,
    duplicate_cutoff: float,
    targets: Sequence[float] = DEFAULT_TARGETS,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
    alpha: float = 0.05,
) -> GalleryReport:
    """FMR at ``threshold`` (``None``: skipped) and a proposal per target FMR, on the impostor
    pairs of an ``(N, D)`` gallery of distinct subjects."""
    sample = impostor_sample(
        templates, metric, duplicate_cutoff=duplicate_cutoff, max_pairs=max_pairs, seed=seed
    )
    if sample.n_pairs == 0:
        raise ValueError("every pair is a probable duplicate: no impostor pairs left")
    current = None if threshold is None else fmr_at(sample.scores, threshold, alpha)
    proposals = [propose_threshold(sample.scores, t, alpha) for t in targets]
    return GalleryReport(str(metric), alpha, sample, current, proposals)


def report_dict(report: GalleryReport) -> dict[str, Any]:
    """The report as plain JSON types: counts, rates, thresholds (never a score or a template;
    an infinite bound becomes ``None``)."""
    s = report.sample
    out = {
        "metric": report.metric,
        "confidence": 1.0 - report.alpha,
        "n_subjects": s.n_subjects,
        "n_pairs_possible": s.n_pairs_possible,
        "n_pairs_scored": s.n_pairs_scored,
        "sampled": s.sampled,
        "seed": s.seed,
        "duplicate_cutoff": s.duplicate_cutoff,
        "n_probable_duplicates_excluded": s.n_probable_duplicates,
        "n_pairs_used": s.n_pairs,
        "current": report.current,
        "proposals": report.proposals,
    }
    data: dict[str, Any] = to_jsonable(out)  # type: ignore[assignment]
    return data

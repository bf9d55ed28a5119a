"""Impostor statistics of an enrolled gallery (``shiren.eval.gallery``) on hand-checkable sets
and on a synthetic gallery whose impostor score distribution is known exactly.

The exact distribution: for independent directions uniform on the sphere in ``D`` dimensions the
cosine ``c`` of a pair satisfies ``P(c >= t) = I_{1-t^2}((D-1)/2, 1/2) / 2`` for ``t >= 0``.  The
pairs of one gallery share vectors, but their cosines are *pairwise* independent (given one
vector, the cosine with an independent uniform one does not depend on it), so the false-match
count has exactly the binomial variance and the nominal coverage can be checked.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from shiren.core.similarity import similarity_matrix
from shiren.eval.gallery import (
    binomial_cdf,
    fmr_at,
    gallery_report,
    impostor_sample,
    propose_threshold,
    quantile_ranks,
    report_dict,
    threshold_interval,
)
from shiren.eval.intervals import clopper_pearson, regularized_beta


def _unit(degrees: list[float]) -> np.ndarray:
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def _sphere(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _true_fmr(t: float, dim: int) -> float:
    """``P(cosine >= t)`` for two independent uniform directions in ``dim`` dimensions."""
    assert t >= 0
    return 0.5 * regularized_beta(1.0 - t * t, (dim - 1) / 2, 0.5)


def _true_threshold(p: float, dim: int) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _true_fmr(mid, dim) > p else (lo, mid)
    return (lo + hi) / 2


def _exact_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


# -- hand-checkable ----------------------------------------------------------------------------


def test_hand_counted_gallery_with_a_duplicate() -> None:
    # 0°, 60°, 120°, 180° and 1° (the same face as 0°: cosine 0.99985 >= 0.97).  The 10 pairs:
    # (0,1°) duplicate; cosines 0.5 ×3 (60° apart), -0.5 ×2 (120°), -1 (180°), and with 1°:
    # cos 59° = 0.515, cos 119° = -0.485, cos 179° = -0.9998.
    sample = impostor_sample(_unit([0, 60, 120, 180, 1]), "cosine", duplicate_cutoff=0.97)
    assert (sample.n_subjects, sample.n_pairs_possible, sample.n_pairs_scored) == (5, 10, 10)
    assert sample.n_probable_duplicates == 1
    assert sample.n_pairs == 9
    assert not sample.sampled
    want = sorted([0.5, 0.5, 0.5, -0.5, -0.5, -1.0, math.cos(math.radians(59))])
    want = sorted([*want, math.cos(math.radians(119)), math.cos(math.radians(179))])
    np.testing.assert_allclose(sample.scores, want, atol=1e-6)
    est = fmr_at(sample.scores, 0.4)
    assert (est.n_false_matches, est.n_pairs) == (4, 9)  # 0.5 ×3 and 0.515
    assert est.fmr == pytest.approx(4 / 9)
    assert est.fmr_ci == clopper_pearson(4, 9)


def test_duplicates_are_judged_by_cosine_whatever_the_metric() -> None:
    # e1 and 3·e1: cosine 1 (the same face, another scale) although 2 apart in euclidean terms
    gallery = np.array([[1, 0], [3, 0], [0, 1]], dtype=np.float32)
    sample = impostor_sample(gallery, "euclidean", duplicate_cutoff=0.97)
    assert sample.n_probable_duplicates == 1
    np.testing.assert_allclose(sample.scores, [1 - math.sqrt(10), 1 - math.sqrt(2)], atol=1e-6)


def test_threshold_matches_score_at_or_above() -> None:
    scores = np.array([0.1, 0.2, 0.2, 0.3], dtype=np.float64)
    assert fmr_at(scores, 0.2).n_false_matches == 3
    assert fmr_at(scores, 0.3).n_false_matches == 1
    assert fmr_at(scores, 0.31).n_false_matches == 0


def test_blocks_give_every_pair_once() -> None:
    gallery = _sphere(37, 5, seed=2)
    full = similarity_matrix(gallery, gallery, "cosine")[np.triu_indices(37, k=1)]
    for chunk in (1, 7, 37, 10_000):
        sample = impostor_sample(
            gallery, "cosine", duplicate_cutoff=2.0, chunk_elems=chunk, max_pairs=10_000
        )
        np.testing.assert_array_equal(sample.scores, np.sort(full).astype(np.float64))


def test_too_small_a_gallery_is_refused() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        impostor_sample(np.zeros((1, 4), np.float32), "cosine", duplicate_cutoff=0.97)


# -- target thresholds -------------------------------------------------------------------------


def test_target_threshold_on_a_constructed_sample() -> None:
    scores = np.arange(1, 10_001, dtype=np.float64) / 10_000  # 0.0001 … 1.0, ascending
    prop = propose_threshold(scores, 1e-3)
    # at most 10 of 10,000 may match: the 11th highest (0.9990) must not, the 10th may
    assert prop.threshold == pytest.approx(0.9991)
    assert prop.achieved.n_false_matches == 10
    assert prop.achieved.fmr == pytest.approx(1e-3)
    assert not prop.insufficient
    a, b = quantile_ranks(10_000, 1e-3)
    assert prop.threshold_ci == (scores[10_000 - b], scores[10_000 - a])
    assert prop.threshold_ci[0] < prop.threshold < prop.threshold_ci[1]


def test_ties_never_let_more_than_the_target_match() -> None:
    scores = np.array([0.1] * 5 + [0.5] * 3 + [0.9] * 2, dtype=np.float64)
    prop = propose_threshold(scores, 0.25)  # at most 2 of 10
    assert prop.threshold == 0.9
    assert prop.achieved.n_false_matches == 2
    prop = propose_threshold(scores, 0.1)  # at most 1: none of the tied 0.9s may match
    assert prop.threshold > 0.9
    assert prop.achieved.n_false_matches == 0


def test_quantile_ranks_against_the_exact_binomial() -> None:
    for n, p in ((40, 0.05), (300, 0.01), (1000, 0.003)):
        a, b = quantile_ranks(n, p, 0.05)
        cdf = list(
            itertools.accumulate(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1))
        )
        assert a == 0 or cdf[a - 1] <= 0.025 < cdf[a]  # the largest a with P(K < a) <= 2.5 %
        assert cdf[b - 1] >= 0.975  # the smallest b with P(K >= b) <= 2.5 %
        assert b < 2 or cdf[b - 2] < 0.975
        assert cdf[b - 1] - (cdf[a - 1] if a else 0.0) >= 0.95


def test_binomial_cdf_is_exact() -> None:
    for k, n, p in ((0, 10, 0.1), (3, 10, 0.1), (7, 50, 0.2), (49, 50, 0.9), (10, 10, 0.5)):
        assert binomial_cdf(k, n, p) == pytest.approx(_exact_cdf(k, n, p), rel=1e-9, abs=1e-14)
    assert binomial_cdf(-1, 10, 0.5) == 0.0


def test_insufficient_below_three_over_the_target() -> None:
    scores = np.linspace(-0.5, 0.5, 3000)
    assert not propose_threshold(scores, 1e-3).insufficient
    few = propose_threshold(scores[:2999], 1e-3)
    assert few.insufficient
    assert few.min_pairs == 3000
    tiny = propose_threshold(scores[:10], 1e-3)  # no pair may match: unbounded above
    assert tiny.insufficient
    assert tiny.threshold_ci[1] == math.inf
    assert tiny.threshold > scores[9]


# -- a gallery with a known impostor distribution ------------------------------------------


def test_known_distribution_is_covered() -> None:
    dim, n = 8, 500  # 124,750 pairs
    sample = impostor_sample(_sphere(n, dim, seed=11), "cosine", duplicate_cutoff=0.999)
    t = 0.8
    truth = _true_fmr(t, dim)
    est = fmr_at(sample.scores, t)
    assert est.fmr_ci[0] <= truth <= est.fmr_ci[1]
    assert est.fmr == pytest.approx(truth, rel=0.25)
    for target in (1e-2, 1e-3):
        prop = propose_threshold(sample.scores, target)
        low, high = prop.threshold_ci
        assert low <= _true_threshold(target, dim) <= high


def test_intervals_reach_their_nominal_coverage() -> None:
    dim, n, reps, target, t = 6, 120, 150, 1e-2, 0.7
    truth_fmr, truth_t = _true_fmr(t, dim), _true_threshold(target, dim)
    fmr_hits = t_hits = 0
    for seed in range(reps):
        scores = impostor_sample(_sphere(n, dim, seed), "cosine", duplicate_cutoff=2.0).scores
        low, high = fmr_at(scores, t).fmr_ci
        fmr_hits += low <= truth_fmr <= high
        t_low, t_high = threshold_interval(scores, target)
        t_hits += t_low <= truth_t <= t_high
    # 95 % intervals: with 150 repetitions fewer than 87 % covered would be very unlikely
    assert fmr_hits / reps >= 0.87
    assert t_hits / reps >= 0.87


# -- sampling for large galleries ------------------------------------------------------------


def test_sampling_is_seeded_and_never_pairs_a_subject_with_itself() -> None:
    gallery = np.eye(300, dtype=np.float32)  # every pair of distinct subjects has cosine 0
    sample = impostor_sample(gallery, "cosine", duplicate_cutoff=0.97, max_pairs=5000, seed=4)
    assert sample.sampled
    assert (sample.n_pairs_possible, sample.n_pairs_scored) == (44_850, 5000)
    assert sample.n_probable_duplicates == 0  # a self-pair would score 1.0
    assert np.all(sample.scores == 0.0)
    spread = _sphere(300, 16, seed=1)
    one = impostor_sample(spread, "cosine", duplicate_cutoff=0.97, max_pairs=5000, seed=4)
    two = impostor_sample(spread, "cosine", duplicate_cutoff=0.97, max_pairs=5000, seed=4)
    other = impostor_sample(spread, "cosine", duplicate_cutoff=0.97, max_pairs=5000, seed=5)
    np.testing.assert_array_equal(one.scores, two.scores)
    assert not np.array_equal(one.scores, other.scores)


def test_sampled_estimate_agrees_with_all_pairs() -> None:
    spread = _sphere(400, 8, seed=8)
    full = impostor_sample(spread, "cosine", duplicate_cutoff=0.999)
    part = impostor_sample(spread, "cosine", duplicate_cutoff=0.999, max_pairs=40_000, seed=1)
    truth = fmr_at(full.scores, 0.6).fmr
    low, high = fmr_at(part.scores, 0.6).fmr_ci
    assert low <= truth <= high


# -- the report ------------------------------------------------------------------------------


def test_report_is_plain_json_without_scores() -> None:
    report = gallery_report(
        _unit([0, 60, 120, 180, 1]),
        "cosine",
        threshold=0.4,
        duplicate_cutoff=0.97,
        targets=(1e-3,),
    )
    data = report_dict(report)
    json.dumps(data, allow_nan=False)
    assert "scores" not in data
    assert data["n_probable_duplicates_excluded"] == 1
    assert data["n_pairs_used"] == 9
    assert data["current"]["n_false_matches"] == 4
    (prop,) = data["proposals"]
    assert prop["insufficient"] is True
    assert prop["threshold_ci"][1] is None  # +inf: the sample cannot bound it

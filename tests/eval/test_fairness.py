"""Golden numbers of the per-cohort fairness metrics on a hand-checkable fixture, and the blocked
pair computation against a brute-force loop."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from shiren.eval.cohorts import LabelledImage, filter_min_age, labels_from_name_lists, read_labels
from shiren.eval.fairness import Rate, identity_codes, ratio, tally_group, threshold_at_fmr
from shiren.eval.fairness_report import cohort_aware, markdown, measure, report


def unit(deg: float) -> np.ndarray:
    rad = math.radians(deg)
    return np.array([math.cos(rad), math.sin(rad)], dtype=np.float32)


# Cohort A: a0 (0°, person p), a1 (60°, p), a2 (90°, q), a3 (failed: face.not_found).
# Cohort B: b0 (180°), b1 (120°), no identities.
# Cosines: a0·a1 = 0.5 (genuine), a0·a2 = 0, a1·a2 = cos 30° = 0.866, b0·b1 = 0.5.
# Cross pairs: a0b0 -1, a0b1 -0.5, a1b0 -0.5, a1b1 0.5, a2b0 0, a2b1 0.866.
LABELS = [
    LabelledImage("a0", "A", "p", age=30),
    LabelledImage("a1", "A", "p", age=31),
    LabelledImage("a2", "A", "q", age=12),
    LabelledImage("a3", "A", "r"),
    LabelledImage("b0", "B"),
    LabelledImage("b1", "B"),
]
TEMPLATES = {"a0": unit(0), "a1": unit(60), "a2": unit(90), "b0": unit(180), "b1": unit(120)}
FAILURES = {"a3": "face.not_found"}
THRESHOLDS = {"low": 0.4, "high": 0.9}


@pytest.fixture
def rep() -> dict[str, object]:
    study = measure(LABELS, TEMPLATES, FAILURES, THRESHOLDS, [0.5], "cosine")
    return report(study)


def test_golden_fmr_per_cohort(rep: dict[str, object]) -> None:
    a, b = rep["cohorts"]  # type: ignore[index]
    # A: impostors 0 and 0.866 → 1 of 2 at 0.4, 0 of 2 at 0.9.
    assert (a["fmr"]["low"]["errors"], a["fmr"]["low"]["trials"]) == (1, 2)
    assert (a["fmr"]["high"]["errors"], a["fmr"]["high"]["trials"]) == (0, 2)
    # B: one impostor pair at 0.5 → 1 of 1 at 0.4, 0 of 1 at 0.9; no genuine pairs → no FNMR.
    assert (b["fmr"]["low"]["errors"], b["fmr"]["low"]["trials"]) == (1, 1)
    assert b["fmr"]["high"]["errors"] == 0
    assert b["fnmr"] is None
    # Clopper–Pearson 95 % for 1/2: [0.0126, 0.9874].
    assert a["fmr"]["low"]["ci95"] == pytest.approx((0.01257912, 0.98742088), abs=1e-6)


def test_golden_cross_cohort(rep: dict[str, object]) -> None:
    cross = rep["cross_cohort"]  # type: ignore[index]
    # 6 cross pairs; 0.5 and 0.866 are >= 0.4; none >= 0.9.
    assert (cross["fmr"]["low"]["errors"], cross["fmr"]["low"]["trials"]) == (2, 6)
    assert cross["fmr"]["high"]["errors"] == 0


def test_golden_fnmr_and_fta(rep: dict[str, object]) -> None:
    a = rep["cohorts"][0]  # type: ignore[index]
    # One genuine pair (a0, a1) at 0.5: accepted at 0.4, rejected at 0.9.
    assert (a["fnmr"]["low"]["errors"], a["fnmr"]["low"]["trials"]) == (0, 1)
    assert (a["fnmr"]["high"]["errors"], a["fnmr"]["high"]["trials"]) == (1, 1)
    # a3 failed: 1 of 4 images.
    assert (a["fta"]["errors"], a["fta"]["trials"]) == (1, 4)
    assert a["fta_by_error"] == {"face.not_found": 1}


def test_golden_ratios(rep: dict[str, object]) -> None:
    # FMR at 0.4: A 1/2, B 1/1 → worst/best = 2; at 0.9 both 0 → unbounded (None).
    assert rep["fmr_ratio"] == {"low": pytest.approx(2.0), "high": None}  # type: ignore[index]
    # FNMR only in A: a single cohort at 0.4 has rate 0 → None; at 0.9 1/1 → ratio 1.
    assert rep["fnmr_ratio"] == {"low": None, "high": pytest.approx(1.0)}  # type: ignore[index]


def test_golden_cohort_aware_threshold() -> None:
    study = measure(LABELS, TEMPLATES, FAILURES, THRESHOLDS, [0.5], "cosine")
    # A at FMR <= 0.5: 1 of 2 impostors may pass → the smallest score above the 2nd highest
    # impostor (0) is the genuine 0.5.  B: 0 of 1 may pass, nothing above 0.5 → +inf.
    a, b = study.cohorts
    assert threshold_at_fmr(a.tally, 0.5) == pytest.approx(0.5, abs=1e-6)
    assert threshold_at_fmr(b.tally, 0.5) == math.inf
    aware = cohort_aware(study, 0.5)
    assert aware["threshold"] is None
    assert aware["binding_cohort"] == "B"
    only_a = measure(LABELS[:4], TEMPLATES, FAILURES, THRESHOLDS, [0.5], "cosine")
    aware_a = cohort_aware(only_a, 0.5)
    assert aware_a["threshold"] == pytest.approx(0.5, abs=1e-6)
    assert aware_a["cohorts"][0]["fnmr"]["errors"] == 0  # the genuine 0.5 is accepted


def test_markdown_has_every_cohort(rep: dict[str, object]) -> None:
    text = markdown(rep)  # type: ignore[arg-type]
    for name in ("| A |", "| B |", "| cross-cohort |"):
        assert name in text


def test_ratio_and_rate_edge_cases() -> None:
    assert ratio([Rate(0, 10), Rate(1, 10)]) is None
    assert ratio([Rate(1, 10), Rate(3, 10), Rate(0, 0)]) == pytest.approx(3.0)
    assert Rate(0, 0).rate is None
    assert Rate(0, 0).ci is None


def test_min_age_filter_keeps_unknown_ages() -> None:
    kept = filter_min_age(LABELS, 18)
    assert [x.path for x in kept] == ["a0", "a1", "a3", "b0", "b1"]


@pytest.mark.parametrize("seed", range(5))
def test_blocked_tally_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 47
    templates = rng.normal(size=(n, 8)).astype(np.float32)
    names = [str(rng.integers(0, 12)) if rng.random() < 0.6 else None for _ in range(n)]
    ids = identity_codes(names)
    cohorts = rng.integers(0, 3, n)
    levels = np.array([-0.2, 0.1, 0.4], dtype=np.float32)
    unit_t = templates / np.linalg.norm(templates, axis=1, keepdims=True)
    for cohort in (0, 1, None):
        index = np.flatnonzero(cohorts == cohort) if cohort is not None else np.arange(n)
        got = tally_group(
            templates, ids, index, levels, 10_000, "cosine",
            cohorts=None if cohort is not None else cohorts, block_rows=5,
        )  # fmt: skip
        impostor, genuine = [], []
        for i, j in combinations(index.tolist(), 2):
            if cohort is None and cohorts[i] == cohorts[j]:
                continue
            score = float(unit_t[i] @ unit_t[j])
            (genuine if ids[i] == ids[j] else impostor).append(score)
        assert got.n_impostor == len(impostor)
        expected = [sum(s >= t - 1e-6 for s in impostor) for t in levels]
        assert abs(got.false_matches - np.array(expected)).max() <= 1  # float32 ties only
        assert np.sort(got.genuine) == pytest.approx(np.sort(genuine), abs=1e-5)
        assert np.sort(got.top_scores) == pytest.approx(np.sort(impostor), abs=1e-5)


def test_read_labels_csv_and_name_lists(tmp_path: Path) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,cohort,identity,gender,age\nx.jpg,c1,,female,22\ny.jpg,c2,id7,,\n")
    rows = read_labels(csv_file)
    assert rows[0] == LabelledImage("x.jpg", "c1", None, "female", 22)
    assert rows[1] == LabelledImage("y.jpg", "c2", "id7", None, None)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "female_names.txt").write_text("Ann_Lee_0001.jpg\nAnn_Lee_0002\n")
    (tmp_path / "lists" / "male_names.txt").write_text("Bo_Li_0003.jpg\n")
    lfw = labels_from_name_lists(tmp_path / "lists")
    assert [(x.path, x.cohort, x.identity) for x in lfw] == [
        ("Ann_Lee/Ann_Lee_0001.jpg", "female", "Ann_Lee"),
        ("Ann_Lee/Ann_Lee_0002.jpg", "female", "Ann_Lee"),
        ("Bo_Li/Bo_Li_0003.jpg", "male", "Bo_Li"),
    ]

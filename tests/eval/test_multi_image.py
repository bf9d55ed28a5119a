"""The multi-image protocol (issue 14) on templates small enough to count by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shiren.eval.identities import read_identities
from shiren.eval.multi_image import (
    Side,
    genuine_splits,
    n_disjoint_pairs,
    per_person,
    person_rng,
    plan,
    score,
    side_subsets,
    side_template,
    summarize,
)


def _unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def test_disjoint_pair_counts() -> None:
    assert [n_disjoint_pairs(n, 1) for n in range(5)] == [0, 0, 1, 3, 6]
    assert n_disjoint_pairs(3, 2) == 0
    assert n_disjoint_pairs(4, 2) == 3  # {01|23}, {02|13}, {03|12}
    assert n_disjoint_pairs(5, 2) == 15  # C(5,2)·C(3,2)/2


def test_all_splits_when_few_and_disjoint() -> None:
    rng = person_rng(0, "p")
    assert genuine_splits(4, 2, 15, rng) == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    five = genuine_splits(5, 2, 15, rng)
    assert len(five) == len(set(five)) == 15
    assert all(not set(a) & set(b) and a < b for a, b in five)
    assert genuine_splits(5, 1, 15, rng) == [
        ((i,), (j,)) for i in range(5) for j in range(i + 1, 5)
    ]


def test_drawn_splits_are_distinct_capped_and_seeded() -> None:
    first = genuine_splits(30, 2, 7, person_rng(3, "x"))
    assert len(first) == len(set(first)) == 7
    assert first == genuine_splits(30, 2, 7, person_rng(3, "x"))
    assert first != genuine_splits(30, 2, 7, person_rng(4, "x"))
    sides = side_subsets(30, 2, 5, person_rng(3, "x"))
    assert len(set(sides)) == 5
    assert all(len(s) == 2 for s in sides)
    assert side_subsets(3, 2, 10, person_rng(0, "x")) == [(0, 1), (0, 2), (1, 2)]
    assert side_subsets(1, 2, 10, person_rng(0, "x")) == []


def test_plan_counts_people_and_comparisons() -> None:
    people = {"a": ["a1", "a2", "a3", "a4", "a5"], "b": ["b1", "b2", "b3", "b4"], "c": ["c1"]}
    one = plan(people, 1, seed=0)
    assert (one.n_people, one.n_people_genuine, one.n_people_impostor) == (3, 2, 3)
    assert len(one.genuine) == 10 + 6
    assert len(one.sides) == 5 + 4 + 1  # every image is a side at K=1
    two = plan(people, 2, seed=0)
    assert (two.n_people_genuine, two.n_people_impostor) == (2, 2)  # c has 1 image < K
    assert len(two.genuine) == 15 + 3
    assert len(two.sides) == 10 + 6  # C(5,2), C(4,2)
    assert all(not set(a.paths) & set(b.paths) for a, b in two.genuine)


def test_plan_of_one_person_does_not_depend_on_the_others() -> None:
    big = {f"p{i}": [f"p{i}_{j}" for j in range(40)] for i in range(3)}
    alone = plan({"p1": big["p1"]}, 2, seed=9, max_genuine=4, max_sides=3)
    together = plan(big, 2, seed=9, max_genuine=4, max_sides=3)
    assert alone.genuine == tuple(g for g in together.genuine if g[0].person == "p1")
    assert alone.sides == tuple(s for s in together.sides if s.person == "p1")


def test_side_template_fuses_and_tolerates_failures() -> None:
    templates = {"x": np.array([2.0, 0.0], np.float32), "y": np.array([0.0, 1.0], np.float32)}
    fused, partial = side_template(Side("p", ("x", "y")), templates)
    assert fused is not None
    assert not partial
    np.testing.assert_allclose(fused, [math.sqrt(0.5), math.sqrt(0.5)], atol=1e-6)
    single, _ = side_template(Side("p", ("x",)), templates)
    np.testing.assert_array_equal(single, [2.0, 0.0])  # K=1: the template unchanged
    half, partial = side_template(Side("p", ("x", "gone")), templates)
    assert partial
    assert half is not None
    np.testing.assert_allclose(half, [1.0, 0.0])
    assert side_template(Side("p", ("gone",)), templates) == (None, False)


def _toy() -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
    """Two people, two images each.  Cosine scores by hand: genuine a1·a2 = 0.8, b1·b2 = 0.6;
    impostor a1·b1 = 0, a1·b2 = 0, a2·b1 = 0.6, a2·b2 = 0.36."""
    people = {"a": ["a1", "a2"], "b": ["b1", "b2"]}
    templates = {
        "a1": _unit(1, 0, 0),
        "a2": _unit(0.8, 0.6, 0),
        "b1": _unit(0, 1, 0),
        "b2": _unit(0, 0.6, 0.8),
    }
    return people, templates


def test_score_and_summary_by_hand() -> None:
    people, templates = _toy()
    the_plan = plan(people, 1, seed=0)
    scores = score(the_plan, templates, None, "cosine")
    np.testing.assert_allclose(sorted(scores.genuine), [0.6, 0.8], atol=1e-6)
    # impostors: a1-b1 0, a1-b2 0, a2-b1 0.6, a2-b2 0.36
    np.testing.assert_allclose(sorted(scores.impostor), [0.0, 0.0, 0.36, 0.6], atol=1e-6)
    assert (scores.n_sides_failed, scores.n_sides_partial) == (0, 0)
    without_b2 = score(the_plan, {k: v for k, v in templates.items() if k != "b2"}, None, "cosine")
    assert without_b2.n_sides_failed == 1  # counted once, not once per role
    rep = summarize(scores, {"shipped": 0.7, "second_factor": 0.5})
    assert rep["n_genuine"] == 2
    assert rep["n_impostor"] == 4
    assert rep["at_threshold"]["shipped"]["fnmr"]["errors"] == 1  # 0.6 < 0.7
    assert rep["at_threshold"]["shipped"]["fmr"]["errors"] == 0
    assert rep["at_threshold"]["second_factor"]["fnmr"]["errors"] == 0
    assert rep["at_threshold"]["second_factor"]["fmr"]["errors"] == 1  # 0.6 >= 0.5
    at = rep["at_fmr"]  # 4 impostors: FMR <= 1e-3 allows none, so above 0.6: the genuine 0.8
    assert at["max_false_accepts"] == 0
    assert not at["resolvable"]
    assert at["threshold"] == pytest.approx(0.8)
    assert (at["fnmr"]["errors"], at["fnmr"]["trials"]) == (1, 2)
    assert per_person(scores, 0.7) == [
        {"person": "a", "n_genuine": 1, "false_non_matches": 0},
        {"person": "b", "n_genuine": 1, "false_non_matches": 1},
    ]


def test_two_per_side_fuses_before_scoring() -> None:
    people = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2"]}
    e = np.eye(3, dtype=np.float32)
    templates = {"a1": e[0], "a2": e[1], "a3": e[0], "a4": e[1], "b1": e[2], "b2": e[2]}
    scores = score(plan(people, 2, seed=0), templates, None, "cosine")
    # splits of a: {a1a2|a3a4} -> 1.0, {a1a3|a2a4} -> 0.0, {a1a4|a2a3} -> 1.0
    np.testing.assert_allclose(sorted(scores.genuine), [0.0, 1.0, 1.0], atol=1e-6)
    # sides: 6 of a (C(4,2)), 1 of b; b's side is e2, orthogonal to every side of a
    assert scores.impostor.size == 6
    np.testing.assert_allclose(scores.impostor, 0.0, atol=1e-6)


def test_degraded_reference_scores_both_ways_and_failures_reject() -> None:
    people, templates = _toy()
    reference = {k: v for k, v in templates.items() if k != "b2"}  # b2's reference failed
    scores = score(plan(people, 1, seed=0), reference, templates, "cosine")
    assert scores.ordered
    assert scores.genuine.size == 4
    assert int(np.isnan(scores.genuine).sum()) == 1  # b2 as reference
    assert scores.impostor.size == 8  # 4 unordered pairs x both ways
    assert int(np.isnan(scores.impostor).sum()) == 2  # b2 as reference vs a1, a2
    rep = summarize(scores, {"shipped": 0.5})
    assert rep["n_failed_genuine"] == 1
    assert rep["n_failed_impostor"] == 2
    assert rep["n_sides_failed"] == 1
    # genuine: a1->a2 0.8, a2->a1 0.8, b1->b2 0.6, b2->b1 failed: one false non-match at 0.5
    assert rep["at_threshold"]["shipped"]["fnmr"]["errors"] == 1
    assert rep["at_threshold"]["shipped"]["fmr"]["errors"] == 2  # a2-b1 0.6 both ways


def test_read_identities_from_csv_and_folders(tmp_path: Path) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,cohort,identity\nx/1.jpg,c,p\nx/2.jpg,c,p\ny/1.jpg,c,\n")
    got = read_identities(csv_file)
    assert got.people == {"p": ["x/1.jpg", "x/2.jpg"]}
    assert got.n_unlabelled == 1
    for rel in ("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", "Bo/Bo_0001.jpg", "Bo/notes.txt"):
        (tmp_path / "lfw" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lfw" / rel).write_bytes(b"")
    folders = read_identities(tmp_path / "lfw")
    assert folders.people == {
        "Ann": ["Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg"],
        "Bo": ["Bo/Bo_0001.jpg"],
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("path,cohort\nx.jpg,c\n")
    with pytest.raises(ValueError, match="identity"):
        read_identities(bad)

"""``shiren eval verification --labels … --images-per-side K [--degrade-reference idcard]`` and
``shiren eval fairness --images-per-side K`` on a small real slice: 6 CASIA-FaceV5 people × 5.

The counts are exact (they follow from the protocol); the rates are real measurements and are
only checked for shape, never for value."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SHARED, require

SHIREN = [sys.executable, "-m", "shiren.cli"]
CASIA = SHARED / "casia_facev5_subset"
N_PEOPLE = 6


def _slice(tmp_path: Path) -> Path:
    """labels.csv of the first 6 CASIA people (paths relative to the CASIA folder)."""
    with require(CASIA / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    people = sorted({r["identity"] for r in rows})[:N_PEOPLE]
    out = tmp_path / "labels.csv"
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "cohort", "identity"])
        writer.writeheader()
        writer.writerows(
            {k: r[k] for k in writer.fieldnames} for r in rows if r["identity"] in people
        )
    return out


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHIREN, "eval", *args], capture_output=True, text=True, timeout=300, check=False
    )


def _verify(tmp_path: Path, labels: Path, name: str, *extra: str) -> dict[str, Any]:
    out = tmp_path / name
    done = _run(
        "verification", "--labels", str(labels), "--images", str(CASIA), "--out", str(out),
        "--cache", str(tmp_path / "cache"), "--workers", "1", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_genuine"] > 0
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().count("| casia_facev5_subset |") == 1
    return report


def _check_rates(report: dict[str, Any]) -> None:
    shipped = report["at_threshold"]["shipped"]
    assert 0.0 < shipped["threshold"] < 1.0
    for key in ("fnmr", "fmr"):
        assert 0 <= shipped[key]["errors"] <= shipped[key]["trials"]
        assert len(shipped[key]["ci95"]) == 2
    assert "second_factor" in report["at_threshold"]  # MobileFaceNet ships a second factor
    assert report["at_fmr"]["target_fmr"] == 1e-3
    assert report["at_fmr"]["fnmr"]["trials"] == report["n_genuine"]


def test_two_images_per_side(tmp_path: Path) -> None:
    labels = _slice(tmp_path)
    rep = _verify(tmp_path, labels, "k2", "--images-per-side", "2", "--seed", "3")
    assert rep["protocol"]["images_per_side"] == 2
    assert rep["protocol"]["seed"] == 3
    assert rep["people"] == {
        "labelled": 6, "with_2k_images": 6, "with_k_images": 6, "unlabelled_rows": 0,
    }  # fmt: skip
    assert rep["n_genuine"] == N_PEOPLE * 15  # C(5,2)·C(3,2)/2 disjoint pairs of pairs each
    # 10 two-image sets per person; every pair of sets of different people
    assert rep["n_impostor"] == (60 * 59 - N_PEOPLE * 10 * 9) // 2
    assert len(rep["per_person"]) == N_PEOPLE
    assert sum(p["n_genuine"] for p in rep["per_person"]) == rep["n_genuine"]
    assert rep["provenance"]["settings"]["images_per_side"] == 2
    _check_rates(rep)


def test_idcard_reference_is_scored_both_ways_and_cached_apart(tmp_path: Path) -> None:
    labels = _slice(tmp_path)
    plain = _verify(tmp_path, labels, "k1")
    assert plain["n_genuine"] == N_PEOPLE * 10
    assert plain["n_impostor"] == 30 * 29 // 2 - N_PEOPLE * 10
    spoiled = _verify(tmp_path, labels, "id", "--degrade-reference", "idcard", "--seed", "0")
    assert spoiled["protocol"]["degrade_reference"] == "idcard"
    assert spoiled["both_ways"]
    assert spoiled["n_genuine"] == 2 * plain["n_genuine"]
    assert spoiled["n_impostor"] == 30 * 25  # every reference image against 25 other people's
    assert "reference" in spoiled["images"]
    _check_rates(spoiled)
    cache = next((tmp_path / "cache").glob("templates-*.json")).read_text()
    assert cache.count("|degrade=idcard|seed=0") == 30  # degraded templates under their own keys


def test_fairness_by_cohort_with_two_images_per_side(tmp_path: Path) -> None:
    labels = _slice(tmp_path)
    done = _run(
        "fairness", "--labels", str(labels), "--images", str(CASIA), "--out", str(tmp_path / "f"),
        "--cache", str(tmp_path / "cache"), "--workers", "1", "--no-quality",
        "--images-per-side", "2", "--seed", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rep = json.loads((tmp_path / "f" / "report.json").read_text())
    cohort = rep["multi_image"]["cohorts"]["east_asian"]
    assert cohort["people"]["with_2k_images"] == N_PEOPLE
    assert cohort["n_genuine"] == N_PEOPLE * 15
    assert "2 images per side, by cohort" in (tmp_path / "f" / "report.md").read_text()


def test_bad_combinations_are_refused(tmp_path: Path) -> None:
    pairs = require(SHARED / "lfw_view2" / "pairs.txt")
    common = ["--images", str(CASIA), "--out", str(tmp_path / "x")]
    k2 = _run("verification", "--pairs", str(pairs), *common, "--images-per-side", "2")
    assert k2.returncode == 2
    assert "--labels" in k2.stderr
    neither = _run("verification", *common)
    assert neither.returncode == 2
    bad = _run("verification", "--labels", str(_slice(tmp_path)), *common,
               "--degrade-reference", "passport")  # fmt: skip
    assert bad.returncode == 2
    assert "idcard" in bad.stderr


def test_lfw_pairs_with_an_idcard_reference(tmp_path: Path) -> None:
    pairs = require(SHARED / "lfw_view2" / "pairs.txt")
    out = tmp_path / "lfw"
    done = _run(
        "verification", "--pairs", str(pairs), "--images", str(SHARED / "lfw_view2" /
        "lfw-deepfunneled"), "--out", str(out), "--limit", "2", "--cache", str(tmp_path / "c"),
        "--workers", "1", "--degrade-reference", "idcard",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rep = json.loads((out / "report.json").read_text())
    decision = rep["decision"]
    assert decision["degrade_reference"] == "idcard"
    assert (decision["n_genuine"], decision["n_impostor"]) == (10, 10)
    assert rep["provenance"]["settings"]["degrade_reference"] == "idcard"

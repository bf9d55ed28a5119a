"""The command line on real images: verdicts, typed errors, exit codes, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LFW, SHARED, lfw, require

SHIREN = [sys.executable, "-m", "shiren.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHIREN, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_compare_same_person_matches() -> None:
    # Two photos of one person that clear even the cohort-protective default threshold.
    out = run("compare", str(lfw("Akhmed_Zakayev", 1)), str(lfw("Akhmed_Zakayev", 3)), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"similarity", "threshold", "match", "reasons"}
    assert result["match"] is True
    assert result["similarity"] >= result["threshold"]
    assert result["reasons"][0]["code"] == "match.above_threshold"


def test_compare_different_people_do_not_match() -> None:
    out = run("compare", str(lfw("Abel_Pacheco", 1)), str(lfw("Dean_Barker", 1)), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["match"] is False
    assert result["reasons"][0]["code"] == "match.below_threshold"


def test_compare_unreadable_input_exits_2_with_code(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"%PDF-1.4 this is no image")
    out = run("compare", str(junk), str(lfw("Abel_Pacheco", 1)), "--json")
    assert out.returncode == 2
    result = json.loads(out.stdout)
    assert result["code"] == "input.image_unsupported_format"
    assert result["message"]


def test_compare_faceless_image_exits_2(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 180, dtype=np.uint8)).save(blank)
    out = run("compare", str(blank), str(lfw("Abel_Pacheco", 1)), "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "face.not_found"


def test_missing_file_exits_2() -> None:
    out = run("compare", "/nonexistent/a.jpg", "/nonexistent/b.jpg", "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "input.file_not_found"


def test_quality_json_report() -> None:
    out = run("quality", str(lfw("Abel_Pacheco", 1)), "--json", "--lang", "en")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert isinstance(report["passed"], bool)
    assert isinstance(report["reasons"], list)
    assert "metrics" in report


def test_eval_verification_on_a_real_slice(tmp_path: Path) -> None:
    pairs = require(SHARED / "lfw_view2" / "pairs.txt")
    out = run(
        "eval",
        "verification",
        "--pairs",
        str(pairs),
        "--images",
        str(LFW),
        "--out",
        str(tmp_path),
        "--limit",
        "6",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far", "n_pairs", "n_failed"):
        assert key in report
    assert set(report["tar_at_far"]) == {"1e-2", "1e-3"}
    assert report["n_pairs"] == 60
    assert report["crashes"] == 0
    assert report["accuracy_mean"] >= 0.9
    assert (tmp_path / "roc.png").stat().st_size > 1000
    assert (tmp_path / "det.png").stat().st_size > 1000
    assert report["provenance"]["models"]
    # a second run is served from the template cache and gives the same numbers
    again = run(
        "eval",
        "verification",
        "--pairs",
        str(pairs),
        "--images",
        str(LFW),
        "--out",
        str(tmp_path / "2"),
        "--limit",
        "6",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert again.returncode == 0, again.stderr
    assert (
        json.loads((tmp_path / "2" / "report.json").read_text())["accuracy_mean"]
        == report["accuracy_mean"]
    )


def test_bench_prints_stages_and_baseline() -> None:
    folder = require(SHARED / "silent_face_samples")
    out = run("bench", "--images", str(folder), "--limit", "4", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("total_p50_ms", "total_p95_ms", "baseline_p50_ms", "speedup", "resident_mb"):
        assert key in report
    for stage in ("decode", "detect", "mesh", "quality", "align", "embed"):
        assert report["stages"][stage]["p50_ms"] >= 0


@pytest.mark.parametrize("args", [["models", "list", "--json"], ["--help"]])
def test_informational_commands(args: list[str]) -> None:
    out = run(*args)
    assert out.returncode == 0, out.stderr

"""``shiren eval fairness`` and ``shiren calibrate-cohorts`` on a small real slice: UTKFace (two
cohorts, no identities: FMR only) and CASIA-FaceV5 (3 identities × 5: FNMR)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHARED, require

SHIREN = [sys.executable, "-m", "shiren.cli"]


def _slice(tmp_path: Path) -> Path:
    """A label CSV with paths relative to SHARED: 30 adults + 3 children (dropped by
    --min-age 18) from each of two UTKFace cohorts, and 3 CASIA people."""
    utk = require(SHARED / "utkface_cohorts" / "labels.csv")
    casia = require(SHARED / "casia_facev5_subset" / "labels.csv")
    rows: list[dict[str, str]] = []
    with utk.open(newline="") as handle:
        for cohort in ("asian_female", "white_male"):
            handle.seek(0)
            picked = [r for r in csv.DictReader(handle) if r["cohort"] == cohort]
            adults = [r for r in picked if int(r["age"]) >= 18][:30]
            children = [r for r in picked if int(r["age"]) < 18][:3]
            rows += [{**r, "path": f"utkface_cohorts/{r['path']}"} for r in adults + children]
    with casia.open(newline="") as handle:
        people = list(csv.DictReader(handle))[:15]
        rows += [{**r, "path": f"casia_facev5_subset/{r['path']}"} for r in people]
    out = tmp_path / "labels.csv"
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "cohort", "identity", "gender", "age"])
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in writer.fieldnames} for r in rows)
    return out


def test_eval_fairness_writes_the_report(tmp_path: Path) -> None:
    labels = _slice(tmp_path)
    common = ["--labels", str(labels), "--images", str(SHARED), "--cache", str(tmp_path / "c")]
    done = subprocess.run(
        [*SHIREN, "eval", "fairness", *common, "--out", str(tmp_path / "r"), "--min-age", "18"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {"fmr_ratio", "fnmr_ratio", "cohorts", "cross_cohort", "provenance"} <= set(rep)
    by_name = {row["cohort"]: row for row in rep["cohorts"]}
    assert set(by_name) == {"asian_female", "white_male", "east_asian"}
    for row in by_name.values():
        assert {"fmr", "fnmr", "fta"} <= set(row)
        assert row["fmr"]["shipped"]["trials"] > 0
        assert row["fmr"]["shipped"]["ci95"]
    assert by_name["east_asian"]["n_genuine_pairs"] == 3 * 10
    assert by_name["asian_female"]["fnmr"] is None
    assert by_name["white_male"]["n_images"] == 30  # the 3 children left out by --min-age
    assert (tmp_path / "r" / "report.md").read_text().count("| east_asian |") >= 1
    assert (tmp_path / "r" / "det_cohorts.png").stat().st_size > 1000
    assert (tmp_path / "r" / "fmr_vs_threshold.png").stat().st_size > 1000
    quality = rep["quality_by_cohort"]["cohorts"]
    assert quality["white_male"]["images"] == 30
    assert quality["east_asian"]["faces_found"] >= 14
    assert "worst/best ratio" in (tmp_path / "r" / "report.md").read_text()
    aware = subprocess.run(
        [*SHIREN, "calibrate-cohorts", *common, "--targets", "1e-2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert aware.returncode == 0, aware.stderr
    assert '"cohort_aware"' in aware.stdout

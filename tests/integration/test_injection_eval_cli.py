"""``shiren eval injection`` end to end on a small real slice: two recordings (two people, one
per fold), one session of each type each, in a subprocess like a user's run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SHARED, require


def test_eval_injection_on_two_recordings(tmp_path: Path) -> None:
    data = require(SHARED)
    require(data / "grid_talking_faces")
    done = subprocess.run(
        [sys.executable, "-m", "shiren.cli", "eval", "injection", "--out", str(tmp_path / "r"),
         "--data", str(data), "--recordings", "2", "--sessions", "1", "--seed", "3"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[  10/10]" in done.stderr  # progress, one line per session
    assert "APCER virtual_camera" in done.stdout
    report = json.loads((tmp_path / "r" / "report.json").read_text("utf-8"))
    assert not (tmp_path / "r" / "sessions.partial.jsonl").exists()
    assert report["folds"] == {"0": ["P08"], "1": ["zubair"]}
    assert report["bpcer"]["n"] == 2
    assert set(report["apcer_by_type"]) == {
        "virtual_camera", "retimed", "reencoded", "screen_replay",
    }  # fmt: skip
    for row in report["apcer_by_type"].values():
        assert row["n"] == 2
        assert row["ci95"] is not None
    assert len(report["sessions"]) == 10
    assert {s["fold"] for s in report["sessions"]} == {0, 1}
    prov = report["provenance"]
    assert prov["settings"]["seed"] == 3
    shas = {r["sha256"] for r in prov["settings"]["data"]["recordings"]}
    assert len(shas) == 2
    assert prov["settings"]["data"]["traces"]["sha256"]
    assert set(report["thresholds_by_test_fold"]) == {"test_fold_0", "test_fold_1"}
    assert report["goal"]["met_on_point_estimates"] in (True, False)
    assert "SIMULATED" in report["simulation"]["note"]

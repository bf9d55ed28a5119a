"""``shiren eval readdigits`` end to end on a small real slice: two GRID clips (two people, one
per fold), one session each, in a subprocess like a user's run — clean with lines fitted per
fold, and in a room with steady hiss or with other people talking, judged by the shipped lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shiren.liveness.readdigits_signals import SyncParams
from tests.conftest import SHARED, require


def _run(out: Path, *extra: str) -> dict[str, object]:
    clips = require(SHARED / "grid_talking_faces")
    done = subprocess.run(
        [sys.executable, "-m", "shiren.cli", "eval", "readdigits", "--out", str(out),
         "--clips", str(clips), "--limit", "2", "--sessions", "1", "--seed", "3", *extra],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "genuine   BPCER" in done.stdout
    report: dict[str, object] = json.loads((out / "report.json").read_text("utf-8"))
    return report


@pytest.mark.parametrize("room", [None, "white", "babble"])
def test_eval_readdigits_on_two_clips(tmp_path: Path, room: str | None) -> None:
    noisy = room is not None
    extra = ("--snr-db", "20", "--noise", room, "--shipped-lines") if room else ()
    if room == "babble":  # and every challenge six digits long
        extra = (*extra, "--digits", "6")
    report = _run(tmp_path / "r", *extra)
    protocol = report["protocol"]
    assert isinstance(protocol, dict)
    assert protocol["clips"] == ["P08_bbaf2n", "P09_brbk7n"]
    assert protocol["snr_db"] == (20.0 if noisy else None)
    assert protocol["noise"] == room
    assert protocol["min_snr_db"] == 30.0
    assert protocol["lines"] == ("shipped" if noisy else "fitted per fold")
    assert protocol["digits"] == ([6, 6] if room == "babble" else [4, 6])
    lines = protocol["lines_by_judged_fold"]
    if noisy:  # the deployed lines judge both folds
        shipped = SyncParams()
        fixed = {"min_corr": shipped.min_corr, "max_peak_gap": shipped.max_peak_gap}
        assert lines == dict.fromkeys(("0", "1"), fixed)
    sessions = report["sessions"]
    assert isinstance(sessions, list)
    kinds = {s["kind"] for s in sessions}
    assert {"genuine", "dubbed", "shifted", "frozen", "looped", "silent"} <= kinds
    assert {s["fold"] for s in sessions} == {0, 1}
    lengths = {s["digits"] for s in sessions}
    assert lengths == {6} if room == "babble" else lengths <= {4, 5, 6}
    silent = [s for s in sessions if s["kind"] == "silent"]
    # a silent track under noise is a noise-only track: judged (and failed), not a typed error
    assert all((s["error"] is None) is noisy for s in silent)
    assert all(not s["signals"]["decision"]["passed"] for s in silent)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["genuine"]["bpcer"]["n"] == 2
    # the recording's speech over its noise: a studio clip over the line, steady hiss 20 dB
    # under the speech under it (people talking may pause through the lead-in: not asserted)
    snr = [s["signals"]["sync"]["snr_db"] for s in sessions if s["kind"] == "genuine"]
    if room != "babble":
        assert all((v < protocol["min_snr_db"]) is noisy for v in snr), snr
    for kind, entry in summary.items():
        if isinstance(entry, dict):
            failed = entry["sessions"] - (entry.get("apcer") or {}).get("k", 0)
            assert 0 <= entry["too_noisy"] <= entry["sessions"], kind
            assert entry["too_noisy"] == 0 or noisy, kind
            assert failed >= 0

"""PAD evaluation: ISO/IEC 30107-3 metrics on hand-computed examples, labels, and the CLI end to
end on small real slices (NUAA, silent_face_samples)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shiren.errors import ErrorCode, InputError
from shiren.eval.pad import (
    Acquired,
    PadLabels,
    PadSample,
    Rate,
    acer,
    apcer,
    apcer_at_bpcer,
    apcer_by_type,
    base_scorer,
    bpcer,
    bpcer_at_apcer,
    evaluate_scorers,
    pad_auc,
    pad_metrics,
    read_pad_labels,
    threshold_at_apcer,
    threshold_at_bpcer,
    worst_type,
)
from tests.conftest import SHARED, require

SHIREN = [sys.executable, "-m", "shiren.cli"]
NUAA = SHARED / "nuaa_pad"
SILENT = SHARED / "silent_face_samples"

# Live: 0.9 0.8 0.7 0.6 0.5; print attacks: 0.1 0.55 0.6; replay attacks: 0.2 0.3.
LIVE = [0.9, 0.8, 0.7, 0.6, 0.5]
PRINT = [0.1, 0.55, 0.6]
REPLAY = [0.2, 0.3]
SCORES = np.array(LIVE + PRINT + REPLAY)
IS_LIVE = np.array([1] * 5 + [0] * 5)
TYPES = ["live"] * 5 + ["print"] * 3 + ["replay"] * 2


# ---------------------------------------------------------------------------- pure metrics


def test_tie_at_threshold_is_accepted() -> None:
    # threshold 0.6: live 0.5 rejected (1/5); print 0.6 ties and is accepted (1/3).
    assert bpcer(LIVE, 0.6) == Rate(1, 5)
    assert apcer(PRINT, 0.6) == Rate(1, 3)
    assert apcer(REPLAY, 0.6) == Rate(0, 2)


def test_apcer_is_the_worst_type_not_the_pooled_rate() -> None:
    by_type = apcer_by_type(SCORES, IS_LIVE, TYPES, 0.55)
    assert by_type == {"print": Rate(2, 3), "replay": Rate(0, 2)}
    worst = worst_type(by_type)
    assert worst is not None
    assert worst[0] == "print"
    m = pad_metrics(SCORES, IS_LIVE, TYPES, 0.55)
    assert m["apcer"] == pytest.approx(2 / 3)  # pooled would be 2/5
    assert m["apcer_pooled"]["rate"] == pytest.approx(2 / 5)
    assert m["bpcer"] == pytest.approx(1 / 5)
    assert m["acer"] == pytest.approx((2 / 3 + 1 / 5) / 2)
    lo, hi = m["apcer_by_type"]["print"]["ci95"]
    assert lo < 2 / 3 < hi


def test_empty_attack_type_is_reported_but_not_maximised() -> None:
    by_type = apcer_by_type(SCORES, IS_LIVE, TYPES, 0.55, expected_types=["mask"])
    assert by_type["mask"] == Rate(0, 0)
    assert by_type["mask"].rate is None
    assert by_type["mask"].to_dict()["ci95"] is None
    assert worst_type(by_type) == ("print", Rate(2, 3))
    assert worst_type({"mask": Rate(0, 0)}) is None


def test_all_live_rows_have_no_apcer() -> None:
    m = pad_metrics(LIVE, [1] * 5, ["live"] * 5, 0.6)
    assert m["apcer"] is None
    assert m["acer"] is None
    assert m["auc"] is None
    assert m["bpcer"] == pytest.approx(1 / 5)
    assert m["bpcer_at_apcer_1pct"] is None
    assert threshold_at_apcer(LIVE, [1] * 5, ["live"] * 5, 0.01) is None
    assert acer(None, 0.1) is None


def test_threshold_at_bpcer_is_the_largest_meeting_the_target() -> None:
    # k = floor(0.2 * 5) = 1 rejection allowed → the 2nd lowest live score.
    assert threshold_at_bpcer(LIVE, 0.2) == 0.6
    assert threshold_at_bpcer(LIVE, 0.05) == 0.5  # no rejection allowed: the lowest live score
    assert bpcer(LIVE, 0.6).rate == pytest.approx(0.2)
    # Ties: two live scores of 0.6 — BPCER at 0.6 is 1/6 with one rejection allowed (k=1).
    assert threshold_at_bpcer([0.5, 0.6, 0.6, 0.7, 0.8, 0.9], 0.2) == 0.6
    assert threshold_at_bpcer([], 0.05) is None


def test_threshold_at_bpcer_with_failures_to_acquire() -> None:
    # 2 of 5 live rows failed (-inf): a 20 % target cannot be met; accept every acquired face.
    assert threshold_at_bpcer([-math.inf, -math.inf, 0.4, 0.7, 0.9], 0.2) == 0.4
    assert threshold_at_bpcer([-math.inf, 0.4, 0.7, 0.9, 0.95], 0.2) == 0.4
    assert threshold_at_bpcer([-math.inf, -math.inf], 0.5) == math.inf
    # A failed presentation is rejected at every threshold.
    assert bpcer([-math.inf, 0.9], -1e9) == Rate(1, 2)
    assert apcer([-math.inf, 0.9], -1e9) == Rate(1, 2)


def test_threshold_at_apcer_takes_the_worst_type() -> None:
    # print: 3 attacks, 1/3 target → 1 may pass; boundary 0.55 → smallest score above: 0.6.
    # replay: 2 attacks, 1/3 target → 0 may pass; boundary 0.3 → smallest score above: 0.5.
    assert threshold_at_apcer(SCORES, IS_LIVE, TYPES, 1 / 3) == 0.6
    point = bpcer_at_apcer(SCORES, IS_LIVE, TYPES, 1 / 3)
    assert point["bpcer"] == pytest.approx(1 / 5)
    assert point["apcer"] == pytest.approx(1 / 3)
    assert point["resolvable"] is False  # 2 replay attacks cannot resolve 1/3: none may pass
    # 1 %: no attack may pass → above the highest attack (0.6) → 0.7; live 0.6, 0.5 rejected.
    strict = bpcer_at_apcer(SCORES, IS_LIVE, TYPES, 0.01)
    assert strict["threshold"] == 0.7
    assert strict["bpcer"] == pytest.approx(2 / 5)
    assert strict["apcer"] == 0.0
    assert strict["resolvable"] is False  # 3 attacks cannot resolve 1 %


def test_apcer_at_bpcer() -> None:
    point = apcer_at_bpcer(SCORES, IS_LIVE, TYPES, 0.2)  # threshold 0.6
    assert point["threshold"] == 0.6
    assert point["apcer"] == pytest.approx(1 / 3)
    assert point["apcer_worst_type"] == "print"


def test_auc_counts_ties_half() -> None:
    # live {1, 0.5}, attack {0.5, 0}: pairs (1>.5)(1>0)(.5=.5)(.5>0) → (3 + 0.5) / 4.
    assert pad_auc([1.0, 0.5, 0.5, 0.0], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)


def test_nan_and_plus_inf_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        bpcer([0.5, math.nan], 0.5)
    with pytest.raises(ValueError, match=r"\+inf"):
        apcer([math.inf], 0.5)


# ---------------------------------------------------------------------------- labels


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_labels_defaults_and_checks(tmp_path: Path) -> None:
    labels = read_pad_labels(
        _write_csv(
            tmp_path / "a.csv", [{"path": "x.jpg", "is_live": 1}, {"path": "y.jpg", "is_live": 0}]
        )
    )
    assert [s.label for s in labels.samples] == ["live", "attack"]
    assert not labels.has_split
    assert labels.rows("test") == list(labels.samples)  # no split column: everything
    for bad, code in (
        ([{"path": "../etc/passwd", "is_live": 1}], ErrorCode.INPUT_INVALID),
        ([{"path": "x.jpg", "is_live": 2}], ErrorCode.INPUT_INVALID),
        ([{"path": "x.jpg", "live": 1}], ErrorCode.INPUT_INVALID),
        ([{"path": "x.jpg", "is_live": 0, "label": "live"}], ErrorCode.INPUT_INVALID),
    ):
        with pytest.raises(InputError) as err:
            read_pad_labels(_write_csv(tmp_path / "bad.csv", bad))
        assert err.value.code == code
    with pytest.raises(InputError) as missing:
        read_pad_labels(tmp_path / "absent.csv")
    assert missing.value.code == ErrorCode.INPUT_FILE_NOT_FOUND


def test_no_split_column_says_threshold_not_held_out() -> None:
    samples = tuple(
        PadSample(f"{i}.jpg", bool(live), "live" if live else "print", subject=None)
        for i, live in enumerate([1, 1, 1, 0, 0])
    )
    labels = PadLabels(samples, Path("labels.csv"), "0" * 64, has_split=False, has_subject=False)
    acquired = {
        s.path: Acquired(s.path, base_live=v)
        for s, v in zip(samples, [0.9, 0.8, 0.7, 0.2, 0.1], strict=True)
    }
    acquired["2.jpg"] = Acquired("2.jpg", failure="face.not_found")
    from shiren.eval.pad import ThresholdRule

    result = evaluate_scorers(
        labels,
        acquired,
        {"base": base_scorer},
        split="test",
        fit_split="train",
        rule=ThresholdRule(),
    )
    metrics = result["scorers"]["base"]
    assert result["protocol"]["held_out"] is False
    assert "NOT chosen on held-out data" in metrics["threshold_source"]["warning"]
    # The failed live row is rejected: at the 5 % target the threshold must accept all other
    # live rows, and BPCER is 1/3 (the failure).
    assert metrics["threshold"] == 0.8
    assert metrics["bpcer_detail"] == {
        "rate": 1 / 3,
        "errors": 1,
        "n": 3,
        "ci95": metrics["bpcer_detail"]["ci95"],
    }
    assert metrics["counts"]["failed_to_acquire"] == 1


# ---------------------------------------------------------------------------- CLI, real data


def run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [*SHIREN, *args], capture_output=True, text=True, timeout=600, check=False, env=env
    )


def _minifasnet_available() -> bool:
    try:
        from shiren.models.registry import build_model

        build_model("minifasnet")
    except Exception:
        return False
    return True


def nuaa_slice(tmp_path: Path, per_group: int = 20) -> Path:
    """A labels.csv with ``per_group`` live and attack rows from each official split, spread
    evenly over the NUAA rows (so several subjects are present), paths relative to NUAA."""
    labels = require(NUAA / "labels.csv")
    with labels.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    chosen: list[dict[str, str]] = []
    for split in ("train", "test"):
        for live in ("1", "0"):
            group = [r for r in rows if r["official_nuaa_split"] == split and r["is_live"] == live]
            step = len(group) / per_group
            chosen += [group[int(i * step)] for i in range(per_group)]
    return _write_csv(tmp_path / "labels.csv", chosen)


def _check_report(report: dict[str, Any]) -> None:
    rates = ("apcer", "bpcer", "acer", "bpcer_at_apcer_1pct", "bpcer_at_apcer_5pct", "auc")
    for scorer in [report, *report["scorers"].values()]:
        for key in (*rates, "apcer_at_bpcer_5pct"):
            assert 0.0 <= scorer[key] <= 1.0, key
        assert scorer["acer"] == pytest.approx((scorer["apcer"] + scorer["bpcer"]) / 2)
        by_type = scorer["apcer_by_type"]
        assert scorer["apcer"] == max(r["rate"] for r in by_type.values())
        for r in by_type.values():
            assert set(r) == {"rate", "errors", "n", "ci95"}
            assert r["ci95"][0] <= r["rate"] <= r["ci95"][1]
        assert scorer["threshold_source"]["held_out"] is True
        assert scorer["threshold_source"]["fit_split"] == "train"
    assert report["counts"]["live"] == 20
    assert report["counts"]["attack"] == 20
    assert report["protocol"]["fit_rows"] == 40
    assert report["failures_to_acquire"]["all"]["n"] == 40
    assert {s["subject"] for s in report["per_subject"]}
    prov = report["provenance"]
    assert len(prov["settings"]["labels_sha256"]) == 64
    assert "eval pad" in prov["settings"]["command"]
    assert prov["timestamp_utc"]
    assert all(len(m["sha256"]) == 64 for m in prov["models"])


@pytest.mark.slow
def test_eval_pad_nuaa_slice_texture_only(tmp_path: Path) -> None:
    labels = nuaa_slice(tmp_path)
    out = tmp_path / "out"
    done = run(
        "eval", "pad", "--root", str(NUAA), "--labels", str(labels), "--out", str(out),
        "--model", "none", "--fit-texture", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert summary["primary"] == report["primary"] == "texture"
    assert set(report["scorers"]) == {"texture"}
    _check_report(report)
    assert (out / "det.png").stat().st_size > 1000
    assert report["fitted_models"]["texture"]["training"]["terms"]  # NUAA: research-only note
    assert report["timing"]["texture_features"]["n"] == 80


@pytest.mark.slow
def test_eval_pad_nuaa_slice_fused(tmp_path: Path) -> None:
    if not _minifasnet_available():
        pytest.skip("minifasnet model not available (SHIREN_MINIFASNET_DIR)")
    labels = nuaa_slice(tmp_path)
    out = tmp_path / "out"
    done = run(
        "eval", "pad", "--root", str(NUAA), "--labels", str(labels), "--out", str(out),
        "--fit-texture", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["primary"] == "fused"
    assert set(report["scorers"]) == {"minifasnet", "texture", "fused"}
    _check_report(report)
    assert report["fitted_models"]["fused"]["base_model"]["name"] == "minifasnet"


@pytest.mark.slow
def test_eval_pad_silent_face_samples(tmp_path: Path) -> None:
    require(SILENT / "image_T1.jpg")
    if not _minifasnet_available():
        pytest.skip("minifasnet model not available (SHIREN_MINIFASNET_DIR)")
    labels = _write_csv(
        tmp_path / "labels.csv",
        [
            {"path": "image_F1.jpg", "is_live": 0, "label": "attack_print"},
            {"path": "image_F2.jpg", "is_live": 0, "label": "attack_replay"},
            {"path": "image_T1.jpg", "is_live": 1, "label": "live"},
            {"path": "image_T2.jpg", "is_live": 1, "label": "live"},
        ],
    )
    out = tmp_path / "out"
    done = run("eval", "pad", "--root", str(SILENT), "--labels", str(labels), "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["protocol"]["held_out"] is False
    assert "NOT chosen on held-out data" in report["threshold_source"]["warning"]
    assert set(report["apcer_by_type"]) == {"attack_print", "attack_replay"}
    assert report["failures_to_acquire"]["all"]["errors"] == 0  # EXIF applied: faces found
    assert report["auc"] == 1.0  # the demo images separate (four images: a smoke test only)


def test_eval_pad_missing_labels_exits_2(tmp_path: Path) -> None:
    done = run(
        "eval",
        "pad",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        "--model",
        "none",
        "--fit-texture",
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "input.file_not_found"

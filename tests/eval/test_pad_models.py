"""``shiren eval pad`` with several PAD models side by side and their mean (issue 19): scorers on
hand-checkable records, then the CLI on Silent-Face's four phone photos with both real models."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from shiren.eval.pad import Acquired, mean_scorer, other_scorer
from shiren.models import mobilefacenet
from shiren.models.registry import default_model_dir, minifasnet_available
from tests.conftest import SHARED, require


def test_other_models_and_their_mean_are_scored_from_the_acquired_records() -> None:
    items = [
        Acquired("a", others={"x": 0.8, "y": 0.2}),
        Acquired("b", others={"x": 0.1, "y": 0.5}),
        Acquired("c", failure="face.not_found"),
        Acquired("d", others={"x": 0.3}),  # "y" was not measured: a failure for "y" only
    ]
    x, y = other_scorer("x")(items), other_scorer("y")(items)
    assert x.tolist()[:2] == [0.8, 0.1]
    assert y.tolist()[:2] == [0.2, 0.5]
    assert math.isinf(x[2]) and x[2] < 0  # noqa: PT018 - one value, -inf
    assert x[3] == 0.3
    assert math.isinf(y[3])
    mean = mean_scorer([other_scorer("x"), other_scorer("y")])(items)
    assert mean.tolist()[:2] == pytest.approx([0.5, 0.3])
    assert math.isinf(mean[2])
    assert math.isinf(mean[3])  # a failure in any part stays a failure


@pytest.mark.skipif(
    not (mobilefacenet.npm_dir(default_model_dir()) / mobilefacenet.TARBALL).is_file()
    or not minifasnet_available(),
    reason="needs the npm tarball (scripts/setup.sh) and MiniFASNet (SHIREN_MINIFASNET_DIR)",
)
def test_eval_pad_reports_each_model_and_their_mean(tmp_path: Path) -> None:
    root = require(SHARED / "silent_face_samples")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label,is_live\nimage_T1.jpg,live,1\nimage_T2.jpg,live,1\n"
        "image_F1.jpg,attack_print,0\nimage_F2.jpg,attack_replay,0\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["eval", "pad", "--root", str(root), "--labels", str(labels), "--out", str(out)]
    args += ["--model", "minifasnet", "--model", "dtn-fas", "--fuse-mean", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "shiren.cli", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["scorers"]) == {"minifasnet", "dtn-fas", "mean(minifasnet,dtn-fas)"}
    for metrics in report["scorers"].values():
        assert metrics["auc"] == 1.0  # both models rank the two live photos above both attacks
    assert {"base_model", "model:dtn-fas"} <= set(report["timing"])
    assert report["timing"]["model:dtn-fas"]["n"] == 4
    names = [m["name"] for m in report["provenance"]["models"]]
    assert "dtn-fas" in names
    assert "minifasnet" in names


def test_fuse_mean_needs_two_models(tmp_path: Path) -> None:
    root = require(SHARED / "silent_face_samples")
    args = ["eval", "pad", "--root", str(root), "--out", str(tmp_path), "--model", "none"]
    done = subprocess.run(
        [sys.executable, "-m", "shiren.cli", *args, "--fuse-mean"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "--fuse-mean" in done.stderr

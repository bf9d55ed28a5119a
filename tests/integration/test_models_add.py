"""``shiren models add --onnx FILE`` (issue 14): a lender's own network is checked, recorded in a
user manifest, calibrated on a real LFW slice, and then served: an engine built from the settings
it prints embeds with it."""

from __future__ import annotations

import json
from pathlib import Path

from shiren.service.app import Engine
from shiren.service.settings import Settings
from tests.conftest import SHARED, require
from tests.integration.test_cli import run
from tests.support.tiny_onnx import build_tiny_embedder


def test_add_records_calibrates_and_serves(tmp_path: Path) -> None:
    lfw = require(SHARED / "lfw_view2")
    onnx = tmp_path / "lender.onnx"
    digest = build_tiny_embedder(onnx, size=112, dim=16)
    manifest = tmp_path / "user_models.json"
    out = run(
        "models", "add", "--onnx", str(onnx), "--name", "lender-net", "--manifest",
        str(manifest), "--lfw", str(lfw), "--limit", "4", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["sha256"] == digest
    assert report["dim"] == 16
    cal = report["calibration"]
    assert cal["pairs"] == 40  # 4 per fold, 10 folds
    assert 0.0 <= cal["accuracy_mean"] <= 1.0
    assert set(cal["threshold_at_far"]) >= {"1e-3"}
    entry = json.loads(manifest.read_text())["lender-net"]
    assert entry["sha256"] == digest
    assert entry["options"]["alignment"] == "arcface"
    serve = report["serve_with"]
    assert serve["SHIREN_EMBEDDER"] == "lender-net"
    # the printed settings give an engine that embeds with the lender's network
    settings = Settings(
        embedder=serve["SHIREN_EMBEDDER"],
        model_manifest=serve["SHIREN_MODEL_MANIFEST"],
        match_threshold=0.5,
        second_factor_threshold=0.3,
    )
    engine = Engine.load(settings)
    assert engine.verifier.embedder.info.name == "lender-net"
    assert engine.verifier.threshold == 0.5
    assert engine.checker.config.identity.threshold_for("lender-net") == 0.3


def test_a_taken_name_or_a_bad_file_is_a_typed_refusal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    taken = run("models", "add", "--onnx", str(bad), "--name", "mobilefacenet-onnx", "--json")
    assert taken.returncode != 0
    assert json.loads(taken.stdout)["code"] == "config.invalid"
    broken = run(
        "models", "add", "--onnx", str(bad), "--name", "x", "--manifest",
        str(tmp_path / "m.json"), "--json",
    )  # fmt: skip
    assert broken.returncode != 0
    assert json.loads(broken.stdout)["code"].startswith("model.")
    assert not (tmp_path / "m.json").exists()  # nothing recorded for a file that does not load


def test_a_corrupt_manifest_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    onnx = tmp_path / "lender.onnx"
    build_tiny_embedder(onnx, size=112, dim=16)
    manifest = tmp_path / "user_models.json"
    manifest.write_text("{not json")
    out = run(
        "models", "add", "--onnx", str(onnx), "--name", "lender-net", "--manifest",
        str(manifest), "--lfw", str(tmp_path / "no-lfw"), "--json",
    )  # fmt: skip
    assert out.returncode != 0
    assert json.loads(out.stdout)["code"] == "config.invalid"
    assert manifest.read_text() == "{not json"

"""Texture features, the logistic PAD model, its sealed file format, and ``shiren train pad``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from shiren.core.geometry import BBox, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.liveness.pad_model import (
    FORMAT_VERSION,
    TexturePad,
    content_sha256,
    fit_logistic,
    load_pad_model,
    save_pad_model,
    train_pad_model,
)
from shiren.liveness.texture import (
    CROP_SIZE,
    FEATURE_DIM,
    face_crop,
    feature_names,
    lbp_histogram,
    texture_features,
)
from shiren.models.fake import fake_info
from shiren.models.protocols import ModelInfo, PresentationAttackDetector
from tests.test_pad_eval import NUAA, nuaa_slice, run


class FakeBase:
    """A deterministic 'base detector': the mean green level of the box, as a probability."""

    def __init__(self, sha: str = "1" * 64) -> None:
        self.info: ModelInfo = _with_sha(sha)

    def live_score(self, image: RGBImage, box: BBox) -> float:
        x0, y0, x1, y1 = (int(v) for v in (box.x0, box.y0, box.x1, box.y1))
        return float(image[y0:y1, x0:x1, 1].mean() / 255.0)


def _with_sha(sha: str) -> ModelInfo:
    base = fake_info("fake-pad")
    return ModelInfo(
        name=base.name,
        version=base.version,
        sha256=sha,
        licence=base.licence,
        source=base.source,
        input_size=base.input_size,
    )


def _images(n: int, seed: int) -> tuple[list[RGBImage], np.ndarray]:
    """Synthetic 'live' (smooth, colourful) and 'attack' (noisy, grey) images."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        live = i % 2 == 0
        if live:
            base = np.stack(
                [np.full((120, 120), rng.integers(120, 200)) for _ in range(3)], axis=-1
            )
            noise = rng.normal(0, 4, (120, 120, 3))
        else:
            grey = rng.integers(90, 160)
            base = np.full((120, 120, 3), grey)
            noise = rng.normal(0, 25, (120, 120, 3))
        images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
        labels.append(live)
    return images, np.array(labels)


BOX = BBox(30, 30, 90, 90)


def test_feature_layout_and_determinism() -> None:
    images, _ = _images(2, 0)
    f = texture_features(images[0], BOX)
    assert f.shape == (FEATURE_DIM,) == (len(feature_names()),)
    assert np.isfinite(f).all()
    assert np.array_equal(f, texture_features(images[0], BOX))
    assert len(set(feature_names())) == FEATURE_DIM


def test_lbp_histograms() -> None:
    rng = np.random.default_rng(1)
    channel = rng.integers(0, 256, (CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    for radius in (1, 2):
        h = lbp_histogram(channel, radius)
        assert h.shape == (59,)
        assert h.sum() == pytest.approx(1.0)
    flat = np.full((10, 10), 7, dtype=np.uint8)
    # A flat patch: every neighbour >= centre → code 255, one uniform bin holds everything.
    assert lbp_histogram(flat, 1).max() == 1.0


def test_crop_is_clipped_not_padded() -> None:
    image = np.zeros((50, 80, 3), dtype=np.uint8)
    image[:, :40] = 255
    whole = face_crop(image, BBox(0, 0, 80, 50))
    assert whole.shape == (CROP_SIZE, CROP_SIZE, 3)
    # Half white, half black (no replicated or black border added).
    assert whole[:, : CROP_SIZE // 2 - 2].min() == 255
    assert whole[:, CROP_SIZE // 2 + 2 :].max() == 0


def test_texture_features_are_fast() -> None:
    images, _ = _images(1, 2)
    big = np.ascontiguousarray(np.tile(images[0], (4, 6, 1)))  # 480 x 720
    box = BBox(200, 120, 420, 380)
    texture_features(big, box)
    start = time.perf_counter()
    for _ in range(50):
        texture_features(big, box)
    per_face_ms = (time.perf_counter() - start) / 50 * 1000
    assert per_face_ms < 15  # ~2 ms on one core; generous for loaded CI machines


def test_fit_logistic_is_deterministic_and_separates() -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(1, 1, (60, 4)), rng.normal(-1, 1, (40, 4))])
    y = np.array([1] * 60 + [0] * 40)
    a, b = fit_logistic(x, y), fit_logistic(x, y)
    assert a.converged
    assert np.array_equal(a.weights, b.weights)
    assert a.bias == b.bias
    logits = ((x - a.means) / a.scales) @ a.weights + a.bias
    assert ((logits > 0) == y.astype(bool)).mean() > 0.9
    # Perfectly separable data stays finite thanks to the L2 penalty.
    sep = fit_logistic(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    assert np.isfinite(sep.weights).all()
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(x[:5], [1] * 5)


def _trained(tmp_path: Path, fused: bool) -> tuple[Path, list[RGBImage], FakeBase]:
    images, labels = _images(40, 4)
    base = FakeBase()
    feats = np.stack([texture_features(im, BOX) for im in images])
    base_live = [base.live_score(im, BOX) for im in images] if fused else None
    model = train_pad_model(
        feats,
        labels,
        base_live=base_live,
        base_info=base.info if fused else None,
        training={"labels": "synthetic", "labels_sha256": "0" * 64, "split": None},
    )
    path = tmp_path / "pad.json"
    digest = save_pad_model(model, path)
    assert digest == model.sha256
    return path, images, base


@pytest.mark.parametrize("fused", [False, True])
def test_train_save_load_same_scores(tmp_path: Path, fused: bool) -> None:
    path, images, base = _trained(tmp_path, fused)
    model = load_pad_model(path)
    assert model.uses_base is fused
    detector = TexturePad(model, base)
    assert isinstance(detector, PresentationAttackDetector)
    scores = [detector.live_score(im, BOX) for im in images]
    feats = np.stack([texture_features(im, BOX) for im in images])
    base_live = [base.live_score(im, BOX) for im in images]
    again = detector.score_many(feats, base_live)
    assert np.allclose(scores, again, rtol=0, atol=1e-12)
    assert all(0.0 <= s <= 1.0 for s in scores)
    # The synthetic classes are easy: the model must get them right.
    labels = np.arange(len(images)) % 2 == 0
    assert ((np.array(scores) >= 0.5) == labels).all()
    assert detector.info.sha256 == json.loads(path.read_text())["sha256"]


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    path, _, _ = _trained(tmp_path, fused=False)
    raw = json.loads(path.read_text())
    raw["bias"] += 1.0
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelError) as err:
        load_pad_model(path)
    assert err.value.code == ErrorCode.MODEL_CHECKSUM_MISMATCH


def test_invalid_model_files_are_refused(tmp_path: Path) -> None:
    path, _, _ = _trained(tmp_path, fused=False)
    raw = json.loads(path.read_text())
    # A re-sealed file of another format version: sealed correctly, but not understood.
    other = {k: v for k, v in raw.items() if k != "sha256"}
    other["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps({**other, "sha256": content_sha256(other)}))
    with pytest.raises(ModelError) as err:
        load_pad_model(path)
    assert err.value.code == ErrorCode.MODEL_INVALID
    # Inconsistent shapes, correctly sealed.
    short = {k: v for k, v in raw.items() if k != "sha256"}
    short["weights"] = short["weights"][:-1]
    path.write_text(json.dumps({**short, "sha256": content_sha256(short)}))
    with pytest.raises(ModelError) as err:
        load_pad_model(path)
    assert err.value.code == ErrorCode.MODEL_INVALID
    path.write_text("{not json")
    with pytest.raises(ModelError) as err:
        load_pad_model(path)
    assert err.value.code == ErrorCode.MODEL_INVALID
    with pytest.raises(ModelError) as err:
        load_pad_model(tmp_path / "absent.json")
    assert err.value.code == ErrorCode.MODEL_UNAVAILABLE


def test_fused_model_needs_its_own_base(tmp_path: Path) -> None:
    path, _, _ = _trained(tmp_path, fused=True)
    model = load_pad_model(path)
    with pytest.raises(ModelError) as missing:
        TexturePad(model, None)
    assert missing.value.code == ErrorCode.MODEL_UNAVAILABLE
    with pytest.raises(ModelError) as other:
        TexturePad(model, FakeBase(sha="2" * 64))
    assert other.value.code == ErrorCode.MODEL_INVALID


@pytest.mark.slow
def test_train_pad_cli_then_eval_with_the_model(tmp_path: Path) -> None:
    # NUAA is research-only: the model goes to a temporary folder and is never kept.
    labels = nuaa_slice(tmp_path)
    model = tmp_path / "pad.json"
    done = run(
        "train", "pad", "--root", str(NUAA), "--labels", str(labels), "--split", "train",
        "--out", str(model), "--no-minifasnet", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["research_only_data"] is True
    assert "NUAA" in done.stderr
    assert summary["rows_used_per_label"] == {"attack_print": 20, "live": 20}
    saved = load_pad_model(model)
    assert saved.training["split"] == "train"
    assert len(saved.training["labels_sha256"]) == 64
    out = tmp_path / "out"
    done = run(
        "eval", "pad", "--root", str(NUAA), "--labels", str(labels), "--out", str(out),
        "--model", "none", "--texture-model", str(model), "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["primary"] == "texture_model"
    assert report["fitted_models"]["texture_model"]["sha256"] == summary["sha256"]
    assert report["fitted_models"]["texture_model"]["warnings"] == [
        "the threshold is chosen on rows this model was trained on"
    ]
    assert 0.0 <= report["acer"] <= 1.0

"""One contract, run against every embedder: the fake, the tiny user ONNX model, shiren's ONNX
translations of dlib's ResNet and of MobileFaceNet (the shipped network), and dlib's own forward
pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shiren.core.similarity import similarity
from shiren.models.protocols import FaceEmbedder
from tests.conftest import lfw
from tests.support.tiny_onnx import write_manifest


def _fake(tmp: Path) -> Any:
    from shiren.models.fake import FakeEmbedder

    return FakeEmbedder(chip_size=150)


def _tiny(tmp: Path) -> Any:
    from shiren.models.manifest import load_user_manifest
    from shiren.models.registry import build_model

    extra = load_user_manifest(write_manifest(tmp, size=150))
    return build_model("tiny-embedder", extra=extra)


def _dlib_onnx(tmp: Path) -> Any:
    from shiren.models.registry import build_model

    return build_model("dlib-resnet-v1-onnx")


def _dlib_native(tmp: Path) -> Any:
    from shiren.models.registry import build_model

    return build_model("dlib-resnet-v1")


def _mobilefacenet(tmp: Path) -> Any:
    from shiren.models.registry import build_model

    return build_model("mobilefacenet-onnx")


FACTORIES: dict[str, Callable[[Path], Any]] = {
    "fake": _fake,
    "tiny-onnx": _tiny,
    "dlib-onnx": _dlib_onnx,
    "dlib-native": _dlib_native,
    "mobilefacenet-onnx": _mobilefacenet,
}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def embedder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return FACTORIES[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """Four real 150×150 chips, dlib-aligned and ArcFace-aligned: two images of one person, one
    of another, one blank grey."""
    import dlib
    import face_recognition_models as frm
    from PIL import Image

    from shiren.core.align import arcface_chip_from_dlib5

    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    dlib_chips, arcface_chips = [], []
    for name, idx in [("Abel_Pacheco", 1), ("Abel_Pacheco", 4), ("Dean_Barker", 1)]:
        img = np.asarray(Image.open(lfw(name, idx)).convert("RGB"))
        shape = predictor(img, dlib.rectangle(70, 70, 180, 180))
        dlib_chips.append(dlib.get_face_chip(img, shape, 150, 0.25))
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        arcface_chips.append(cv2.resize(arcface_chip_from_dlib5(img, points, 112), (150, 150)))
    dlib_chips.append(np.full((150, 150, 3), 128, dtype=np.uint8))
    arcface_chips.append(np.full((150, 150, 3), 128, dtype=np.uint8))
    return np.stack([np.stack(dlib_chips), np.stack(arcface_chips)])


def _aligned(embedder: Any, chips: np.ndarray) -> np.ndarray:
    """The chips in the embedder's own alignment convention (dlib's or ArcFace's)."""
    which = 1 if getattr(embedder, "alignment", "dlib") == "arcface" else 0
    return _fit(chips[which], embedder.chip_size)


def _fit(chips: np.ndarray, size: int) -> np.ndarray:
    if chips.shape[1] == size:
        return chips
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in chips])


def test_satisfies_protocol(embedder: Any) -> None:
    assert isinstance(embedder, FaceEmbedder)
    assert embedder.metric in {"cosine", "euclidean"}
    assert embedder.dim > 0
    assert embedder.chip_size > 0
    assert len(embedder.info.sha256) == 64


def test_shapes_and_dtype(embedder: Any, chips: np.ndarray) -> None:
    batch = _aligned(embedder, chips)
    out = embedder.embed(batch)
    assert out.shape == (len(batch), embedder.dim)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))


def test_empty_batch(embedder: Any) -> None:
    empty = np.zeros((0, embedder.chip_size, embedder.chip_size, 3), dtype=np.uint8)
    assert embedder.embed(empty).shape == (0, embedder.dim)


def test_deterministic_and_batch_independent(embedder: Any, chips: np.ndarray) -> None:
    batch = _aligned(embedder, chips)
    together = embedder.embed(batch)
    alone = np.stack([embedder.embed(c[None])[0] for c in batch])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    np.testing.assert_array_equal(embedder.embed(batch), embedder.embed(batch))


def test_identical_chips_are_most_similar(embedder: Any, chips: np.ndarray) -> None:
    out = embedder.embed(_aligned(embedder, chips))
    self_score = similarity(out[0], out[0], embedder.metric)
    assert self_score >= similarity(out[0], out[1], embedder.metric) - 1e-6
    assert self_score >= similarity(out[0], out[2], embedder.metric) - 1e-6


def test_real_models_tell_people_apart(embedder: Any, chips: np.ndarray) -> None:
    if embedder.info.version == "fake" or embedder.info.name == "tiny-embedder":
        pytest.skip("only trained models know identities")
    out = embedder.embed(_aligned(embedder, chips))
    same = similarity(out[0], out[1], embedder.metric)
    other = similarity(out[0], out[2], embedder.metric)
    assert same > other

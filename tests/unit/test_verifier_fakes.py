"""The pipeline around the models, on deterministic fakes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shiren.core.choice import choose_face
from shiren.core.geometry import BBox, Detection
from shiren.errors import ConfigError, ErrorCode, FaceError, ImageError
from shiren.models.fake import FakeAligner, FakeDetector, FakeEmbedder, FakeLandmarker
from shiren.reasons import ReasonCode
from shiren.verifier import Verifier, VerifierConfig


def _image(seed: int, size: int = 240) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, (12, 12, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC))


def _verifier(**config: object) -> Verifier:
    return Verifier(
        detector=FakeDetector(),
        landmarker=FakeLandmarker(fail=bool(config.pop("mesh_fails", False))),
        aligner=FakeAligner(),
        embedder=FakeEmbedder(),
        config=VerifierConfig(threshold=0.9, **config),  # type: ignore[arg-type]
    )


def test_analyze_runs_every_stage() -> None:
    analysis = _verifier().analyze(_image(1))
    assert analysis.template.shape == (64,)
    assert set(analysis.timings_ms) == {
        "decode",
        "detect",
        "mesh",
        "quality",
        "align",
        "embed",
        "total",
    }
    assert analysis.mesh is not None
    assert analysis.mesh.shape == (478, 3)


def test_same_image_matches_and_different_does_not() -> None:
    verifier = _verifier()
    same = verifier.compare(_image(1), _image(1))
    assert same.match
    assert same.similarity == pytest.approx(1.0, abs=1e-5)
    assert same.reasons[0] == ("pair", ReasonCode.MATCH_ABOVE_THRESHOLD)
    other = verifier.compare(_image(1), _image(2))
    assert not other.match
    assert other.reasons[0] == ("pair", ReasonCode.MATCH_BELOW_THRESHOLD)


def test_bytes_path_and_array_inputs_agree(tmp_path: object) -> None:
    img = _image(3)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    verifier = _verifier()
    from_array = verifier.template(img)
    from_bytes = verifier.template(buf.getvalue())
    np.testing.assert_allclose(from_array, from_bytes, atol=1e-5)


def test_non_image_bytes_are_a_typed_error() -> None:
    with pytest.raises(ImageError) as info:
        _verifier().analyze(b"definitely not an image")
    assert info.value.code == ErrorCode.IMAGE_UNSUPPORTED_FORMAT


def test_mesh_failure_falls_back_to_five_points() -> None:
    analysis = _verifier(mesh_fails=True).analyze(_image(4))
    assert analysis.mesh is None
    assert analysis.template.shape == (64,)


def test_unknown_views_are_refused() -> None:
    with pytest.raises(ConfigError):
        _verifier(views=("sideways",))


def _det(x0: float, y0: float, x1: float, y1: float) -> Detection:
    return Detection(box=BBox(x0, y0, x1, y1), score=0.9, keypoints=np.zeros((0, 2), np.float32))


def test_choose_face_policies() -> None:
    with pytest.raises(FaceError) as none:
        choose_face([], 100, 100, "largest_central")
    assert none.value.code == ErrorCode.FACE_NOT_FOUND
    central, corner = _det(40, 40, 60, 60), _det(0, 0, 22, 22)
    with pytest.raises(FaceError) as many:
        choose_face([central, corner], 100, 100, "single")
    assert many.value.code == ErrorCode.FACE_MULTIPLE
    assert choose_face([corner, central], 100, 100, "largest_central") is central
    big = _det(20, 20, 80, 80)
    assert choose_face([central, big], 100, 100, "largest_central") is big

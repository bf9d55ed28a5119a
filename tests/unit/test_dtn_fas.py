"""The registry's passive anti-spoofing network (issue 19): pinned inputs, a deterministic
translation equal to the TFLite runtime, the crop, and real faces ranked the right way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shiren.core.geometry import BBox
from shiren.errors import ErrorCode, ModelError
from shiren.models import dtn_fas, mobilefacenet, tflite_convert
from shiren.models.registry import default_model_dir
from tests.conftest import SHARED, require

HAVE_TARBALL = (mobilefacenet.npm_dir(default_model_dir()) / mobilefacenet.TARBALL).is_file()
needs_tarball = pytest.mark.skipif(
    not HAVE_TARBALL, reason="scripts/setup.sh packs the npm tarball"
)

# The TFLite runtime's own outputs (ai-edge-litert 2.3.0, XNNPACK, one thread) for the inputs
# below, recorded once: the ONNX translation must reproduce them.
LITERT_RANDOM = [0.90560985, 0.45391566, 1.0029824, 0.8911845, 0.9973207, 0.94473886, 0.9951901,
                 0.96966666]  # fmt: skip
LITERT_T1 = [1.0184766, 0.29374, 1.0004714, 0.1163057, 0.81709635, 0.14631696, 0.43632916,
             0.01357909]  # fmt: skip
LITERT_F1 = [1.0242244, 1.0030575, 1.0007486, 1.010539, 0.9930908, 0.9762624, 0.99848306,
             0.3985542]  # fmt: skip


@pytest.fixture(scope="module")
def model() -> Any:
    if not HAVE_TARBALL:
        pytest.skip("scripts/setup.sh packs the npm tarball")
    from shiren.models.registry import build_model

    return build_model(dtn_fas.NAME)


@pytest.fixture(scope="module")
def detector() -> Any:
    from shiren.models.registry import build_model

    return build_model("blazeface")


def test_a_missing_tarball_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        dtn_fas.read_tflite(tmp_path)
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "setup.sh" in str(err.value)
    assert err.value.detail["model"] == dtn_fas.NAME


def test_the_square_crop_grows_the_box_and_stays_inside_the_image() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 100:] = 255  # right half white: where the crop came from is visible in the patch
    centre = dtn_fas.square_crop(image, BBox(90, 40, 110, 60), 2.0, size=8)
    assert centre.shape == (8, 8, 3)
    assert centre[:, :3].max() == 0  # 80..120: both halves
    assert centre[:, -3:].min() == 255
    edge = dtn_fas.square_crop(image, BBox(180, 40, 200, 60), 2.0, size=8)
    assert edge.min() == 255  # shifted left to 160..200, still all white
    huge = dtn_fas.square_crop(image, BBox(0, 0, 200, 100), 3.0, size=8)
    assert huge.shape == (8, 8, 3)  # the side is cut to the image's shorter side (100 px)
    with pytest.raises(ModelError):
        dtn_fas.square_crop(np.zeros((10, 10), dtype=np.uint8), BBox(0, 0, 5, 5), 1.0)


@needs_tarball
def test_the_translation_is_deterministic_and_equals_the_tflite_runtime(tmp_path: Path) -> None:
    tflite = dtn_fas.read_tflite(default_model_dir())
    first = dtn_fas.convert(tflite, tmp_path / "a.onnx")
    second = dtn_fas.convert(tflite, tmp_path / "b.onnx")
    assert first == second == dtn_fas.ONNX_SHA256
    from shiren.models.onnx_embedder import make_session

    session = make_session(tmp_path / "a.onnx")
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    cls, mask = session.run(list(dtn_fas.OUTPUTS), {dtn_fas.INPUT_NAME: x})
    np.testing.assert_allclose(cls[0], LITERT_RANDOM, atol=1e-4)
    assert mask[0].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


@needs_tarball
def test_an_op_the_translator_does_not_know_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tflite = dtn_fas.read_tflite(default_model_dir())
    known = {k: v for k, v in tflite_convert._OPS.items() if k != "LEAKY_RELU"}
    monkeypatch.setattr(tflite_convert, "_OPS", known)
    with pytest.raises(ModelError) as err:
        tflite_convert.translate(tflite, producer="test")
    assert err.value.code is ErrorCode.MODEL_INVALID
    assert "LEAKY_RELU" in str(err.value)


def _sample(detector: Any, name: str) -> tuple[np.ndarray[Any, Any], BBox]:
    from shiren.core.image import load_image

    pixels = load_image(require(SHARED / "silent_face_samples" / name)).pixels
    return pixels, detector.detect(pixels)[0].box


def test_real_faces_equal_the_tflite_runtime_and_rank_live_above_attacks(
    model: Any, detector: Any
) -> None:
    """Silent-Face's phone photos (Apache-2.0): two live, a poster and a tablet replay."""
    t1 = _sample(detector, "image_T1.jpg")
    f1 = _sample(detector, "image_F1.jpg")
    for (image, box), expected in ((t1, LITERT_T1), (f1, LITERT_F1)):
        cls, mask = model.leaves(model.patch(image, box))
        np.testing.assert_allclose(cls, expected, atol=1e-4)
        assert mask.sum() == 1
    scores = {n: model.live_score(*_sample(detector, f"image_{n}.jpg")) for n in ("T1", "T2")}
    attacks = {n: model.live_score(*_sample(detector, f"image_{n}.jpg")) for n in ("F1", "F2")}
    assert min(scores.values()) > max(attacks.values()), (scores, attacks)
    assert all(0.0 <= s <= 1.0 for s in [*scores.values(), *attacks.values()])
    assert model.info.licence == "MIT"
    assert "SiW-M" in model.info.source

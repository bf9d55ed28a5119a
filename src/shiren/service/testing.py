"""Test-only service configurations, refused in production.

``SHIREN_TEST_PASSIVE_ONLY=1`` ("passive-only"): every liveness level requires only the passive
signal (MiniFASNet on the keyframes).  Why it exists: a real browser test feeds a *recorded*
video as the camera (Chromium's fake capture device), and a recording cannot answer a random
challenge nor reflect the screen's colour flash — so under the normal levels it fails, as it
must.  To prove the rest of the chain (consent, camera, guidance, the challenge UI, upload,
signed challenge + nonce + expiry + replay guard, decoding, the 1:1 match, the decision, the
result screen) with a live face, the test service drops every signal a recording cannot pass
and keeps the one it can.  The other signals are still computed (and logged in the check's
audit trail as not required).  This stops no replay or injected video: production refuses to
start with it (:func:`shiren.service.settings.check_production`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import LivenessConfig

if TYPE_CHECKING:
    from shiren.service.engine import Engine

PASSIVE_ONLY_SIGNALS = ("passive",)


def passive_only(config: LivenessConfig) -> LivenessConfig:
    """``config`` with every level requiring only the passive signal (thresholds unchanged)."""
    levels = {
        lv: replace(policy, required=PASSIVE_ONLY_SIGNALS) for lv, policy in config.levels.items()
    }
    return replace(config, levels=levels, source=f"{config.source} [TEST passive-only]")


def passive_only_engine(engine: Engine) -> Engine:
    """The same loaded models with a passive-only checker."""
    base = engine.checker
    checker = LivenessChecker(
        verifier=base.verifier,
        tracker=base.tracker,
        pad=base.pad,
        config=passive_only(base.config),
        key=base.key,
        replay_guard=base.replay_guard,
        recogniser=base.recogniser,
    )
    return replace(engine, checker=checker)


__all__ = ["PASSIVE_ONLY_SIGNALS", "passive_only", "passive_only_engine"]

"""The loaded models, and the challenge drawer.

Loading costs seconds (checksums verified, ONNX sessions built), so it happens once per process
— in :mod:`shiren.service.bootstrap` — and every request shares the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from shiren.liveness.challenge import Challenge, Variant, draw_challenge
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import Level, LivenessConfig, load_config
from shiren.liveness.readdigits_session import draw_read_digits_challenge
from shiren.models.speech import load_recogniser
from shiren.service.settings import Settings
from shiren.verifier import PROFILES, Verifier


class ChallengeDrawer(Protocol):
    """Draws an (unsigned) challenge for a level at a time, of a variant (live, motion-only,
    recorded); the service signs it.  Production uses the CSPRNG draw; tests inject one
    restricted to what their recording can answer."""

    def __call__(
        self, config: LivenessConfig, level: Level, now: float, variant: Variant = Variant.LIVE
    ) -> Challenge: ...


def random_challenge(
    config: LivenessConfig, level: Level, now: float, variant: Variant = Variant.LIVE
) -> Challenge:
    """The production drawer: :func:`draw_challenge` from the OS CSPRNG (a read-the-digits
    session's: :func:`~shiren.liveness.readdigits_session.draw_read_digits_challenge`)."""
    if variant is Variant.READ_DIGITS:
        return draw_read_digits_challenge(config, level, now=now)
    return draw_challenge(config, level, now=now, variant=variant)


@dataclass(frozen=True, slots=True)
class Engine:
    """The loaded models: the standard-profile verifier and a liveness checker sharing it."""

    verifier: Verifier
    checker: LivenessChecker

    @classmethod
    def load(cls, settings: Settings | None = None) -> Engine:
        """Load the real models once (checksums verified): the ``standard`` profile, or the
        network ``settings`` name (a lender's own, by manifest).  Without the PAD weights the
        levels that require the passive signal fail closed (``liveness.passive_unavailable``).
        ``settings.speech_recogniser``: a lender's recogniser for reading the digits aloud."""
        # a lender's speech recogniser first: a bad one fails the start before seconds of loading
        recogniser = (
            load_recogniser(settings.speech_recogniser)
            if settings is not None and settings.speech_recogniser
            else None
        )
        config = PROFILES["standard"].config()
        if settings is not None and (settings.embedder or settings.match_threshold is not None):
            config = replace(
                config,
                embedder=settings.embedder or config.embedder,
                model_manifest=Path(settings.model_manifest) if settings.model_manifest else None,
                threshold=settings.match_threshold,
            )
        verifier = Verifier.from_config(config)
        liveness = load_config()
        network = verifier.embedder.info.name
        if settings is not None and network not in liveness.identity.by_network:
            # a lender's own network: the keyframes of one session must score at least its
            # second-factor threshold (or its pass threshold): dlib's 0.92 means nothing there
            floor = settings.second_factor_threshold
            identity = replace(
                liveness.identity,
                by_network={
                    **liveness.identity.by_network,
                    network: verifier.threshold if floor is None else floor,
                },
            )
            liveness = replace(liveness, identity=identity)
        checker = LivenessChecker.from_config(liveness, verifier=verifier, parallel=True)
        checker.recogniser = recogniser
        return cls(verifier, checker)


__all__ = ["ChallengeDrawer", "Engine", "random_challenge"]

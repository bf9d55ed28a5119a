"""shiren (实人): self-hostable real-person verification — face quality, 1:1 match, liveness.

The public surface is this module's ``__all__`` (pinned by ``tests/unit/test_public_api.py``).
Importing it loads no model and reads no settings: models load when a :class:`Verifier` is built
(:meth:`Verifier.from_config`), or on the first call of :func:`compare`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shiren.errors import (
    ConfigError,
    ErrorCode,
    FaceError,
    FramesError,
    ImageError,
    InputError,
    ModelError,
    ServiceError,
    ShirenError,
    StateError,
)

if TYPE_CHECKING:
    from shiren.reasons import ReasonCode
    from shiren.verifier import FaceAnalysis, ImageInput, MatchResult, Verifier, VerifierConfig

__version__ = "0.1.0"

_LAZY = {
    "FaceAnalysis": "shiren.verifier",
    "MatchResult": "shiren.verifier",
    "ReasonCode": "shiren.reasons",
    "Verifier": "shiren.verifier",
    "VerifierConfig": "shiren.verifier",
}
_default: Verifier | None = None
_default_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shiren' has no attribute {name!r}")


def default_verifier() -> Verifier:
    """The process-wide :class:`Verifier` with default settings, built on first use."""
    global _default
    with _default_lock:
        if _default is None:
            from shiren.verifier import Verifier

            _default = Verifier.from_config()
        return _default


def compare(a: ImageInput, b: ImageInput) -> MatchResult:
    """1:1 verdict on two images (paths, bytes or RGB arrays) with the default verifier.

    Returns a :class:`MatchResult`: ``similarity`` (higher = more alike), ``threshold``, ``match``
    and ``reasons``.  Raises :class:`InputError` (``ImageError``/``FaceError``) when an image
    cannot be judged.
    """
    return default_verifier().compare(a, b)


__all__ = [
    "ConfigError",
    "ErrorCode",
    "FaceAnalysis",
    "FaceError",
    "FramesError",
    "ImageError",
    "InputError",
    "MatchResult",
    "ModelError",
    "ReasonCode",
    "ServiceError",
    "ShirenError",
    "StateError",
    "Verifier",
    "VerifierConfig",
    "__version__",
    "compare",
    "default_verifier",
]

"""The public surface is pinned, and importing shiren loads no model runtime."""

from __future__ import annotations

import subprocess
import sys

import shiren

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert shiren.__all__ == EXPECTED
    assert sorted(shiren.__all__) == shiren.__all__


def test_every_name_resolves() -> None:
    for name in shiren.__all__:
        assert getattr(shiren, name) is not None


def test_import_loads_no_model_runtime() -> None:
    code = (
        "import sys, shiren; heavy = {'mediapipe', 'dlib', 'onnxruntime', 'onnx', 'matplotlib'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

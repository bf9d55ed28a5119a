"""Speech-recogniser plug-ins for the tests of ``SHIREN_SPEECH_RECOGNISER`` (issue 18)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shiren.models.protocols import ModelInfo


class HearsNothing:
    """A recogniser that hears no digit (every read-the-digits answer: ``digits_mismatch``)."""

    info = ModelInfo(
        "test-hears-nothing", "1", "0" * 64, "CC0-1.0", "tests/support/speech_plugin.py", (0, 0)
    )

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def digits(self, audio: npt.NDArray[np.float32], rate: int, lang: str) -> str:
        self.calls.append((int(audio.size), lang))
        return ""


def make() -> HearsNothing:
    return HearsNothing()


def broken() -> HearsNothing:
    raise RuntimeError("the licence server is down")


def wrong() -> object:
    return object()


NOT_CALLABLE = 3


class Fails(HearsNothing):
    """A recogniser whose engine is down: it raises on every call."""

    def digits(self, audio: npt.NDArray[np.float32], rate: int, lang: str) -> str:
        self.calls.append((int(audio.size), lang))
        raise ConnectionError("the recognition server is down")


class AnswersNothing(HearsNothing):
    """A recogniser that breaks its contract: no text at all."""

    def digits(self, audio: npt.NDArray[np.float32], rate: int, lang: str) -> str:
        self.calls.append((int(audio.size), lang))
        return None  # type: ignore[return-value]

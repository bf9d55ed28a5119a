"""The Protocols every model adapter implements.  Thresholds never live in adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.core.similarity import Metric


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a loaded model is: enough to reproduce a result (goes into every report)."""

    name: str
    version: str
    sha256: str
    licence: str
    source: str
    input_size: tuple[int, int]
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in a whole image."""

    info: ModelInfo

    def detect(self, image: RGBImage) -> list[Detection]:
        """All faces found, best first; boxes in pixels of ``image`` (may extend past its edges)."""
        ...


@runtime_checkable
class FaceLandmarker(Protocol):
    """Dense landmarks (a face mesh) for one face whose box is known."""

    info: ModelInfo

    def landmarks(self, image: RGBImage, box: BBox) -> FloatArray | None:
        """``(N, 3)`` float32 points in pixels of ``image`` (N = 468 or 478), or None."""
        ...


@dataclass(frozen=True, slots=True)
class AlignedFace:
    """A face warped to the embedder's canonical crop, and the points it was aligned on."""

    chip: RGBImage
    """``(S, S, 3)`` uint8 RGB crop."""
    points: FloatArray
    """``(K, 2)`` the alignment points in pixels of the *source* image."""


@runtime_checkable
class FaceAligner(Protocol):
    """Warps one face to a canonical crop."""

    info: ModelInfo

    def align(self, image: RGBImage, box: BBox) -> AlignedFace:
        """Find the alignment points inside ``box`` and warp the face to the canonical crop."""
        ...

    def align_points(self, image: RGBImage, points: FloatArray) -> AlignedFace:
        """Warp the face to the canonical crop from 5 known points (dlib's 5-point order)."""
        ...


@runtime_checkable
class FaceEmbedder(Protocol):
    """Turns aligned face crops into identity templates.

    ``metric`` says how two templates are compared; :mod:`shiren.core.similarity` maps every
    metric to one score convention: higher = more alike.
    """

    info: ModelInfo
    dim: int
    chip_size: int
    metric: Metric

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        """``(N, S, S, 3)`` uint8 RGB crops → ``(N, dim)`` float32 templates (N may be 0)."""
        ...


@runtime_checkable
class PresentationAttackDetector(Protocol):
    """Passive (single-frame) presentation-attack detection for one face whose box is known."""

    info: ModelInfo

    def live_score(self, image: RGBImage, box: BBox) -> float:
        """Probability in [0, 1] that the face in ``box`` is bona fide (higher = more live)."""
        ...


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text found in an image, and how sure the recogniser is of it."""

    box: tuple[tuple[float, float], ...]
    """4 corner points in pixels of the image, clockwise from the text's top-left: ``box[0]`` to
    ``box[1]`` is the reading direction (for upside-down text, the image's bottom-right first)."""
    text: str
    confidence: float
    """Mean per-character probability, 0..1 (higher = surer)."""
    char_positions: tuple[float, ...] = ()
    """Where each character of ``text`` is centred along the line, as a fraction 0..1 of the
    way from the ``box[0]``–``box[3]`` edge to the ``box[1]``–``box[2]`` edge; empty when the
    recogniser does not say (then assume even spacing).  Lets a caller split a line at a known
    place, such as the end of a printed label, whatever the characters were read as."""


@runtime_checkable
class TextRecognizer(Protocol):
    """Finds and reads the lines of printed text in a whole image (OCR)."""

    info: ModelInfo

    def read(self, image: RGBImage) -> list[TextLine]:
        """Every line read in ``(H, W, 3)`` uint8 RGB ``image``, top to bottom, left to right."""
        ...


@runtime_checkable
class FaceTracker(Protocol):
    """Dense landmarks for one face followed through a video (state lives in one call)."""

    info: ModelInfo

    def track(self, images: Sequence[RGBImage]) -> list[FloatArray | None]:
        """One ``(N, 3)`` mesh in pixels per image (None where no face was found).

        Each call is one session: no state carries over from an earlier call.
        """
        ...


@runtime_checkable
class SpeechRecognizer(Protocol):
    """Spoken digits in a short recording (issue 18's optional recogniser for the read-the-digits
    challenge).  No implementation ships: no registry package carries an offline Chinese
    recogniser; a lender plugs one in (``SHIREN_SPEECH_RECOGNISER``, :mod:`shiren.models.speech`),
    and the challenge stands on its other signals without."""

    info: ModelInfo

    def digits(self, audio: npt.NDArray[np.float32], rate: int, lang: str) -> str:
        """The digits heard in mono float32 ``audio`` (``[-1, 1]``, ``rate`` Hz), in order, as a
        string of ``0``–``9`` (``""`` when none); ``lang`` is ``"zh-CN"`` or ``"en"``."""
        ...

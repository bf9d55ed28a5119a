"""PAD acquisition: image → face box → base model score and texture features, once per image.

Why once: every scorer (the base model, a texture model, a fused one, each fold of a cross-fit)
reads the same measurements, and decoding, detection and the base model dominate the cost; so each
distinct image is measured once and the scorers work on the :class:`Acquired` records.  An image
whose face cannot be acquired is recorded with the error code, never dropped: it is a failure to
acquire, which the metrics count (:data:`~shiren.eval.pad_metrics.FTA_SCORE`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox
from shiren.errors import ErrorCode, InputError
from shiren.liveness.texture import texture_features

if TYPE_CHECKING:
    from shiren.models.protocols import FaceDetector, PresentationAttackDetector

FloatArray = npt.NDArray[np.float64]
InputMode = Literal["frames", "crops"]


@dataclass(slots=True)
class Acquired:
    """What was measured on one image.  ``failure`` is the error code when the face could not be
    acquired (then ``box``, ``base_live`` and ``features`` are ``None`` and ``others`` empty).
    ``others`` holds the live scores of further PAD models measured beside the base model, by
    model name (``shiren eval pad --model A --model B``)."""

    path: str
    box: BBox | None = None
    base_live: float | None = None
    features: FloatArray | None = None
    failure: str | None = None
    others: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(slots=True)
class Timings:
    """Per-image wall times in milliseconds, by stage."""

    stages: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stages.setdefault(stage, []).append(1000.0 * seconds)

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {
            stage: {
                "n": len(ms),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p95_ms": round(float(np.percentile(ms, 95)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "mean_ms": round(float(np.mean(ms)), 3),
            }
            for stage, ms in sorted(self.stages.items())
            if ms
        }


def acquire(
    paths: Sequence[str],
    root: Path,
    *,
    input_mode: InputMode,
    detector: FaceDetector | None,
    base: PresentationAttackDetector | None,
    texture: bool,
    timings: Timings | None = None,
    progress: Callable[[int], object] | None = None,
    others: Mapping[str, PresentationAttackDetector] | None = None,
) -> dict[str, Acquired]:
    """Load every distinct image once, find its face and compute what the scorers need.

    ``others`` are further PAD models scored on the same face box (timed per model, as stage
    ``model:<name>``; the base model's stage is ``base_model``).

    ``input_mode="frames"``: the best face of ``detector`` (none → failure ``face.not_found``);
    ``"crops"``: the image is the face, the box is the whole image.  An unreadable image or a face
    the base detector refuses (an :class:`InputError`) is a failure to acquire with that error's
    code; a :class:`~shiren.errors.ServiceError` (a model broken) propagates.
    """
    from shiren.core.image import load_image

    if input_mode == "frames" and detector is None:
        raise ValueError("input_mode='frames' needs a face detector")
    out: dict[str, Acquired] = {}
    for rel in dict.fromkeys(paths):
        out[rel] = _acquire_one(
            rel, root, input_mode, detector, base, texture, timings, load_image, others or {}
        )
        if progress is not None:
            progress(1)
    return out


def _acquire_one(
    rel: str,
    root: Path,
    input_mode: InputMode,
    detector: FaceDetector | None,
    base: PresentationAttackDetector | None,
    texture: bool,
    timings: Timings | None,
    load: Callable[[Path], Any],
    others: Mapping[str, PresentationAttackDetector],
) -> Acquired:
    clock = timings or Timings()
    try:
        start = time.perf_counter()
        pixels = load(root / rel).pixels
        clock.add("decode", time.perf_counter() - start)
        if input_mode == "crops":
            box = BBox(0.0, 0.0, float(pixels.shape[1]), float(pixels.shape[0]))
        else:
            assert detector is not None
            start = time.perf_counter()
            found = detector.detect(pixels)
            clock.add("detect", time.perf_counter() - start)
            if not found:
                return Acquired(rel, failure=str(ErrorCode.FACE_NOT_FOUND))
            box = found[0].box
        item = Acquired(rel, box=box)
        if base is not None:
            start = time.perf_counter()
            item.base_live = float(base.live_score(pixels, box))
            clock.add("base_model", time.perf_counter() - start)
        for name, model in others.items():
            start = time.perf_counter()
            item.others[name] = float(model.live_score(pixels, box))
            clock.add(f"model:{name}", time.perf_counter() - start)
        if texture:
            start = time.perf_counter()
            item.features = texture_features(pixels, box)
            clock.add("texture_features", time.perf_counter() - start)
        return item
    except InputError as exc:
        return Acquired(rel, failure=str(exc.code))
    except FileNotFoundError:
        return Acquired(rel, failure=str(ErrorCode.INPUT_FILE_NOT_FOUND))


__all__ = ["Acquired", "InputMode", "Timings", "acquire"]

"""Cost of passive PAD models per face: percentiles over real faces, one thread (issue 19).

Each image is decoded and its face found once (not timed); then every model scores every face
``repeat`` times after ``warmup`` untimed calls, one model after the other, and the per-call
wall times are summarised as p50/p95/p99 (a benchmark, not a timed test: the numbers go into
docs/LIVENESS.md with the command that re-measures them).  Models are built with one
onnxruntime thread; pin the process to one core (``shiren bench pad --cores 1``) for "ms per face
on one core".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.geometry import BBox, RGBImage
from shiren.errors import ShirenError
from shiren.models.protocols import FaceDetector, PresentationAttackDetector


def summary_ms(values: Sequence[float]) -> dict[str, float | int]:
    """p50 / p95 / p99 / mean / max of ``values`` (milliseconds), rounded to µs."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    out: dict[str, float | int] = {"n": int(arr.size)}
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = round(float(np.percentile(arr, q)), 3)
    out["mean_ms"] = round(float(arr.mean()), 3)
    out["max_ms"] = round(float(arr.max()), 3)
    return out


def faces(detector: FaceDetector, paths: Sequence[Path]) -> list[tuple[RGBImage, BBox]]:
    """The best face of each image that has one (unreadable images and misses are skipped)."""
    from shiren.core.image import load_image

    found = []
    for path in paths:
        try:
            pixels = load_image(path).pixels
        except ShirenError:
            continue
        detections = detector.detect(pixels)
        if detections:
            found.append((pixels, detections[0].box))
    return found


def bench_pad(
    models: Mapping[str, PresentationAttackDetector],
    samples: Sequence[tuple[RGBImage, BBox]],
    *,
    repeat: int = 1,
    warmup: int = 3,
) -> dict[str, Any]:
    """Per-model ``live_score`` wall time per face: ``{name: summary_ms(...)}``."""
    report: dict[str, Any] = {}
    for name, model in models.items():
        for image, box in samples[:warmup]:
            model.live_score(image, box)
        times = []
        for _ in range(repeat):
            for image, box in samples:
                start = time.perf_counter()
                model.live_score(image, box)
                times.append(1000.0 * (time.perf_counter() - start))
        report[name] = summary_ms(times)
    return report


__all__ = ["bench_pad", "faces", "summary_ms"]

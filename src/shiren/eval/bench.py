"""Speed benchmark of the whole server-side check of one image, per stage, against a baseline.

The baseline is the dlib / face_recognition-style pipeline (PIL decode, HOG detector with one
upsampling, 5-point shape predictor, dlib's own ResNet forward pass), run in the same process on
the same images, so the ratio is fair whatever the machine.  Percentiles, never single timings.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shiren.errors import ShirenError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def list_images(root: Path, limit: int) -> list[Path]:
    """Up to ``limit`` images under ``root`` (recursive, sorted, spread evenly over the set)."""
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(found) <= limit:
        return found
    step = len(found) / limit
    return [found[int(i * step)] for i in range(limit)]


def pin_to_cores(cores: int) -> list[int]:
    """Restrict this process to its first ``cores`` CPUs (Linux); returns the CPUs used."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    available = sorted(os.sched_getaffinity(0))
    chosen = available[: max(1, cores)]
    os.sched_setaffinity(0, chosen)
    return chosen


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory of this process, in MiB."""
    current = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"rss_mb": round(current, 1), "peak_rss_mb": round(peak, 1)}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "n": 0}
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p95_ms": round(float(np.percentile(arr, 95)), 3),
        "n": int(arr.size),
    }


def bench_shiren(verifier: Any, paths: Sequence[Path], warmup: int = 3) -> dict[str, Any]:
    """Per-stage timings of ``verifier.analyze`` over ``paths`` (each image once, after warm-up)."""
    for path in paths[:warmup]:
        _try(verifier.analyze, path)
    stages: dict[str, list[float]] = {}
    failures = 0
    for path in paths:
        analysis = _try(verifier.analyze, path)
        if analysis is None:
            failures += 1
            continue
        for stage, ms in analysis.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {"stages": {k: percentiles(v) for k, v in stages.items()}, "failures": failures}


def bench_baseline(paths: Sequence[Path], warmup: int = 3) -> dict[str, Any]:
    """The face_recognition-style pipeline on the same images: decode, HOG, 5 points, ResNet."""
    import dlib
    import face_recognition_models as frm
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def run(path: Path) -> bool:
        img = np.asarray(Image.open(path).convert("RGB"))
        boxes = detector(img, 1)
        if not boxes:
            return False
        shape = predictor(img, boxes[0])
        net.compute_face_descriptor(img, shape, 1)
        return True

    for path in paths[:warmup]:
        run(path)
    times: list[float] = []
    for path in paths:
        start = time.perf_counter()
        run(path)
        times.append((time.perf_counter() - start) * 1000.0)
    return percentiles(times)


def _try(action: Callable[[Path], Any], path: Path) -> Any:
    try:
        return action(path)
    except ShirenError:
        return None

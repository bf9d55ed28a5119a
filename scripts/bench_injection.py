"""Cost of the injection check per capture, on one core: p50 / p95 of the whole check and of each
part, on sessions of every kind built as ``shiren eval injection`` builds them.

    .venv/bin/python scripts/bench_injection.py --recordings 3 --sessions 2 --repeat 3

What is timed is :func:`shiren.liveness.injection.measure_injection` plus :func:`judge` as the
service calls them, given the ``FaceSignals`` the liveness check already computed (the mesh
tracking is the liveness check's cost, not this one's, and is excluded).  One thread: OpenCV's
and the BLAS pools are pinned to 1 before they load, so the figure is a per-core cost.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--recordings", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here.")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    from shiren.eval.injection_eval import session_seed
    from shiren.eval.injection_material import (
        DEFAULT_TRACES,
        default_specs,
        load_recording,
        load_traces,
        traces_for_fold,
    )
    from shiren.eval.injection_sessions import KINDS, VARIANTS, Bench, build, frames_for_flash
    from shiren.eval.injection_sim import DEFAULT_SIM
    from shiren.eval.suite_material import SuiteParams
    from shiren.liveness.config import Level, load_config
    from shiren.liveness.injection import judge, measure_injection
    from shiren.liveness.injection_config import DEFAULT_INJECTION_THRESHOLDS as TH
    from shiren.liveness.signals import face_signals
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    config = load_config()
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    recs = [
        load_recording(s, tracker, config.frames) for s in default_specs(args.data, args.recordings)
    ]
    traces, _ = load_traces(DEFAULT_TRACES)
    bench = Bench(
        config, Level.NORMAL, traces_for_fold(traces, 0), DEFAULT_SIM, SuiteParams(), time.time()
    )
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    frames_seen: list[int] = []
    for r_idx, rec in enumerate(recs):
        for kind in KINDS:
            for i in range(args.sessions):
                built = build(
                    kind,
                    rec,
                    bench,
                    session_seed(0, kind, r_idx, i),
                    VARIANTS[kind][i % len(VARIANTS[kind])],
                )
                n = frames_for_flash(built, TH.flash.search_max_ms)
                meshes = tracker.track([f.image for f in built.frames.frames[:n]])
                padded = [*meshes, *([None] * (len(built.frames) - len(meshes)))]
                signals = face_signals(padded, built.frames.times_ms, built.frames.size)
                frames_seen.append(len(built.frames))
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    feats = measure_injection(
                        built.challenge, built.frames, signals=signals, upload=built.upload
                    )
                    judge(feats, TH)
                    totals.append((time.perf_counter() - t0) * 1000.0)
                    for k, v in feats.timings_ms.items():
                        parts.setdefault(k, []).append(v)
    out = {
        "captures": len(frames_seen),
        "frames_median": statistics.median(frames_seen),
        "frame_size": list(recs[0].source.images[0].shape[:2]),
        "runs": len(totals),
        "total_ms": {"p50": _pct(totals, 50), "p95": _pct(totals, 95)},
        "parts_ms": {k: {"p50": _pct(v, 50), "p95": _pct(v, 95)} for k, v in parts.items()},
        "threads": 1,
    }
    print(json.dumps(out, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()

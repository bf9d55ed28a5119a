"""Re-measure the numbers quoted in docs/LIVENESS.md, docs/LOAD.md and data/liveness.toml that do
not come from `shiren eval liveness` / `shiren bench-liveness`:

* ``capture``: CPU cost of one 8-frame step-up capture (decode + liveness + 1:1 analyze), one
  thread — run it pinned: ``taskset -c 0 .venv/bin/python scripts/measure_liveness_margins.py
  capture``;
* ``colour-null``: how often two independent random colour sequences correlate above a threshold
  (the chance that an injected video reflecting some other sequence passes the colour signal);
* ``planar``: the plane + parallax residual of a still webcam frame warped as a tilted plane
  (a photo) — what the 0.02 threshold must stay above.

Needs ``../shared/data`` (or ``SHIREN_SHARED_DATA``) and, for ``capture``, the MiniFASNet folder
(``SHIREN_MINIFASNET_DIR``).  Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from shiren.liveness.challenge import PALETTE, draw_challenge, parse_challenge
from shiren.liveness.config import Level, load_config
from shiren.liveness.flash import chromaticity
from shiren.liveness.frames import from_encoded, load_frames

SHARED = Path(
    os.environ.get("SHIREN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
VIDEO = SHARED / "zubair_liveness_videos" / "real.mov"


def capture(repeat: int, parallel: bool = False) -> dict[str, object]:
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.memo import CaptureMemo, live_template
    from shiren.verifier import Verifier

    cv2.setNumThreads(1)
    cfg = load_config()
    seq = load_frames(VIDEO, cfg.frames)
    blobs = []
    for i in range(84, 114, 4):  # 8 frames of a head turn, 640×360 JPEG as a page uploads them
        small = cv2.resize(seq.frames[i].image, (640, 360), interpolation=cv2.INTER_AREA)
        _, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        blobs.append(buf.tobytes())
    times = [k * 250.0 for k in range(len(blobs))]
    challenge = parse_challenge(
        {
            "nonce": "a" * 32,
            "level": "normal",
            "issued_at": 0,
            "expires_at": 1e12,
            "lead_in_ms": 500,
            "actions": [{"action": "turn_right", "start_ms": 500, "end_ms": 1750}],
            "colours": [
                {"rgb": [255, 0, 0], "start_ms": 0, "end_ms": 250},
                {"rgb": [0, 255, 0], "start_ms": 250, "end_ms": 500},
            ],
        }
    )
    verifier = Verifier.from_config()
    checker = LivenessChecker.from_config(cfg, verifier=verifier, parallel=parallel)
    # "match": the service's path (the 1:1 template from the check's memo); "match_full": the
    # whole single-image pipeline on the same frame, as before the memo (for the ratio).
    from shiren.service.matching import FaceMatcher, still_frames

    matcher = FaceMatcher(verifier)
    # "match_multi" (issue 14): the service's probe, fused from up to 3 still frames
    spent: dict[str, list[float]] = {
        "decode": [],
        "liveness": [],
        "match": [],
        "match_full": [],
        "match_multi": [],
    }
    stages: list[dict[str, float]] = []
    agreement: list[float] = []
    for k in range(repeat + 5):
        t = time.perf_counter()
        frames = from_encoded(blobs, times, cfg.frames)
        t1 = time.perf_counter()
        memo = CaptureMemo()
        result = checker.check(challenge, frames, now=1.0, memo=memo)
        t2 = time.perf_counter()
        index = 1  # a still lead-in frame
        fast = live_template(verifier, frames.frames[index].image, index, memo)
        t3 = time.perf_counter()
        full = verifier.analyze(frames.frames[index].image).template
        t4 = time.perf_counter()
        matcher.probe(verifier, frames, still_frames(frames, 500.0), memo)
        t5 = time.perf_counter()
        if k >= 5:  # warm-up
            spent["decode"].append(t1 - t)
            spent["liveness"].append(t2 - t1)
            spent["match"].append(t3 - t2)
            spent["match_full"].append(t4 - t3)
            spent["match_multi"].append(t5 - t4)
            stages.append(result.timings_ms)
            assert fast is not None
            agreement.append(verifier.score(fast, full))
    p50 = {k: round(float(np.median(v)) * 1000, 1) for k, v in spent.items()}
    return {
        "p50_ms": p50,
        "total_p50_ms": round(p50["decode"] + p50["liveness"] + p50["match"], 1),
        "total_p50_ms_without_memo": round(p50["decode"] + p50["liveness"] + p50["match_full"], 1),
        "total_p50_ms_multi_frame": round(p50["decode"] + p50["liveness"] + p50["match_multi"], 1),
        "memo_vs_full_template_similarity_min": round(min(agreement), 5),
        "liveness_stages_p50_ms": {
            k: round(float(np.median([s.get(k, 0.0) for s in stages])), 1) for k in stages[-1]
        },
    }


def colour_null(pairs: int) -> dict[str, object]:
    cfg = load_config()
    out: dict[str, object] = {}
    for n in (6, 8, 10):
        policy = replace(cfg.levels[Level.NORMAL], colours=n)
        c2 = replace(cfg, levels={**cfg.levels, Level.NORMAL: policy})
        vecs = []
        for seed in range(2 * pairs):
            ch = draw_challenge(c2, "normal", seed=seed, now=0)
            e = chromaticity(np.array([PALETTE[s.name] for s in ch.colours], float) + 8.0)
            vecs.append((e - e.mean(axis=0)).ravel())
        a = np.array(vecs)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        corr = (a[0::2] * a[1::2]).sum(axis=1)
        out[f"{n}_colours"] = {
            str(th): round(float((corr >= th).mean()), 5) for th in (0.6, 0.7, 0.75, 0.8)
        }
    return out


def _plane(w: int, h: int, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Homography of a plane 600 px away rotated about its centre (pinhole, f = width)."""
    f, d = float(w), 600.0
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    r = ry @ rx
    t = (np.eye(3) - r) @ np.array([0, 0, d])
    return np.asarray(k @ (r + np.outer(t, [0, 0, 1.0]) / d) @ np.linalg.inv(k))


def planar() -> dict[str, object]:
    from shiren.liveness.parallax import planarity_residual
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    cfg = load_config()
    photo = load_frames(VIDEO, cfg.frames).frames[0].image
    h, w = photo.shape[:2]
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    out = {}
    for end, step, pitch in ((45, 5, 0.2), (60, 5, 0.0), (-60, -10, 0.2), (40, 10, 0.5)):
        seq = [
            cv2.warpPerspective(
                photo, _plane(w, h, d, d * pitch), (w, h), borderMode=cv2.BORDER_REPLICATE
            )
            for d in range(0, end + step, step)
        ]
        meshes = tracker.track(seq)
        got = None
        if meshes[0] is not None and meshes[-1] is not None:
            got = planarity_residual(seq, meshes[0], meshes[-1])
        out[f"0..{end} step {step}, pitch×{pitch}"] = None if got is None else round(got[0], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["capture", "colour-null", "planar"])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="capture: run the 3-D motion signal on a second thread, as the service does "
        "(then pin two cores: taskset -c 0,1)",
    )
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    if args.what == "capture":
        result = capture(args.repeat, args.parallel)
    elif args.what == "colour-null":
        result = colour_null(args.pairs)
    else:
        result = planar()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

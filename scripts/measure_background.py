"""Measure the batch-registration background descriptor (shiren.fraud.background).

* unrelated photos: every LFW View 2 image against every image of *other* people (news photos:
  different places, but press-conference backdrops recur) → the rate of pairs at or above the
  policy threshold, i.e. how often two honest enrolments would look "same background";
* same place: frames of the live recording (real.mov) against each other, and against the
  replay video (fake.mp4: the same room, a phone held up) → the rate at or above it.

Usage: .venv/bin/python scripts/measure_background.py [--threshold 0.92]   (prints JSON)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from shiren.fraud.background import descriptor
from shiren.fraud.policy import load_fraud_policy
from shiren.liveness.config import load_config
from shiren.liveness.frames import load_frames

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of a with every row of b (NaN cells dropped: the same
    cells are masked in every descriptor of one image size)."""
    keep = ~np.isnan(a[0])
    x, y = a[:, keep], b[:, keep]
    x = (x - x.mean(1, keepdims=True)) / np.linalg.norm(x - x.mean(1, keepdims=True), axis=1)[
        :, None
    ]
    y = (y - y.mean(1, keepdims=True)) / np.linalg.norm(y - y.mean(1, keepdims=True), axis=1)[
        :, None
    ]
    return x @ y.T


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=load_fraud_policy().background_threshold)
    t = ap.parse_args().threshold
    lfw = sorted((SHARED / "lfw_view2" / "lfw-deepfunneled").rglob("*.jpg"))
    people = np.array([p.parent.name for p in lfw])
    d = np.stack([descriptor(np.asarray(Image.open(p).convert("RGB"))) for p in lfw])
    sims = _corr(d, d)
    other = people[:, None] != people[None, :]
    upper = np.triu(np.ones_like(other), 1).astype(bool)
    diff = sims[other & upper]
    same = sims[~other & upper]
    frames = load_frames(SHARED / "zubair_liveness_videos" / "real.mov", load_config().frames)
    fake = load_frames(SHARED / "zubair_liveness_videos" / "fake.mp4", load_config().frames)
    live = np.stack([descriptor(f.image) for f in frames.frames])
    replay = np.stack([descriptor(f.image) for f in fake.frames])
    ll = _corr(live, live)[np.triu(np.ones((len(live), len(live))), 1).astype(bool)]
    lr = _corr(live, replay).ravel()
    out = {
        "threshold": t,
        "lfw_different_people": {
            "pairs": int(diff.size),
            "at_or_above": int((diff >= t).sum()),
            "rate": float((diff >= t).mean()),
            "p99": float(np.percentile(diff, 99)),
            "p999": float(np.percentile(diff, 99.9)),
        },
        "lfw_same_person": {"pairs": int(same.size), "rate": float((same >= t).mean())},
        "live_recording_frames": {
            "pairs": int(ll.size),
            "rate": float((ll >= t).mean()),
            "p1": float(np.percentile(ll, 1)),
        },
        "live_vs_replay_video_same_room": {
            "pairs": int(lr.size),
            "rate": float((lr >= t).mean()),
            "median": float(np.median(lr)),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

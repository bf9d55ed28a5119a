"""Server-side cost of one read-the-digits check (issue 18): a 6-digit session, one core.

A genuine session re-timed from a GRID clip (``shiren.eval.readdigits_material``) is encoded as a
browser would upload it (WebM: VP8 + Opus, 360x288 or ``--width``, 25 fps) and checked
``--repeat`` times after a warm-up with :meth:`ReadDigitsChecker.check` (decode, mesh, onsets,
synchrony, identity, passive).
Run it with one thread: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_readdigits.py``.
Per stage: wall-clock p50/p95 (the check's own timings); ``cpu``: the process's CPU time per
check (on a shared, loaded machine the wall clock also counts the time other jobs held the core).
``chips``: each check's CPU time in units of one face embedding (one chip through the shipped
embedder, the median of five timed on the same core right after the check): a yardstick that
moves with the machine, so that runs on machines of different speed, or at different load,
compare (the ≤ 150-ms goal was set where a chip took ≈ 7 ms: ≈ 21 chips).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid_talking_faces"


def _webm(frames: list[np.ndarray], audio: np.ndarray) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        vs = out.add_stream("libvpx", rate=25)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        aus = out.add_stream("libopus", rate=48000)
        aus.layout = "mono"
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        pcm = (np.clip(np.repeat(audio, 3), -1, 1) * 32767).astype(np.int16)
        for k in range(0, len(pcm), 960):
            af = av.AudioFrame.from_ndarray(pcm[None, k : k + 960], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return buf.getvalue()


def _chip_timer(embedder: Any) -> Callable[[int], list[float]]:
    """A function that times ``n`` chips through ``embedder`` (CPU ms each): the yardstick."""
    size = int(embedder.chip_size)
    chip = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    embed = embedder.embed
    embed(chip)

    def timed(n: int) -> list[float]:
        out = []
        for _ in range(n):
            start = time.process_time()
            embed(chip)
            out.append((time.process_time() - start) * 1000.0)
        return out

    return timed


def main() -> int:
    from shiren.eval.readdigits_material import genuine, load_clip
    from shiren.liveness.audio import AVLimits
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.readdigits import Schedule, draw_read_digits
    from shiren.liveness.readdigits_check import ReadDigitsChecker, ReadDigitsConfig

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clip", type=Path, default=DEFAULT / "P10_pwij3p.mpg")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--pad-model", default="auto")
    ap.add_argument(
        "--sample-ms", type=float, default=None, help="RGB frames (and meshes) every so many ms"
    )
    ap.add_argument(
        "--width",
        type=int,
        default=None,
        help="encode the video this wide (the clip's frames scaled, even height): a phone's "
        "recording is larger than GRID's 360x288, and decoding grows with its pixels",
    )
    args = ap.parse_args()
    clip = load_clip(args.clip)
    ch = draw_read_digits(lang="en", seed=1, now=0.0, schedule=Schedule(digits=(6, 6)))
    session, order = genuine(clip, ch, random.Random(1), AVLimits(sample_ms=40.0))
    frames = [clip.frames[i] for i in order]
    if args.width:
        import cv2

        h, w = frames[0].shape[:2]
        size = (args.width // 2 * 2, round(h * args.width / w / 2) * 2)
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]
    data = _webm(frames, session.capture.audio)
    config = ReadDigitsConfig()
    if args.sample_ms is not None:
        config = replace(config, limits=replace(config.limits, sample_ms=args.sample_ms))
    live = LivenessChecker.from_config(pad_model=args.pad_model or None)
    checker = ReadDigitsChecker(live, config=config)
    checker.check(ch, data, now=1.0)  # warm-up
    runs, cpu = [], []
    chips = _chip_timer(live.verifier.embedder)
    ratios = []
    for _ in range(args.repeat):
        start = time.process_time()
        runs.append(checker.check(ch, data, now=1.0).timings_ms)
        cpu.append((time.process_time() - start) * 1000.0)
        # the yardstick right after each check, on the same core: the machine's speed then
        ratios.append(cpu[-1] / float(np.median(chips(5))))
    stages = sorted(
        {k for r in runs for k in r}, key=lambda k: -np.median([r.get(k, 0) for r in runs])
    )
    print(
        f"6 digits, {ch.duration_ms} ms, {frames[0].shape[1]}x{frames[0].shape[0]} "
        f"{len(data) / 1024:.0f} KiB WebM, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, repeat {args.repeat}, "
        f"RGB frames every {checker.config.limits.sample_ms:.0f} ms, "
        f"brightness every {getattr(checker.config.limits, 'luma_ms', None)} ms"
    )
    # CPU time of the process (one thread, one core): what a busy shared machine inflates least
    c50, c95 = np.percentile(cpu, [50, 95])
    print(f"  {'cpu':10s} p50 {c50:7.1f} ms  p95 {c95:7.1f} ms")
    r50, r95 = np.percentile(ratios, [50, 95])
    print(f"  {'chips':10s} p50 {r50:7.1f}     p95 {r95:7.1f}     (check CPU / one chip's)")
    for k in stages:
        v = [r.get(k, 0.0) for r in runs]
        print(f"  {k:10s} p50 {np.percentile(v, 50):7.1f} ms  p95 {np.percentile(v, 95):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How large the colour flash's measured response is when the flash is weak or absent (issue 17's
light ladder): the evidence behind ``[colour] unseen_swing`` in liveness.toml.

Live sessions of the annotated webcam recording answer fresh ``normal`` challenges (the
liveness suite's live timeline, as ``shiren eval liveness`` builds them) with the flash's
reflection rendered at several strengths — 0 (direct sun: nothing visible), 1–3 % (a dim screen
in bright light), 5 % and 8 % (the suite's default, an indoor phone screen) — then JPEG-coded at
the page's quality.  For each strength it prints the colour signal's best correlation and its
chromaticity swing (min / median / max over the sessions) and how the shipped rule reads them:
pass, ``unseen`` (inconclusive: the level's ``without_flash`` rule applies) or mismatch (an
attack cue).  A recording reflecting the *wrong* colours is an attack whatever its strength; it
is not simulated here (``shiren eval liveness`` has it).

    .venv/bin/python scripts/measure_flash_unseen.py [--sessions 12] [--video PATH]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from shiren.eval.liveness_eval import load_source
from shiren.eval.liveness_suite import DEFAULT_PARAMS, build_live
from shiren.eval.suite_annotation import DEFAULT_ANNOTATION, load_annotation
from shiren.liveness.config import load_config
from shiren.liveness.flash import check_colour
from shiren.liveness.frames import load_frames
from shiren.liveness.signals import face_signals
from shiren.models.mediapipe_face import MediapipeMeshTracker
from shiren.models.registry import get_entry
from shiren.reasons import ReasonCode

VIDEO = Path(__file__).resolve().parents[2] / "shared/data/zubair_liveness_videos/real.mov"
GAINS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--video", type=Path, default=VIDEO)
    args = parser.parse_args()
    config = load_config()
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    source = load_source(
        load_frames(args.video, config.frames), tracker, load_annotation(DEFAULT_ANNOTATION)
    )
    th = config.colour
    print(f"unseen_swing = {th.unseen_swing}, pass_correlation = {th.pass_correlation}")
    print("gain   corr min/med/max        swing min/med/max          pass unseen mismatch")
    for gain in GAINS:
        params = replace(DEFAULT_PARAMS, colour_gain=gain)
        corrs, swings, verdicts = [], [], {"pass": 0, "unseen": 0, "mismatch": 0}
        for seed in range(args.sessions):
            challenge, frames = build_live(source, config, seed=seed * 101, params=params)
            meshes = tracker.track([f.image for f in frames.frames])
            signals = face_signals(meshes, frames.times_ms, frames.size)
            out = check_colour(challenge, frames, signals, th)
            corrs.append(out.score if out.score is not None else np.nan)
            swings.append(out.swing)
            if out.passed:
                verdicts["pass"] += 1
            elif out.reason is ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE:
                verdicts["unseen"] += 1
            else:
                verdicts["mismatch"] += 1
        c, s = np.asarray(corrs), np.asarray(swings)
        print(
            f"{gain:4.2f}   {np.nanmin(c):5.2f} {np.nanmedian(c):5.2f} {np.nanmax(c):5.2f}"
            f"      {s.min():.4f} {np.median(s):.4f} {s.max():.4f}"
            f"      {verdicts['pass']:4d} {verdicts['unseen']:6d} {verdicts['mismatch']:8d}"
        )


if __name__ == "__main__":
    main()

"""NUAA's official test rows as the liveness check's passive signal sees them (issue 19).

Only frontal, well-exposed faces are judged (issue 17's rule,
:func:`shiren.liveness.keyframes.judgeable`); the others are asked for better light or a frontal
face, neither accepted nor called a spoof.

``shiren eval pad`` judges every face, so on NUAA's test session (many overexposed frames) its
BPCER counts faces the service would never judge.  For every test row this script finds the
largest face (the verifier's detector, FaceMesh for the head pose), applies ``judgeable`` and
scores the face with each ``--model`` at its ``--threshold`` (default: the model's ``normal``
threshold from liveness.toml, or a number), then prints per model and class the share asked and
APCER / BPCER among the judged faces, with exact 95 % intervals.  No threshold is fitted here.
About 25 ms per row plus the models (``dtn-fas`` adds ~2 minutes)::

    .venv/bin/python scripts/measure_pad_judged.py --model human-antispoof --model dtn-fas \\
        --model minifasnet
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared/data/nuaa_pad")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--threshold", action="append", type=float, help="one per --model")
    args = parser.parse_args(argv)

    from shiren.core.image import load_image
    from shiren.core.pose import head_pose
    from shiren.eval.intervals import clopper_pearson
    from shiren.liveness.config import load_config
    from shiren.liveness.keyframes import judgeable
    from shiren.models.registry import build_model, build_passive_model
    from shiren.service.bootstrap import build_verifier

    config = load_config()
    pads = [build_passive_model(name) for name in args.model]
    thresholds = args.threshold or [
        config.passive_threshold("normal", pad.info.name) for pad in pads
    ]
    verifier = build_verifier("standard")
    mesher = build_model("face-mesh-attention")
    with (args.root / "labels.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["official_nuaa_split"] == args.split]
    counts = {(m, c): [0, 0, 0] for m in args.model for c in ("live", "attack")}  # n, asked, errors
    for row in rows:
        rgb = load_image(args.root / row["path"]).pixels
        dets = verifier.detector.detect(rgb)
        box = max(dets, key=lambda d: d.box.area).box if dets else None
        mesh = mesher.landmarks(rgb, box) if box is not None else None
        if box is None or mesh is None:
            continue
        pose = head_pose(mesh, (rgb.shape[1], rgb.shape[0]))
        judged = judgeable(rgb, box, pose.yaw_deg, pose.pitch_deg) is None
        live = row["is_live"] == "1"
        for name, pad, threshold in zip(args.model, pads, thresholds, strict=True):
            tally = counts[(name, "live" if live else "attack")]
            tally[0] += 1
            tally[1] += int(not judged)
            if judged:
                accepted = pad.live_score(rgb, box) >= threshold
                tally[2] += int(accepted != live)
    print(f"{len(rows)} {args.split} rows of {args.root}; only judgeable faces are judged")
    for name, threshold in zip(args.model, thresholds, strict=True):
        for cls, rate in (("live", "BPCER"), ("attack", "APCER")):
            n, asked, errors = counts[(name, cls)]
            low, high = clopper_pearson(errors, n - asked) if n > asked else (0.0, 1.0)
            print(f"{name:16} thr {threshold:.3f} {cls:6} faces {n:4}  asked {asked:4}  "
                  f"{rate} {errors}/{n - asked} [{100 * low:.1f}, {100 * high:.1f} %]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

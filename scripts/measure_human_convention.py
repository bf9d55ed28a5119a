"""Find the input convention and score direction of the two ``@vladmandic/human`` anti-spoofing
classifiers on NUAA (issue 19).

For every NUAA row of ``--split`` (default: the official train rows, never the reported test
rows), the face is found with BlazeFace and cut out as a square of ``scale`` × the box's longer
side (:func:`shiren.models.dtn_fas.square_crop`); each variant (model × crop scale × channel order
× pixel range) is fed to the network once and the AUC live-vs-attack of the raw output column is
printed, with that of its complement (an AUC far below 0.5 means the output is higher for
attacks).  The result is the table in :mod:`shiren.models.human_fas`' docstring.  About 2 ms per
row and variant on one core (BlazeFace dominates: ~1 minute for the default)::

    .venv/bin/python scripts/measure_human_convention.py --root ../shared/data/nuaa_pad
    .venv/bin/python scripts/measure_human_convention.py --root /tmp/pad_sets/webcam --split train
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = (
    "human-antispoof,0.7,RGB,1",
    "human-antispoof,0.8,RGB,1",
    "human-antispoof,1.0,RGB,1",
    "human-antispoof,1.2,RGB,1",
    "human-antispoof,1.4,RGB,1",
    "human-antispoof,0.8,BGR,1",
    "human-antispoof,0.8,RGB,255",
    "human-liveness,0.6,BGR,1",
    "human-liveness,0.8,BGR,1",
    "human-liveness,1.0,BGR,1",
    "human-liveness,0.6,RGB,1",
    "human-liveness,0.6,BGR,255",
)


def auc(live: list[float], attack: list[float]) -> float:
    """P(live score > attack score), ties counting half (higher = more live)."""
    if not live or not attack:
        return float("nan")
    a, b = np.asarray(live)[:, None], np.asarray(attack)[None, :]
    return float(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared/data/nuaa_pad")
    parser.add_argument("--split", default="train")
    parser.add_argument("--every", type=int, default=1, help="Use every n-th row (quick looks).")
    parser.add_argument("--variant", action="append", help="model,scale,RGB|BGR,range (1 or 255)")
    args = parser.parse_args(argv)

    from shiren.core.image import load_image
    from shiren.models import human_fas
    from shiren.models.registry import build_model, default_model_dir

    variants = []
    for text in args.variant or DEFAULT_VARIANTS:
        name, scale, channels, value_range = text.split(",")
        base = human_fas.onnx_entry(name, default_model_dir())
        opts = {**base.options, "scale": float(scale), "channel_order": channels,
                "input_range": float(value_range), "invert": False}  # fmt: skip
        variants.append((text, human_fas.HumanAntiSpoof(replace(base, options=opts))))
    detector = build_model("blazeface")
    with (args.root / "labels.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh)
                if r.get("official_nuaa_split", r.get("split")) == args.split]  # fmt: skip
    rows = rows[:: max(args.every, 1)]
    scores: dict[str, list[tuple[int, float]]] = {v: [] for v, _ in variants}
    for row in rows:
        image = load_image(args.root / row["path"]).pixels
        found = detector.detect(image)
        if not found:
            continue
        for text, model in variants:
            out = model.outputs(model.patch(image, found[0].box)[None])[0]
            scores[text].append((int(row["is_live"]), float(out[model._index])))
    print(f"{len(rows)} {args.split} rows of {args.root}; AUC live-vs-attack (higher = better)")
    print(f"{'model,scale,channels,range':32} {'output':>8} {'1 - output':>11} {'output sd':>10}")
    for text, pairs in scores.items():
        live = [s for y, s in pairs if y]
        attack = [s for y, s in pairs if not y]
        value = auc(live, attack)
        spread = float(np.std([s for _, s in pairs])) if pairs else float("nan")
        print(f"{text:32} {value:8.3f} {1.0 - value:11.3f} {spread:10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Find the DTN anti-spoofing model's input convention and score rule on NUAA (issue 19).

For every NUAA row of ``--split`` (default: the official train rows, never the reported test
rows), the face is found with BlazeFace and cut out as a square of ``scale`` × the box's longer
side (:func:`shiren.models.dtn_fas.square_crop`); each variant (crop scale × channel order ×
pixel range) is fed to the network once, and two scores are compared by their AUC live-vs-attack:
upstream's routed leaf (``Σ |clss_pred| · leaf_node_mask``) and the mean over the eight leaves.
The result is the table in :mod:`shiren.models.dtn_fas`' docstring.  About 0.1 s per row and
variant on one core (the default, 7 variants × 908 rows: ~11 minutes)::

    .venv/bin/python scripts/measure_dtn_convention.py --root ../shared/data/nuaa_pad
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = (
    "0.7,RGB,1",
    "0.8,RGB,1",
    "0.9,RGB,1",
    "1.0,RGB,1",
    "1.5,RGB,1",
    "0.9,BGR,1",
    "0.9,RGB,255",
)


def auc(live: list[float], attack: list[float]) -> float:
    """P(live score > attack score), ties counting half (higher = more live)."""
    a, b = np.asarray(live)[:, None], np.asarray(attack)[None, :]
    return float(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared/data/nuaa_pad")
    parser.add_argument("--split", default="train")
    parser.add_argument("--every", type=int, default=1, help="Use every n-th row (quick looks).")
    parser.add_argument("--variant", action="append", help="scale,RGB|BGR,range (1 or 255)")
    parser.add_argument("--json", type=Path, help="Also write the per-row scores here.")
    args = parser.parse_args(argv)

    from shiren.core.image import load_image
    from shiren.models import dtn_fas
    from shiren.models.registry import build_model, default_model_dir

    base = dtn_fas.onnx_entry(default_model_dir())
    variants = []
    for text in args.variant or DEFAULT_VARIANTS:
        scale, channels, value_range = text.split(",")
        opts = {"scale": float(scale), "channel_order": channels, "input_range": float(value_range)}
        variants.append((text, dtn_fas.DtnAntiSpoof(replace(base, options=opts))))
    detector = build_model("blazeface")
    with (args.root / "labels.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["official_nuaa_split"] == args.split]
    rows = rows[:: max(args.every, 1)]
    scores: dict[str, dict[str, list[tuple[int, float]]]] = {
        v: {"routed": [], "leaf_mean": []} for v, _ in variants
    }
    for row in rows:
        image = load_image(args.root / row["path"]).pixels
        found = detector.detect(image)
        if not found:
            continue
        for name, model in variants:
            cls, mask = model.leaves(model.patch(image, found[0].box))
            live = int(row["is_live"])
            scores[name]["routed"].append((live, 1.0 - float(np.sum(np.abs(cls) * mask))))
            scores[name]["leaf_mean"].append((live, 1.0 - float(np.mean(np.abs(cls)))))
    print(f"{len(rows)} {args.split} rows; AUC live-vs-attack (higher = better)")
    print(f"{'scale,channels,range':24} {'routed leaf':>12} {'mean of 8 leaves':>18}")
    for name, by_rule in scores.items():
        cells = []
        for rule in ("routed", "leaf_mean"):
            pairs = by_rule[rule]
            cells.append(auc([s for y, s in pairs if y], [s for y, s in pairs if not y]))
        print(f"{name:24} {cells[0]:12.4f} {cells[1]:18.4f}")
    if args.json:
        args.json.write_text(json.dumps(scores), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

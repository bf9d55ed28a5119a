"""The card step's framing guidance on rendered cards (issue 16): what set its blur threshold.

Renders fictional cards (fronts and backs, distortion levels ``none`` and ``moderate``), shrinks
each photo to the page's 640 px, blurs it by σ = 0, 1.5, 2 and 3 px, and prints per photo the
card's share of the frame, the Laplacian variance the guide measures over the card, the guide's
codes and its time.  ``GUIDE_BLUR_MIN_VAR`` (60) sits between the sharp photos and σ = 1.5.

    .venv/bin/python scripts/measure_card_guide.py [--cards 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from shiren.eval.idcard_content import draw_person
from shiren.eval.idcard_photo import photograph
from shiren.eval.idcard_render import CardPainter, print_portrait
from shiren.eval.idcard_synth import find_cjk_font
from shiren.idcard import locate
from shiren.idcard.guide import guide

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "casia_facev5_subset"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=6)
    args = parser.parse_args()
    paint = CardPainter(find_cjk_font())
    face_path = next(iter(sorted(FACES.rglob("*.jpg"))), None)
    face = (
        None if face_path is None else np.ascontiguousarray(cv2.imread(str(face_path))[..., ::-1])
    )
    for level in ("none", "moderate"):
        for seed in range(args.cards):
            rng = np.random.default_rng(seed)
            person = draw_person(rng, invalid_share=0.0, today=date.today())
            if seed % 2 == 0:
                flat = paint.front(person, print_portrait(face, rng), rng)
            else:
                flat = paint.back(person, rng)
            jpeg = photograph(flat, level, rng).jpeg
            pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            scale = 640 / max(pixels.shape[:2])
            small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            row = []
            for sigma in (0.0, 1.5, 2.0, 3.0):
                frame = np.ascontiguousarray(
                    small if sigma == 0 else cv2.GaussianBlur(small, (0, 0), sigma)
                )
                found = locate.outlines(frame)
                var = None
                if found:
                    inner = locate.inside(frame, found[0].corners, shrink=0.1)
                    gray = cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY)
                    var = round(float(cv2.Laplacian(gray, cv2.CV_64F).var()))
                start = time.perf_counter()
                codes = guide(frame)
                ms = (time.perf_counter() - start) * 1000
                share = round(found[0].area_fraction, 2) if found else None
                row.append(f"σ={sigma}: area {share} var {var} {list(codes)} {ms:.1f} ms")
            print(level, seed, " | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

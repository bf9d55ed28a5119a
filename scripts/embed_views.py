"""Embed every image of a data set once per network and per alignment view (for the identity study).

Writes ``OUT.npz`` with, per image (relative path), the embeddings of both networks in every view
(``mesh``, ``mesh-flip``, ``5pt``, ``5pt-flip``), so that any profile, fusion or multi-image
protocol can be scored afterwards without running the models again.  Detection, mesh and the dlib
5-point regressor run once per image.  Usage::

    .venv/bin/python scripts/embed_views.py --images DIR --list LIST --out OUT.npz [--shard i/n]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shiren.core.choice import choose_face
from shiren.errors import ShirenError
from shiren.verifier import VIEWS, Verifier, VerifierConfig

EMBEDDERS = ("dlib-resnet-v1-onnx", "mobilefacenet-onnx")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--list", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shard", default="0/1")
    args = ap.parse_args()
    k, n = (int(x) for x in args.shard.split("/"))
    paths = [p for p in args.list.read_text().split("\n") if p.strip()][k::n]
    verifiers = {
        e: Verifier.from_config(VerifierConfig(embedder=e, views=VIEWS, threshold=0.5))
        for e in EMBEDDERS
    }
    base = verifiers[EMBEDDERS[0]]
    rows: dict[str, list[np.ndarray]] = {e: [] for e in EMBEDDERS}
    kept: list[str] = []
    failed: list[str] = []
    for rel in paths:
        try:
            px = base.decode(args.images / rel)
            faces = base.detector.detect(px)
            face = choose_face(faces, px.shape[1], px.shape[0], "largest_central")
            mesh = base.landmarker.landmarks(px, face.box) if base.landmarker else None
        except ShirenError:
            failed.append(rel)
            continue
        for e, v in verifiers.items():
            rows[e].append(v.embedder.embed(v._chips(px, face, mesh)))
        kept.append(rel)
    np.savez(
        args.out,
        paths=np.array(kept),
        failed=np.array(failed),
        **{e: np.stack(r) if r else np.zeros((0, 4, 1)) for e, r in rows.items()},
    )
    print(f"{len(kept)} embedded, {len(failed)} failed → {args.out}")


if __name__ == "__main__":
    main()

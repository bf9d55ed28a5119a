"""Embedding N chips in one run against one run per chip, on one core (``OnnxEmbedder``'s
``batch`` option).

On this machine a batch cost more per chip than single runs for MobileFaceNet, which is why the
adapter runs one chip at a time unless a manifest entry sets ``batch``.  The templates must not
change (checked here to 1e-4).  Run with one thread::

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python scripts/bench_embedder_batch.py --repeat 20
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main() -> int:
    from shiren.models.onnx_embedder import OnnxEmbedder
    from shiren.verifier import PROFILES, Verifier

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--profile", default="standard")
    args = ap.parse_args()
    embedder = Verifier.from_config(PROFILES[args.profile].config()).embedder
    if not isinstance(embedder, OnnxEmbedder):
        print(f"{embedder.info.name} is not an ONNX embedder: nothing to compare")
        return 0
    size = embedder.chip_size
    rng = np.random.default_rng(0)
    print(f"{embedder.info.name}, {size} px chips, CPU time per call (p50 / p95 ms)")
    for n in (1, 2, 4, 6):
        chips = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        rows = {}
        for label, batch in (("batched", n), ("one by one", 1)):
            embedder.batch = batch
            first = embedder.embed(chips)
            cpu = []
            for _ in range(args.repeat):
                start = time.process_time()
                embedder.embed(chips)
                cpu.append((time.process_time() - start) * 1000.0)
            rows[label] = (first, np.percentile(cpu, [50, 95]))
        (a, ca), (b, cb) = rows["batched"], rows["one by one"]
        same = float(np.abs(a - b).max())
        print(
            f"  {n} chips: batched {ca[0]:6.1f} / {ca[1]:6.1f}   one by one {cb[0]:6.1f} / "
            f"{cb[1]:6.1f}   ratio {cb[0] / ca[0]:.2f}   max |Δ| {same:.1e}"
        )
        if same > 1e-4:
            print("  templates differ", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

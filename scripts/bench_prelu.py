"""MiniFASNet with its PReLUs spelled out (``shiren.models.onnx_graph``) against the plain graph.

One face of a GRID frame (a fixed box around it), scored by the two-member ensemble
(``live_score``: crops, resizing and both members), the two ways alternated ``--rounds`` times in
one process, ``--repeat`` timed scores each; CPU ms p50 per way, and whether the scores are equal.
Run it on one core: ``OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python scripts/bench_prelu.py``
(MiniFASNet must be configured: ``SHIREN_MINIFASNET_DIR`` or its translations in the model cache).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid_talking_faces"


def main() -> int:
    import av

    from shiren.core.geometry import BBox
    from shiren.models.minifasnet import MiniFasNetEnsemble
    from shiren.models.onnx_embedder import make_session
    from shiren.models.registry import build_model, get_entry

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clip", type=Path, default=DEFAULT / "P10_pwij3p.mpg")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    ensemble = build_model("minifasnet")
    assert isinstance(ensemble, MiniFasNetEnsemble)
    with av.open(str(args.clip)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    box = BBox(120, 60, 250, 220)  # the face in GRID's 360x288 frames
    spelled = [m._session for m in ensemble.members]
    plain = [make_session(Path(get_entry(m.info.name).file)) for m in ensemble.members]
    times: dict[str, list[float]] = {"spelled out": [], "plain PRelu": []}
    scores: dict[str, float] = {}
    for _ in range(args.rounds):
        for way, sessions in (("spelled out", spelled), ("plain PRelu", plain)):
            for member, session in zip(ensemble.members, sessions, strict=True):
                member._session = session
            scores[way] = ensemble.live_score(image, box)  # warm
            for _ in range(args.repeat):
                start = time.process_time()
                ensemble.live_score(image, box)
                times[way].append((time.process_time() - start) * 1000.0)
    for way, values in times.items():
        print(f"{way:12s} CPU p50 {np.percentile(values, 50):6.2f} ms  score {scores[way]:.6f}")
    print(f"same score: {len(set(scores.values())) == 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Survey the capture-quality metrics on a set of images, to justify ``data/quality.toml``.

For every image: detect (BlazeFace full-range), take the highest-scoring face, run the mesh, run
:func:`shiren.core.quality.assess_quality` with the default thresholds, and collect its metrics.
Prints each metric's distribution (n, min, p1, p5, p25, p50, p75, p95, p99, max) and the rate of
each reason, plus the files behind every reason (``--show``).

    .venv/bin/python scripts/quality_survey.py '/work/shared/data/lfw_view2/lfw-deepfunneled/*/*_0001.jpg' \
        --limit 400 --show 5
    .venv/bin/python scripts/quality_survey.py /work/shared/data/nuaa_pad/ClientRaw --every 4
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from shiren.core.choice import choose_face
from shiren.core.image import load_image
from shiren.core.quality import QualityConfig, assess_quality, no_face_report
from shiren.models.manifest import builtin_manifest
from shiren.models.mediapipe_face import MediapipeDetector, MediapipeMesh

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)


def _paths(patterns: list[str], every: int, limit: int | None) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        else:
            found += sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    found = found[::every]
    return found[:limit] if limit else found


def _survey(paths: list[Path], config: QualityConfig) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    detector = MediapipeDetector(builtin_manifest()["blazeface-full-range"])
    mesher = MediapipeMesh(builtin_manifest()["face-mesh-attention"])
    metrics: dict[str, list[float]] = defaultdict(list)
    by_reason: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        pixels = load_image(path).pixels
        faces = detector.detect(pixels)
        if faces:
            face = choose_face(faces, pixels.shape[1], pixels.shape[0], "largest_central")
            mesh = mesher.landmarks(pixels, face.box)
            report = assess_quality(pixels, face, mesh, all_faces=faces, config=config)
        else:
            report = no_face_report(pixels, config)
        for key, value in report.metrics.items():
            metrics[key].append(value)
        for reason in report.reasons:
            by_reason[str(reason)].append(str(path))
        if report.passed:
            by_reason["(passed)"].append(str(path))
    return metrics, by_reason


def _print(metrics: dict[str, list[float]], by_reason: dict[str, list[str]], total: int, show: int) -> None:
    print(f"images: {total}")
    header = "metric".ljust(28) + "n".rjust(5) + "".join(f"p{p}".rjust(9) for p in _PERCENTILES)
    print(header)
    for key in sorted(metrics):
        values = np.asarray(metrics[key], dtype=np.float64)
        cells = "".join(f"{v:9.3f}" for v in np.percentile(values, _PERCENTILES))
        print(key.ljust(28) + str(values.size).rjust(5) + cells)
    print("\nreason rates:")
    for reason, files in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"  {reason:32s} {len(files):5d}  {100.0 * len(files) / max(total, 1):6.2f} %")
        for name in files[:show] if reason != "(passed)" else []:
            print(f"      {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    parser.add_argument("--every", type=int, default=1, help="keep every n-th file (after sorting)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    parser.add_argument("--show", type=int, default=0, help="list this many files per reason")
    parser.add_argument("--config", type=Path, default=None, help="a JSON object of overrides")
    parser.add_argument("--json", type=Path, default=None, help="write raw metrics and reasons here")
    args = parser.parse_args(argv)
    overrides = json.loads(args.config.read_text()) if args.config else {}
    config = QualityConfig.from_mapping(overrides)
    paths = _paths(args.images, max(1, args.every), args.limit)
    if not paths:
        print("no images matched", file=sys.stderr)
        return 2
    metrics, by_reason = _survey(paths, config)
    _print(metrics, by_reason, len(paths), args.show)
    if args.json:
        args.json.write_text(json.dumps({"metrics": metrics, "reasons": by_reason}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Passive false rejects of real people by lighting condition (issue 17), before and after the
rule that the passive model judges only frontal, well-exposed faces.

Live frames only (BPCER): NUAA's client photos (the test split; many sessions, several lighting
conditions), GRID's 11 talking-face clips (every 10th frame; 10 consenting speakers) and the
webcam video ``real.mov`` (every 6th frame).  For each frame: the detector's largest face, its
mesh (FaceMesh in image mode, one frame at a time) and head pose, the face's median luma (the
inner 60 % of the box, as :func:`shiren.liveness.keyframes.judgeable` measures it), and the live
score of the passive model in use (``auto``: MiniFASNet when configured, else dtn-fas) against
the ``normal`` level's threshold for that model.

Per lighting bucket of the face's luma (dark < 35, dim 35–70, even 70–180, bright 180–225,
washed out > 225) and per source it prints: frames with a face, the share rejected as a spoof
when every face is judged (the old rule), the share asked for better light / to face the camera
(the new rule: :func:`judgeable`), and the share rejected among the faces judged (the new rule's
BPCER), each with its exact 95 % interval; and the worst person.  Frames with no face found are
counted apart: the passive model never judged those (the capture asks for the face first).

    .venv/bin/python scripts/measure_passive_light.py [--nuaa 600] [--out report.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.core.pose import head_pose
from shiren.eval.intervals import clopper_pearson
from shiren.liveness.config import load_config
from shiren.liveness.keyframes import face_luma, judgeable
from shiren.models.registry import build_model, build_passive_model
from shiren.service.bootstrap import build_verifier

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MESH_MODEL = "face-mesh-attention"
BUCKETS = (
    (0, 35, "dark"),
    (35, 70, "dim"),
    (70, 180, "even"),
    (180, 225, "bright"),
    (225, 256, "washed out"),
)


def frames(nuaa: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """(source, person, RGB frame) of live people."""
    with (SHARED / "nuaa_pad" / "labels.csv").open() as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["is_live"] == "1" and r["official_nuaa_split"] == "test"
        ]
    step = max(1, len(rows) // nuaa) if nuaa else len(rows) + 1
    for row in rows[::step][:nuaa]:
        image = cv2.imread(str(SHARED / "nuaa_pad" / row["path"]))
        if image is not None:
            yield "nuaa", f"nuaa-{row['subject']}", np.ascontiguousarray(image[..., ::-1])
    clips = sorted((SHARED / "grid_talking_faces").glob("*.mpg"))
    for clip, every in [(c, 10) for c in clips] + [
        (SHARED / "zubair_liveness_videos" / "real.mov", 6)
    ]:
        source = "webcam" if clip.suffix == ".mov" else "grid"
        person = clip.stem.split("_")[0] if source == "grid" else "webcam"
        cap = cv2.VideoCapture(str(clip))
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                yield source, person, np.ascontiguousarray(bgr[..., ::-1])
            i += 1
        cap.release()


def bucket(luma: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= luma < hi)


Tally = dict[tuple[str, str], dict[str, int]]


def measure(
    nuaa: int, verifier: Any, mesher: Any, pad: Any, threshold: float
) -> tuple[Tally, dict[str, dict[str, int]]]:
    """Count, per (source, light bucket) and per person, the old and the new rule's outcomes."""
    tally: Tally = defaultdict(lambda: defaultdict(int))
    people: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n, (source, person, rgb) in enumerate(frames(nuaa)):
        dets = verifier.detector.detect(rgb)
        box = max(dets, key=lambda d: d.box.area).box if dets else None
        mesh = mesher.landmarks(rgb, box) if box is not None else None
        if box is None or mesh is None:
            tally[(source, "no face")]["frames"] += 1
            continue
        pose = head_pose(mesh, (rgb.shape[1], rgb.shape[0]))
        luma = face_luma(rgb, box) or 0.0
        rejected = pad.live_score(rgb, box) < threshold
        why = judgeable(rgb, box, pose.yaw_deg, pose.pitch_deg)
        light = bucket(luma)
        for key in ((source, light), ("all", light), (source, "all"), ("all", "all")):
            _count(tally[key], rejected, why is None)
        _count(people[person], rejected, why is None)
        if n % 100 == 0:
            print(f"  {n} frames…", file=sys.stderr)
    return tally, people


def _count(t: dict[str, int], rejected: bool, judged: bool) -> None:
    t["frames"] += 1
    t["old_rejects"] += int(rejected)
    t["asked"] += int(not judged)
    t["judged"] += int(judged)
    t["new_rejects"] += int(judged and rejected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nuaa", type=int, default=600, help="NUAA live test photos (spread)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--model", default="auto", help="auto (the service's choice), dtn-fas, …")
    args = parser.parse_args()
    verifier = build_verifier("standard")
    mesher = build_model(MESH_MODEL)
    pad = build_passive_model(args.model)
    threshold = load_config().passive_threshold("normal", pad.info.name)
    tally, people = measure(args.nuaa, verifier, mesher, pad, threshold)
    report: dict[str, object] = {"model": pad.info.name, "threshold": threshold, "rows": []}
    print(f"passive model {pad.info.name}, normal threshold {threshold}")
    print(
        f"{'source':8} {'light':11} {'faces':>6} {'old BPCER':>18} {'asked':>7} {'new BPCER':>18}"
    )
    for (source, light), t in sorted(tally.items()):
        if light == "no face":
            print(f"{source:8} {'no face':11} {t['frames']:>6}")
            continue
        old = clopper_pearson(t["old_rejects"], t["frames"])
        new = clopper_pearson(t["new_rejects"], max(t["judged"], 1))
        row = {
            "source": source,
            "light": light,
            "faces": t["frames"],
            "old_bpcer": t["old_rejects"] / t["frames"],
            "old_ci": old,
            "asked_share": t["asked"] / t["frames"],
            "judged": t["judged"],
            "new_bpcer": t["new_rejects"] / max(t["judged"], 1),
            "new_ci": new,
        }
        report["rows"].append(row)  # type: ignore[union-attr]
        print(
            f"{source:8} {light:11} {t['frames']:>6} "
            f"{row['old_bpcer']:>7.1%} ({old[0]:.1%}–{old[1]:.1%}) {row['asked_share']:>6.1%} "
            f"{row['new_bpcer']:>7.1%} ({new[0]:.1%}–{new[1]:.1%})"
        )
    worst_old = max(people.items(), key=lambda kv: kv[1]["old_rejects"] / kv[1]["frames"])
    worst_new = max(people.items(), key=lambda kv: kv[1]["new_rejects"] / max(kv[1]["judged"], 1))
    for label, (name, p) in (("old", worst_old), ("new", worst_new)):
        rate = p[f"{label}_rejects"] / max(p["frames"] if label == "old" else p["judged"], 1)
        print(f"worst person ({label} rule): {name} {rate:.1%}")
        report[f"worst_{label}"] = {"person": name, "bpcer": rate}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the shared videos' frames as PAD evaluation sets for ``shiren eval pad`` (issue 19).

Two sets, each a folder of lossless PNG frames with a ``labels.csv`` in the layout
:mod:`shiren.eval.pad_labels` reads (``path,label,is_live,subject,split``):

``webcam``  ``zubair_liveness_videos``: ``real.mov`` (one man at a webcam: every 3rd frame, live)
            and ``fake.mp4`` (the same man holding a phone that replays him).  In ``fake.mp4`` the
            detector's best face is the live man beside the phone in frames 0–23 (live rows) and
            the face on the phone's screen in frames 25–93 (``attack_replay`` rows, every 2nd
            frame, kept only while that face is the small one: box narrower than 15 % of the
            frame); from frame 94 on the phone is tilted and swung, the detections flicker
            between the screen, the man and non-faces, so those frames are left out (rules set by
            looking at the frames; the script applies them with BlazeFace, nothing is
            hand-labelled per frame).  ``split``: the first half of each clip's kept frames
            ``train``, the rest ``test``.
``grid``    ``grid_talking_faces``: 11 clips of 10 consenting speakers (CC BY 4.0), every 5th
            frame, all live (BPCER only).  ``split`` by person: P08–P12 ``train``, P13–P17 ``test``.

Frames are resized to ``--width`` (default 640, what the capture page uploads) with area
interpolation; ``--width 0`` keeps them whole.  The frames are real people's faces: write them to a
temporary folder, never into the repository.  Usage::

    .venv/bin/python scripts/pad_video_frames.py --out /tmp/pad_sets
    shiren eval pad --root /tmp/pad_sets/webcam --model dtn-fas --model minifasnet --out …
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PHONE_FACE_MAX_WIDTH = 0.15
"""In fake.mp4 the phone's face is 75–110 px of a 960-px frame (8–11 %), the man's 140–190 px."""


def _resize(image: np.ndarray, width: int) -> np.ndarray:
    if width <= 0 or image.shape[1] == width:
        return image
    height = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _frames(path: Path) -> list[np.ndarray]:
    from shiren.liveness.config import load_config
    from shiren.liveness.frames import load_frames

    return [f.image for f in load_frames(path, load_config().frames).frames]


def _write(out: Path, rel: str, image: np.ndarray) -> None:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), image[..., ::-1]):
        raise OSError(f"cannot write {target}")


def _halves(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The first half of a clip's rows ``train``, the rest ``test`` (one person: subject set)."""
    for i, row in enumerate(rows):
        row["split"] = "train" if i < (len(rows) + 1) // 2 else "test"
        row["subject"] = "zubair"
    return rows


def webcam(out: Path, width: int) -> list[dict[str, str]]:
    from shiren.models.registry import build_model

    detector = build_model("blazeface")
    folder = SHARED / "zubair_liveness_videos"
    frames = _frames(folder / "real.mov")
    real = []
    for i in range(0, len(frames), 3):
        real.append({"path": f"real/{i:04d}.png", "label": "live", "is_live": "1"})
        _write(out, real[-1]["path"], _resize(frames[i], width))
    live_beside, phone = [], []
    for i, image in enumerate(_frames(folder / "fake.mp4")):
        found = detector.detect(image)
        if not found or i >= 94:
            continue
        share = found[0].box.width / image.shape[1]
        if i <= 23 and share >= PHONE_FACE_MAX_WIDTH:
            row = {"path": f"fake/{i:04d}.png", "label": "live", "is_live": "1"}
            live_beside.append(row)
        elif i >= 25 and i % 2 == 1 and share < PHONE_FACE_MAX_WIDTH:
            row = {"path": f"fake/{i:04d}.png", "label": "attack_replay", "is_live": "0"}
            phone.append(row)
        else:
            continue
        _write(out, row["path"], _resize(image, width))
    return _halves(real) + _halves(live_beside) + _halves(phone)


def grid(out: Path, width: int) -> list[dict[str, str]]:
    rows = []
    for clip in sorted((SHARED / "grid_talking_faces").glob("*.mpg")):
        person = clip.name[:3]
        split = "train" if person <= "P12" else "test"
        for i, image in enumerate(_frames(clip)):
            if i % 5:
                continue
            rel = f"{clip.stem}/{i:04d}.png"
            _write(out, rel, _resize(image, width))
            rows.append(
                {"path": rel, "label": "live", "is_live": "1", "subject": person, "split": split}
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for the two sets.")
    parser.add_argument("--width", type=int, default=640, help="Frame width (0 = as recorded).")
    args = parser.parse_args(argv)
    grid_width = args.width if args.width <= 360 else 0  # GRID is 360 px wide: never upscale
    for name, build, width in (("webcam", webcam, args.width), ("grid", grid, grid_width)):
        folder = args.out / name
        rows = build(folder, width)
        with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "label", "is_live", "subject", "split"])
            writer.writeheader()
            writer.writerows(rows)
        counts = {(r["label"], r["split"]) for r in rows}
        summary = {f"{lab}/{sp}": sum(1 for r in rows if (r["label"], r["split"]) == (lab, sp))
                   for lab, sp in sorted(counts)}  # fmt: skip
        print(f"{name}: {len(rows)} frames {summary} → {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

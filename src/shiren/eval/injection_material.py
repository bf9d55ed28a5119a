"""The material of ``shiren eval injection``: real recordings with their meshes, real timer traces.

* ``zubair_liveness_videos/real.mov`` — the hand-annotated webcam video (one man): its live
  sessions answer challenges with real actions (the liveness suite's live timeline);
* ``grid_talking_faces/*.mpg`` — ten more people (CC BY 4.0) reading a sentence to a fixed
  camera, 3 s each: no head turns, so their sessions do not answer actions (the injection
  features do not read them);
* ``annotations/page_timing_chromium.json`` — ``t_ms`` lists of the capture page's timer in real
  headless Chromium (``scripts/measure_page_timing.py``).  Traces are split between the folds
  like the people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiren.eval.injection_sessions import Recording
from shiren.eval.injection_sim import page_draw
from shiren.eval.liveness_eval import sha256_of
from shiren.eval.suite_annotation import (
    ANNOTATION_DIR,
    DEFAULT_ANNOTATION,
    Annotation,
    Stretch,
    load_annotation,
    suite_error,
)
from shiren.eval.suite_material import SourceVideo
from shiren.liveness.config import FrameLimits
from shiren.liveness.frames import load_frames
from shiren.models.protocols import FaceTracker

DEFAULT_TRACES = ANNOTATION_DIR / "page_timing_chromium.json"
CAMERA_WIDTH = 640
"""Recordings wider than this are scaled down once, at load: the simulated camera delivers what
the page draws (a 640-px camera), which keeps every session's work at the page's size."""
WEBCAM = Path("zubair_liveness_videos") / "real.mov"
GRID = Path("grid_talking_faces")


@dataclass(frozen=True, slots=True)
class RecordingSpec:
    path: Path
    person: str
    annotation: Path | None


def default_specs(data: Path, limit: int | None = None) -> list[RecordingSpec]:
    """The annotated webcam video, then the talking-face clips (sorted); ``limit`` keeps the
    first ``limit`` of them (the webcam video first)."""
    specs: list[RecordingSpec] = []
    if (data / WEBCAM).is_file():
        specs.append(RecordingSpec(data / WEBCAM, "zubair", DEFAULT_ANNOTATION))
    for clip in sorted((data / GRID).glob("*.mpg")):
        specs.append(RecordingSpec(clip, clip.name.split("_", 1)[0], None))
    if not specs:
        raise suite_error("no recordings found", data=str(data))
    return specs if limit is None else specs[:limit]


def _talking_annotation(times: tuple[float, ...], sha: str, path: Path) -> Annotation:
    """A clip without hand annotation: one neutral stretch, no events."""
    whole = Stretch(0, len(times) - 1, times[0], times[-1])
    return Annotation(times, (), (whole,), (), sha, f"{path} (not annotated)")


def load_recording(spec: RecordingSpec, tracker: FaceTracker, limits: FrameLimits) -> Recording:
    """Decode, hash, scale to at most :data:`CAMERA_WIDTH` px wide and track one recording."""
    sha = sha256_of(spec.path)
    frames = load_frames(spec.path, limits)
    times = tuple(frames.times_ms)
    if spec.annotation is not None:
        annotation = load_annotation(spec.annotation)
        if annotation.video_sha256 is not None and annotation.video_sha256 != sha:
            raise suite_error("the annotation describes a different video", video=str(spec.path))
    else:
        annotation = _talking_annotation(times, sha, spec.path)
    images = [page_draw(f.image, CAMERA_WIDTH) for f in frames.frames]
    source = SourceVideo(
        images=tuple(images),
        times_ms=times,
        meshes=tuple(tracker.track(images)),
        annotation=annotation,
    )
    return Recording(
        name=spec.path.stem if spec.annotation is None else f"{spec.person}_{spec.path.stem}",
        person=spec.person,
        source=source,
        annotated=spec.annotation is not None,
        sha256=sha,
        path=str(spec.path),
    )


def load_traces(path: Path = DEFAULT_TRACES) -> tuple[list[list[float]], dict[str, Any]]:
    """The timer traces and their record (without the traces themselves)."""
    try:
        raw = json.loads(Path(path).read_text("utf-8"))
        traces = [[float(t) for t in trace] for trace in raw["traces"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise suite_error(f"the timer traces cannot be read: {exc!s}", path=str(path)) from None
    if len(traces) < 2 or any(len(t) < 8 for t in traces):
        raise suite_error("need at least two timer traces of ≥ 8 frames", path=str(path))
    meta = {k: v for k, v in raw.items() if k != "traces"}
    return traces, meta


def traces_for_fold(traces: list[list[float]], fold: int) -> list[list[float]]:
    """Every other trace: the folds never share a browser run."""
    return traces[fold::2]


__all__ = [
    "DEFAULT_TRACES",
    "RecordingSpec",
    "default_specs",
    "load_recording",
    "load_traces",
    "traces_for_fold",
]

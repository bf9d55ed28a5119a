"""The hand annotation of the liveness suite's recording: which action happens on which frames.

Why it is validated strictly: the live sessions are assembled from the annotated stretches (see
:mod:`shiren.eval.liveness_suite`), so a wrong frame index or an event out of order would silently
put the wrong frames in a session, and the recording, not the checker, would fail it.  Every
error is a :class:`SuiteError` (an :class:`~shiren.errors.InputError`) naming the file.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiren.errors import ErrorCode, InputError
from shiren.liveness.challenge import Action

ANNOTATION_DIR = Path(__file__).resolve().parent / "annotations"
DEFAULT_ANNOTATION = ANNOTATION_DIR / "zubair_real_mov.json"
CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}


class SuiteError(InputError):
    """The evaluation material cannot produce the asked session (bad annotation, no event)."""


def suite_error(message: str, **detail: Any) -> SuiteError:
    return SuiteError(message, code=ErrorCode.INPUT_INVALID, detail=detail)


@dataclass(frozen=True, slots=True)
class Event:
    """One hand-annotated action: frames ``start_frame … end_frame`` with its peak frame."""

    action: Action
    start_frame: int
    end_frame: int
    peak_frame: int
    start_ms: float
    end_ms: float
    peak_ms: float
    confidence: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Stretch:
    """An inclusive run of frames ``start_frame … end_frame`` (neutral, or face not visible)."""

    start_frame: int
    end_frame: int
    start_ms: float
    end_ms: float


@dataclass(frozen=True, slots=True)
class Annotation:
    frame_times_ms: tuple[float, ...]
    events: tuple[Event, ...]
    neutral: tuple[Stretch, ...]
    face_not_visible: tuple[Stretch, ...]
    video_sha256: str | None
    path: str

    def available(self, min_confidence: str = "high") -> frozenset[Action]:
        """Actions with at least one event annotated at ``min_confidence`` or better."""
        return frozenset(e.action for e in self.usable_events(min_confidence))

    def usable_events(self, min_confidence: str = "high") -> tuple[Event, ...]:
        if min_confidence not in CONFIDENCE_RANK:
            raise suite_error(f"unknown confidence {min_confidence!r}", known=list(CONFIDENCE_RANK))
        floor = CONFIDENCE_RANK[min_confidence]
        return tuple(e for e in self.events if CONFIDENCE_RANK.get(e.confidence, -1) >= floor)


def _stretch(raw: dict[str, Any]) -> Stretch:
    return Stretch(
        int(raw["start_frame"]), int(raw["end_frame"]), float(raw["start_ms"]), float(raw["end_ms"])
    )


def parse_annotation(raw: Any, path: str = "") -> Annotation:
    """Validate an annotation document (see ``annotations/zubair_real_mov.json``).

    Every frame index must exist and every event must be ordered ``start ≤ peak ≤ end``: a
    wrong annotation would silently place wrong frames in the live sessions.
    """
    if not isinstance(raw, dict):
        raise suite_error("an annotation must be a JSON object", path=path)
    try:
        times = tuple(float(t) for t in raw["frame_times_ms"])
        events = []
        for item in raw.get("events", []):
            peak = int(item.get("peak_frame", item["start_frame"]))
            events.append(
                Event(
                    action=Action(item["action"]),
                    start_frame=int(item["start_frame"]),
                    end_frame=int(item["end_frame"]),
                    peak_frame=peak,
                    start_ms=float(item["start_ms"]),
                    end_ms=float(item["end_ms"]),
                    peak_ms=float(item.get("peak_ms", times[peak])),
                    confidence=str(item.get("confidence", "low")),
                    note=str(item.get("note", "")),
                )
            )
        neutral = tuple(_stretch(s) for s in raw.get("neutral", []))
        hidden = tuple(_stretch(s) for s in raw.get("face_not_visible", []))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise suite_error(f"malformed annotation: {exc!s}", path=path) from None
    n = len(times)
    if n < 2 or any(b <= a for a, b in itertools.pairwise(times)):
        raise suite_error("frame_times_ms must hold ≥ 2 strictly increasing times", path=path)
    for e in events:
        if not 0 <= e.start_frame <= e.peak_frame <= e.end_frame < n:
            raise suite_error(
                f"event {e.action.value} at frame {e.start_frame} is out of order", path=path
            )
    for s in (*neutral, *hidden):
        if not 0 <= s.start_frame <= s.end_frame < n:
            raise suite_error(f"stretch at frame {s.start_frame} is out of range", path=path)
    sha = raw.get("sha256")
    return Annotation(
        frame_times_ms=times,
        events=tuple(events),
        neutral=neutral,
        face_not_visible=hidden,
        video_sha256=str(sha) if isinstance(sha, str) else None,
        path=path,
    )


def load_annotation(path: Path = DEFAULT_ANNOTATION) -> Annotation:
    try:
        raw = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise suite_error(f"cannot read the annotation {path}: {exc!s}", path=str(path)) from None
    return parse_annotation(raw, str(path))


__all__ = [
    "ANNOTATION_DIR",
    "CONFIDENCE_RANK",
    "DEFAULT_ANNOTATION",
    "Annotation",
    "Event",
    "Stretch",
    "SuiteError",
    "load_annotation",
    "parse_annotation",
    "suite_error",
]

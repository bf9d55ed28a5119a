"""Session builders for the liveness evaluation: bona fide sessions and attacks, made at run time.

A liveness check can only be measured on sessions that answer *fresh* challenges, and nobody can
record a live person answering thousands of random challenges.  So a bona fide (``live``) session
is assembled from a hand-annotated recording of a real person: a still, frontal stretch for the
lead-in and colour phase, then, for each asked action, a stretch of the recording in which that
action was annotated, placed so that the action's peak falls inside the action's window.  The
frames are real; only their order and time stamps are chosen, the way a person who happens to do
the right thing at the right time would produce them.  Nothing here loosens the checker: the
session is checked exactly like a production upload.

The fake camera cannot see the screen, so the colour flash's reflection is *simulated* on live
sessions (:func:`reflect`); every report built from these sessions must say so.

Attacks are built from the same material (:func:`build_photo_homography`,
:func:`build_print_artifacts`, :func:`build_replay_new_nonce`, :func:`build_ignores_colour`,
:func:`build_face_swap`); each builder is a pure function of its inputs and a seed, returning the
challenge it answers and the frames it submits.  Frames are never written anywhere: the data's
terms allow evaluation only.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.core.align import dlib5_from_mesh, similarity_transform
from shiren.core.geometry import FloatArray, RGBImage
from shiren.errors import ErrorCode, InputError
from shiren.liveness.challenge import TURNS, Action, Challenge, draw_challenge
from shiren.liveness.config import Level, LivenessConfig
from shiren.liveness.frames import FrameSequence, validate

ANNOTATION_DIR = Path(__file__).resolve().parent / "annotations"
DEFAULT_ANNOTATION = ANNOTATION_DIR / "zubair_real_mov.json"
CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}
SCENE_SIZE = (960, 540)
"""``(width, height)`` of the attack scenes: the recording's own frame size."""
CAMERA_FPS = 15.0
FOCAL_PX = 1000.0
"""Focal length of the simulated camera for 960 px wide frames (≈ 51° horizontal field)."""
MAX_REDRAWS = 10_000
MESH_FACE_POINTS = 468
PEAK_MARGIN_MS = 150.0
"""A placed peak keeps at least this far from its window's end (the peak must be *inside*)."""
YAW_SIGN = -1.0
"""Sign of the plane rotation about the vertical axis (see :func:`plane_homography`) that the
face mesh reads as the subject turning to their own left (positive yaw).  Measured on the
recording's neutral frame: a plane rotated by ``-40°`` is read as yaw ≈ +25°."""

SESSION_TYPES = (
    "live",
    "photo_homography",
    "print_artifacts",
    "replay_new_nonce",
    "ignores_colour",
    "face_swap",
)
ATTACK_TYPES = SESSION_TYPES[1:]


class SuiteError(InputError):
    """The evaluation material cannot produce the asked session (bad annotation, no event)."""


def _bad(message: str, **detail: Any) -> SuiteError:
    return SuiteError(message, code=ErrorCode.INPUT_INVALID, detail=detail)


# -- annotation -----------------------------------------------------------------------------


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
            raise _bad(f"unknown confidence {min_confidence!r}", known=list(CONFIDENCE_RANK))
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
        raise _bad("an annotation must be a JSON object", path=path)
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
        raise _bad(f"malformed annotation: {exc!s}", path=path) from None
    n = len(times)
    if n < 2 or any(b <= a for a, b in itertools.pairwise(times)):
        raise _bad("frame_times_ms must hold ≥ 2 strictly increasing times", path=path)
    for e in events:
        if not 0 <= e.start_frame <= e.peak_frame <= e.end_frame < n:
            raise _bad(
                f"event {e.action.value} at frame {e.start_frame} is out of order", path=path
            )
    for s in (*neutral, *hidden):
        if not 0 <= s.start_frame <= s.end_frame < n:
            raise _bad(f"stretch at frame {s.start_frame} is out of range", path=path)
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
        raise _bad(f"cannot read the annotation {path}: {exc!s}", path=str(path)) from None
    return parse_annotation(raw, str(path))


# -- material -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SourceVideo:
    """The annotated recording: its frames, the face mesh of each (None where lost), times."""

    images: tuple[RGBImage, ...]
    times_ms: tuple[float, ...]
    meshes: tuple[FloatArray | None, ...]
    annotation: Annotation

    def __post_init__(self) -> None:
        if not len(self.images) == len(self.times_ms) == len(self.meshes):
            raise _bad("images, times and meshes must have one entry per frame")
        if len(self.images) != len(self.annotation.frame_times_ms):
            raise _bad(
                "the annotation describes a different number of frames than the video has",
                video=len(self.images),
                annotation=len(self.annotation.frame_times_ms),
            )

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.images[0].shape[:2]
        return (int(w), int(h))

    def mesh_near(self, index: int) -> FloatArray | None:
        """The mesh of ``index`` or of the nearest frame that has one (a face lost for a frame
        still sits where it was a frame ago)."""
        n = len(self.meshes)
        for d in range(n):
            for j in (index - d, index + d):
                if 0 <= j < n and self.meshes[j] is not None:
                    return self.meshes[j]
        return None


@dataclass(frozen=True, slots=True, eq=False)
class Photo:
    """A still image of a face (a print or a screen to hold up) with its mesh."""

    image: RGBImage
    mesh: FloatArray
    name: str


@dataclass(frozen=True, slots=True)
class SuiteParams:
    """Knobs of the simulation; all reported with the results."""

    colour_gain: float = 0.08
    """Reflected light: ``pixel · (1 + g · (c − mean(c)) / 255)`` inside the face mask."""
    display_delay_frames: int = 1
    """The camera sees the screen's colour this many frames late."""
    jpeg_quality: int = 85
    lead_ms: tuple[float, float] = (300.0, 700.0)
    """Real frames kept before an annotated event's start (range, drawn per action)."""
    max_plane_deg: float = 55.0
    min_confidence: str = "high"
    """Annotated events at least this confident can answer an action in a live session (a
    doubtful event would make the recording, not the checker, fail the session)."""
    pre_roll_ms: float = 400.0
    """Continuous real frames before each action window (the checker's slack)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one annotated event was placed in a live session."""

    action: Action
    event: Event
    window: tuple[int, int]
    first_frame: int
    peak_t_ms: float


@dataclass(frozen=True, slots=True)
class LiveTimeline:
    """Source frame index and session time of every output frame, plus the placements."""

    frames: tuple[tuple[int, float], ...]
    placements: tuple[Placement, ...]
    neutral: Stretch
    notes: tuple[str, ...] = field(default=())


# -- challenges -----------------------------------------------------------------------------


def draw_answerable(
    config: LivenessConfig,
    level: Level | str,
    seed: int,
    available: frozenset[Action],
    *,
    now: float | None = None,
) -> tuple[Challenge, int]:
    """The first challenge drawn with ``seed, seed + 1, …`` whose actions are all available.

    A recording cannot answer an arbitrary random challenge, so live sessions are restricted to
    challenges it can answer; the report says so.  Returns the challenge and the seed used.
    """
    for k in range(MAX_REDRAWS):
        challenge = draw_challenge(config, level, seed=seed + k, now=now)
        if all(step.action in available for step in challenge.actions):
            return challenge, seed + k
    raise _bad(
        "no challenge answerable with the annotated actions was drawn",
        available=sorted(a.value for a in available),
        tries=MAX_REDRAWS,
    )


# -- live timeline --------------------------------------------------------------------------


def _pingpong(lo: int, hi: int, start: int) -> Any:
    """Indices ``lo … hi`` played forwards and backwards forever, from ``start``."""
    cycle = list(range(lo, hi + 1)) + list(range(hi - 1, lo, -1))
    if not cycle:
        cycle = [lo]
    k = cycle.index(start) if start in cycle else 0
    while True:
        yield cycle[k % len(cycle)]
        k += 1


def _step_ms(times: Sequence[float], a: int, b: int) -> float:
    """Original spacing between two neighbouring source frames (either order)."""
    if a == b:
        return float(np.median(np.diff(np.asarray(times))))
    return abs(float(times[b]) - float(times[a]))


def _pick_event(events: Sequence[Event], action: Action, rng: random.Random) -> Event:
    """The most confident annotated event of ``action`` (ties drawn at random)."""
    own = [e for e in events if e.action is action]
    if not own:
        raise _bad(f"no annotated event for {action.value}", action=action.value)
    best = max(CONFIDENCE_RANK.get(e.confidence, -1) for e in own)
    return rng.choice([e for e in own if CONFIDENCE_RANK.get(e.confidence, -1) == best])


def _still_phase(
    source: SourceVideo, challenge: Challenge, rng: random.Random
) -> tuple[Stretch, list[tuple[int, float]]]:
    """A neutral stretch played forwards and backwards from ``t = 0`` to the first action."""
    times = source.times_ms
    stretches = [s for s in source.annotation.neutral if s.end_frame - s.start_frame >= 4]
    if not stretches:
        raise _bad("the annotation has no neutral stretch of ≥ 5 frames")
    neutral = rng.choice(stretches)
    out: list[tuple[int, float]] = []
    order = _pingpong(neutral.start_frame, neutral.end_frame, rng.randint(*_span(neutral)))
    t = 0.0
    prev = next(order)
    still_until = float(challenge.still_until_ms)
    while t < still_until:
        out.append((prev, t))
        nxt = next(order)
        t += _step_ms(times, prev, nxt)
        prev = nxt
    return neutral, out


def _lead_floor(ann: Annotation, event: Event, min_confidence: str) -> int:
    """The earliest frame a segment for ``event`` may show: after the end of any earlier
    annotated event of another action (a lead-in must not carry the end of a different action
    into the window, which a person asked for one action would not do)."""
    rank = CONFIDENCE_RANK[min_confidence]
    ends = [
        e.end_frame + 1
        for e in ann.events
        if e.action is not event.action
        and e.end_frame < event.start_frame
        and CONFIDENCE_RANK.get(e.confidence, -1) >= rank
    ]
    return max([0, *ends])


def live_timeline(
    source: SourceVideo, challenge: Challenge, rng: random.Random, params: SuiteParams
) -> LiveTimeline:
    """Which real frame goes where in a live session answering ``challenge``.

    * ``[0, still_until)``: a neutral stretch played forwards and backwards at its own spacing
      (a still face does not care about the direction of time);
    * each action window: real frames from a little before an annotated event of that action,
      at their original spacing, until the window ends; when the event's peak would land past
      the window's end, the segment starts later so that the peak falls inside.  Past the end of
      the recording the frames play backwards (neighbouring real frames);
    * the ``pre_roll_ms`` before each window hold the same take's earlier frames, replacing
      the end of what came before.
    """
    ann = source.annotation
    times = source.times_ms
    n = len(times)
    neutral, out = _still_phase(source, challenge, rng)
    events = ann.usable_events(params.min_confidence)
    placements: list[Placement] = []
    for k, step in enumerate(challenge.actions):
        event = _pick_event(events, step.action, rng)
        window = float(step.end_ms - step.start_ms)
        lead = rng.uniform(*params.lead_ms)
        floor = _lead_floor(ann, event, params.min_confidence)
        first = event.start_frame
        while first > floor and times[event.start_frame] - times[first - 1] <= lead:
            first -= 1
        # the next action's pre-roll replaces this segment's last frames: keep the peak before
        latest = window - PEAK_MARGIN_MS
        if k < len(challenge.actions) - 1:
            latest -= params.pre_roll_ms
        while first < event.peak_frame and times[event.peak_frame] - times[first] > latest:
            first += 1
        peak_t = step.start_ms + times[event.peak_frame] - times[first]
        if not step.start_ms <= peak_t < step.end_ms:
            raise _bad(f"the {step.action.value} event cannot be placed in its window")
        # Pre-roll: the frames just before ``first`` replace the last ``pre_roll_ms`` of what
        # came before, so the checker's slack before the window sees the same continuous take
        # as the window (a cut there would break the optical-flow tracking of the 3-D check,
        # which no real session has).
        lo = float(step.start_ms) - params.pre_roll_ms
        while out and out[-1][1] >= lo:
            out.pop()
        pre: list[tuple[int, float]] = []
        i, t = first, float(step.start_ms)
        while i > floor and t - _step_ms(times, i - 1, i) >= lo:
            t -= _step_ms(times, i - 1, i)
            i -= 1
            pre.append((i, t))
        out.extend(reversed(pre))
        end = float(step.end_ms) if k < len(challenge.actions) - 1 else float(step.end_ms) + 1.0
        i, direction, t = first, 1, float(step.start_ms)
        while t < end:
            out.append((i, t))
            j = i + direction
            if not 0 <= j < n:
                direction = -direction
                j = i + direction
            t += _step_ms(times, i, j)
            i = j
        placements.append(
            Placement(step.action, event, (step.start_ms, step.end_ms), first, peak_t)
        )
    return LiveTimeline(frames=tuple(out), placements=tuple(placements), neutral=neutral)


def _span(stretch: Stretch) -> tuple[int, int]:
    return (stretch.start_frame, stretch.end_frame)


# -- image effects --------------------------------------------------------------------------


def face_mask(shape: tuple[int, ...], points: FloatArray, feather: float = 0.12) -> np.ndarray:
    """A feathered ellipse (float32 in [0, 1]) fitted to the face's mesh points.

    The feather (a Gaussian of ``feather`` × the ellipse's short axis) avoids a visible seam
    where a reflection or a pasted face ends.
    """
    h, w = shape[:2]
    pts = np.ascontiguousarray(points[:MESH_FACE_POINTS, :2], dtype=np.float32).reshape(-1, 1, 2)
    mask = np.zeros((h, w), dtype=np.float32)
    if len(pts) < 5 or not np.isfinite(pts).all():
        return mask
    (cx, cy), (ax, ay), angle = cv2.fitEllipse(pts)
    if not (math.isfinite(ax) and math.isfinite(ay)) or min(ax, ay) < 2:
        return mask
    cv2.ellipse(
        mask,
        (round(cx), round(cy)),
        (max(1, round(ax / 2)), max(1, round(ay / 2))),
        angle,
        0,
        360,
        1.0,
        -1,
    )
    sigma = max(1.0, feather * min(ax, ay))
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)


def reflect(
    image: RGBImage, mask: np.ndarray, rgb: tuple[int, int, int] | None, gain: float
) -> RGBImage:
    """The screen's colour reflected on the skin: ``pixel · (1 + g · (c − mean c) / 255)``.

    Only the colour's deviation from grey tints the face (a white screen lights it evenly, which
    exposure control cancels anyway), scaled by the local mask.
    """
    if rgb is None or gain == 0.0:
        return image
    c = np.asarray(rgb, dtype=np.float32)
    tint = gain * (c - c.mean()) / 255.0
    factor = 1.0 + mask[..., None] * tint[None, None, :]
    out = np.clip(image.astype(np.float32) * factor, 0, 255)
    return np.ascontiguousarray(out.astype(np.uint8))


def _screen_colour(
    colours: Challenge | None, times: Sequence[float], i: int, delay: int
) -> tuple[int, int, int] | None:
    """The colour the camera sees on frame ``i``: the screen's, ``delay`` frames late."""
    if colours is None:
        return None
    j = i - delay
    if j < 0:
        return None
    step = colours.colour_at(times[j])
    return None if step is None else step.rgb


def jpeg(image: RGBImage, quality: int) -> RGBImage:
    """Encode and decode as JPEG (what an uploaded frame goes through)."""
    ok, blob = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [1, int(quality)])
    if not ok:
        raise _bad("JPEG encoding failed")
    bgr = cv2.imdecode(blob, cv2.IMREAD_COLOR)
    if bgr is None:
        raise _bad("JPEG decoding failed")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _sequence(
    images: list[RGBImage], times: list[float], config: LivenessConfig, nonce: str, source: str
) -> FrameSequence:
    return validate(images, times, config.frames, nonce=nonce, source=source)


# -- live-based sessions --------------------------------------------------------------------


def render_live(
    source: SourceVideo,
    timeline: LiveTimeline,
    *,
    colours: Challenge | None,
    gain: float,
    delay: int,
) -> tuple[list[RGBImage], list[float], list[FloatArray | None]]:
    """The timeline's frames with the reflection of ``colours``' flash (None: no reflection)."""
    times = [t for _, t in timeline.frames]
    images: list[RGBImage] = []
    meshes: list[FloatArray | None] = []
    for k, (i, _) in enumerate(timeline.frames):
        mesh = source.meshes[i]
        image = source.images[i]
        rgb = _screen_colour(colours, times, k, delay)
        if rgb is not None and mesh is not None:
            image = reflect(image, face_mask(image.shape, mesh), rgb, gain)
        images.append(image)
        meshes.append(mesh)
    return images, times, meshes


def _live_parts(
    source: SourceVideo,
    config: LivenessConfig,
    level: Level | str,
    seed: int,
    params: SuiteParams,
    now: float | None,
) -> tuple[Challenge, LiveTimeline, random.Random]:
    available = source.annotation.available(params.min_confidence)
    challenge, used = draw_answerable(config, level, seed, available, now=now)
    rng = random.Random(f"live:{used}")
    return challenge, live_timeline(source, challenge, rng, params), rng


def _describe(timeline: LiveTimeline) -> str:
    parts = [
        f"{p.action.value}@{p.event.start_frame}-{p.event.end_frame}" for p in timeline.placements
    ]
    return "live:" + ",".join(parts)


def build_live(
    source: SourceVideo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """A bona fide session answering a fresh challenge (see :func:`live_timeline`)."""
    challenge, timeline, _ = _live_parts(source, config, level, seed, params, now)
    images, times, _ = render_live(
        source,
        timeline,
        colours=challenge,
        gain=params.colour_gain,
        delay=params.display_delay_frames,
    )
    return challenge, _sequence(images, times, config, challenge.nonce, _describe(timeline))


def build_replay_new_nonce(
    source: SourceVideo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """A genuine live session recorded for challenge A, submitted against a fresh challenge B.

    The frames claim B's nonce (the attacker controls the upload's metadata); ``frames.source``
    names A's nonce so that a replay guard which saw A can be tested.
    """
    original, frames = build_live(source, config, level=level, seed=seed, params=params, now=now)
    fresh = draw_challenge(config, level, seed=seed + 7_919_000, now=now)
    replayed = FrameSequence(
        frames=frames.frames, nonce=fresh.nonce, source=f"replay-of:{original.nonce}"
    )
    return fresh, replayed


def build_ignores_colour(
    source: SourceVideo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """Right actions, wrong light: the face reflects another random colour sequence (even
    seeds) or none (odd seeds), as an injected video that cannot see the screen would."""
    challenge, timeline, _ = _live_parts(source, config, level, seed, params, now)
    other = draw_challenge(config, level, seed=seed + 3_571_000, now=now) if seed % 2 == 0 else None
    images, times, _ = render_live(
        source, timeline, colours=other, gain=params.colour_gain, delay=params.display_delay_frames
    )
    label = "other-colours" if other is not None else "no-colours"
    return challenge, _sequence(
        images, times, config, challenge.nonce, f"{_describe(timeline)};{label}"
    )


def paste_face(target: RGBImage, target_mesh: FloatArray, donor: Photo) -> RGBImage:
    """``donor``'s face aligned onto the target face's 5 points (similarity transform) and blended
    with a feathered mask, its colour matched to the target skin (what a swap tool does)."""
    h, w = target.shape[:2]
    m = similarity_transform(dlib5_from_mesh(donor.mesh), dlib5_from_mesh(target_mesh))
    warped = cv2.warpAffine(donor.image, m, (w, h), flags=cv2.INTER_LINEAR)
    pts = donor.mesh[:MESH_FACE_POINTS, :2].astype(np.float32)
    moved = (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)
    mask = face_mask(target.shape, moved, feather=0.08)
    sel = mask > 0.5
    if not sel.any():
        return target
    src = warped.astype(np.float32)
    dst = target.astype(np.float32)
    for c in range(3):
        s_mean, s_std = float(src[..., c][sel].mean()), float(src[..., c][sel].std()) + 1e-3
        d_mean, d_std = float(dst[..., c][sel].mean()), float(dst[..., c][sel].std()) + 1e-3
        src[..., c] = (src[..., c] - s_mean) * (d_std / s_std) + d_mean
    out = mask[..., None] * np.clip(src, 0, 255) + (1.0 - mask[..., None]) * dst
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def build_face_swap(
    source: SourceVideo,
    donor: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """A live session whose frames after the session's middle show ``donor``'s face."""
    challenge, timeline, _ = _live_parts(source, config, level, seed, params, now)
    images, times, meshes = render_live(
        source,
        timeline,
        colours=challenge,
        gain=params.colour_gain,
        delay=params.display_delay_frames,
    )
    middle = 0.5 * (times[0] + times[-1])
    for k, (i, t) in enumerate(timeline.frames):
        if t <= middle:
            continue
        mesh = meshes[k] if meshes[k] is not None else source.mesh_near(i)
        if mesh is not None:
            images[k] = paste_face(images[k], mesh, donor)
    return challenge, _sequence(
        images, times, config, challenge.nonce, f"{_describe(timeline)};swap:{donor.name}"
    )


# -- photo attacks --------------------------------------------------------------------------


def plane_homography(
    print_size: tuple[int, int],
    *,
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    scale: float,
    centre: tuple[float, float],
    scene_size: tuple[int, int] = SCENE_SIZE,
    focal_px: float = FOCAL_PX,
) -> np.ndarray:
    """The 3×3 homography taking print pixels to scene pixels for a flat print rotated in 3-D.

    The print's centre sits on the camera ray through ``centre`` at the depth where one print
    pixel spans ``scale`` scene pixels when frontal; it is rotated about its vertical axis
    (``yaw_deg``), its horizontal axis (``pitch_deg``) and the viewing axis (``roll_deg``).
    Perspective (not affine) so that a strong rotation foreshortens one side, as a real print does.
    """
    pw, ph = print_size
    sw, sh = scene_size
    cx, cy = sw / 2.0, sh / 2.0
    k = np.array([[focal_px, 0, cx], [0, focal_px, cy], [0, 0, 1.0]])
    a = np.array([[1.0, 0, -pw / 2.0], [0, 1.0, -ph / 2.0], [0, 0, 1.0]])
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    depth = focal_px / scale
    shift = np.array(
        [(centre[0] - cx) * depth / focal_px, (centre[1] - cy) * depth / focal_px, depth]
    )
    m = np.column_stack([rot[:, 0], rot[:, 1], shift])
    h = k @ m @ a
    return np.asarray(h / h[2, 2], dtype=np.float64)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, slots=True)
class _Move:
    start_ms: float
    rise_ms: float
    hold_ms: float
    amplitude: float
    axis: str

    def at(self, t: float) -> float:
        up = _smoothstep((t - self.start_ms) / self.rise_ms)
        down = _smoothstep((t - self.start_ms - self.rise_ms - self.hold_ms) / self.rise_ms)
        return self.amplitude * (up - down)


def _moves(challenge: Challenge, rng: random.Random, max_deg: float) -> list[_Move]:
    """The adaptive attacker's plan: in every turn window the print turns the asked way, in every
    nod window it tilts, each time back to frontal before the window ends."""
    out = []
    for step in challenge.actions:
        if step.action not in (*TURNS, Action.NOD):
            continue
        window = float(step.end_ms - step.start_ms)
        rise = rng.uniform(0.15, 0.25) * window
        hold = rng.uniform(0.1, 0.25) * window
        start = step.start_ms + rng.uniform(0.05, 0.3) * window
        deg = rng.uniform(0.55, 1.0) * max_deg
        if step.action is Action.NOD:
            out.append(_Move(start, rise, hold, rng.choice((-1.0, 1.0)) * deg * 0.7, "pitch"))
        else:
            sign = YAW_SIGN if step.action is Action.TURN_LEFT else -YAW_SIGN
            out.append(_Move(start, rise, hold, sign * deg, "yaw"))
    return out


def _background(rng: random.Random, size: tuple[int, int]) -> RGBImage:
    """A static room-like scene: smooth random colour field plus sensor noise."""
    w, h = size
    nrng = np.random.default_rng(rng.getrandbits(32))
    coarse = nrng.uniform(40, 200, size=(3, 5, 3)).astype(np.float32)
    field_ = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), np.float32)
    field_ += nrng.normal(0, 3, size=field_.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(field_, 0, 255).astype(np.uint8))


def _print_artefacts(image: RGBImage, rng: random.Random) -> tuple[RGBImage, str]:
    """A printed-paper look (halftone, reduced gamut, paper texture) or a screen look (moiré
    grating, gamma, glare, optional bezel), chosen at random."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        grey = img.mean(axis=2, keepdims=True)
        img = grey + 0.8 * (img - grey)  # desaturated inks
        img = 18.0 + 0.84 * img  # paper white and ink black are not 255 and 0
        cell = rng.uniform(3.0, 5.0)
        ang = math.radians(rng.uniform(10, 80))
        u = (xx * math.cos(ang) + yy * math.sin(ang)) / cell
        v = (-xx * math.sin(ang) + yy * math.cos(ang)) / cell
        screen = 0.5 + 0.25 * (np.cos(2 * math.pi * u) + np.cos(2 * math.pi * v))
        dots = (img / 255.0 > screen[..., None]).astype(np.float32) * 255.0
        img = 0.55 * img + 0.45 * dots
        grain = cv2.GaussianBlur(nrng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
        img *= (1.0 + 0.05 * grain)[..., None]
        kind = "print"
    else:
        gamma = rng.uniform(0.8, 1.25)
        img = 255.0 * (img / 255.0) ** gamma
        period = rng.uniform(2.2, 3.2)
        ang = math.radians(rng.uniform(-8, 8))
        grating = 0.5 + 0.5 * np.sin(
            2 * math.pi * (xx * math.cos(ang) + yy * math.sin(ang)) / period
        )
        img *= (1.0 - 0.14 * grating)[..., None]
        gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.15, 0.6) * h
        radius = rng.uniform(0.08, 0.2) * max(w, h)
        glare = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2))
        img += rng.uniform(60, 140) * glare[..., None]
        kind = "screen"
        if rng.random() < 0.5:
            pad = max(4, round(0.06 * min(w, h)))
            img = np.asarray(
                cv2.copyMakeBorder(
                    img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(18, 18, 20)
                ),
                np.float32,
            )
            kind = "screen+bezel"
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8)), kind


def build_photo_homography(
    photo: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
    artefacts: bool = False,
    face_iod_px: tuple[float, float] = (85.0, 110.0),
) -> tuple[Challenge, FrameSequence]:
    """A still photo held up to the camera and moved as the challenge asks (an adaptive attacker:
    it turns the print the asked way in each turn window and tilts it in each nod window), lit by
    the screen's flash like a face would be, every frame JPEG re-encoded."""
    challenge = draw_challenge(config, level, seed=seed, now=now)
    rng = random.Random(f"photo:{seed}")
    print_img, mesh, kind = photo.image, photo.mesh, "photo"
    if artefacts:
        before = print_img.shape[:2]
        print_img, kind = _print_artefacts(print_img, rng)
        off = (print_img.shape[1] - before[1]) / 2.0, (print_img.shape[0] - before[0]) / 2.0
        mesh = mesh.copy()
        mesh[:, 0] += off[0]
        mesh[:, 1] += off[1]
    ph, pw = print_img.shape[:2]
    iod = float(np.linalg.norm(mesh[33, :2] - mesh[263, :2]))
    scale = rng.uniform(*face_iod_px) / max(iod, 1.0)
    moves = _moves(challenge, rng, params.max_plane_deg)
    sw, sh = SCENE_SIZE
    base_centre = (sw / 2 + rng.uniform(-60, 60), sh / 2 + rng.uniform(-30, 30))
    face_c = mesh[:MESH_FACE_POINTS, :2].mean(axis=0)
    # centre the *face* (not the print) at base_centre when frontal
    off_px = (face_c - np.array([pw / 2.0, ph / 2.0])) * scale
    wob = [rng.uniform(0, 2 * math.pi) for _ in range(4)]
    background = _background(rng, SCENE_SIZE)
    times: list[float] = []
    t = 0.0
    while t <= challenge.duration_ms:
        times.append(round(t, 3))
        t += 1000.0 / CAMERA_FPS * rng.uniform(0.97, 1.03)
    images: list[RGBImage] = []
    pts3 = np.column_stack([mesh[:MESH_FACE_POINTS, :2], np.ones(MESH_FACE_POINTS)])
    for k, tk in enumerate(times):
        yaw = sum(m.at(tk) for m in moves if m.axis == "yaw")
        pitch = sum(m.at(tk) for m in moves if m.axis == "pitch")
        s = tk / 1000.0
        roll = 3.0 * math.sin(0.9 * s + wob[0])
        jitter = (6.0 * math.sin(1.3 * s + wob[1]), 4.0 * math.sin(1.7 * s + wob[2]))
        zoom = scale * (1.0 + 0.03 * math.sin(0.7 * s + wob[3]))
        centre = (
            base_centre[0] - off_px[0] + jitter[0],
            base_centre[1] - off_px[1] + jitter[1],
        )
        hom = plane_homography(
            (pw, ph), yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, scale=zoom, centre=centre
        )
        warped = cv2.warpPerspective(print_img, hom, SCENE_SIZE, flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(
            np.ones((ph, pw), np.float32), hom, SCENE_SIZE, flags=cv2.INTER_LINEAR
        )
        frame = (cover[..., None] * warped + (1 - cover[..., None]) * background).astype(np.uint8)
        rgb = _screen_colour(challenge, times, k, params.display_delay_frames)
        if rgb is not None:
            moved = pts3 @ hom.T
            face = moved[:, :2] / moved[:, 2:3]
            frame = reflect(frame, face_mask(frame.shape, face), rgb, params.colour_gain)
        images.append(jpeg(frame, params.jpeg_quality))
    return challenge, _sequence(images, times, config, challenge.nonce, f"{kind}:{photo.name}")


def build_print_artifacts(
    photo: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = SuiteParams(),
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """:func:`build_photo_homography` with printed-paper or screen artefacts on the photo."""
    return build_photo_homography(
        photo, config, level=level, seed=seed, params=params, now=now, artefacts=True
    )


# -- photos ---------------------------------------------------------------------------------


def crop_print(image: RGBImage, mesh: FloatArray, rng: random.Random) -> Photo:
    """A portrait print cut around the face of a frame (face ≈ 45 % of the print's width)."""
    h, w = image.shape[:2]
    lo = mesh[:MESH_FACE_POINTS, :2].min(axis=0)
    hi = mesh[:MESH_FACE_POINTS, :2].max(axis=0)
    c = (lo + hi) / 2.0
    fw = float(hi[0] - lo[0])
    pw = fw / rng.uniform(0.4, 0.5)
    ph = pw * 4.0 / 3.0
    x0 = int(max(0, c[0] - pw / 2))
    y0 = int(max(0, c[1] - ph * 0.45))
    x1 = int(min(w, x0 + pw))
    y1 = int(min(h, y0 + ph))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    moved = mesh.copy()
    moved[:, 0] -= x0
    moved[:, 1] -= y0
    return Photo(crop, moved, "self")


def upscale_photo(image: RGBImage, mesh: FloatArray, name: str, factor: float = 3.0) -> Photo:
    """An LFW-sized photo (250 px) enlarged the way a printed or displayed copy would be."""
    big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    scaled = mesh.copy()
    scaled[:, :2] *= factor
    return Photo(np.ascontiguousarray(big), scaled, name)


__all__ = [
    "ATTACK_TYPES",
    "DEFAULT_ANNOTATION",
    "SESSION_TYPES",
    "Annotation",
    "Event",
    "LiveTimeline",
    "Photo",
    "Placement",
    "SourceVideo",
    "Stretch",
    "SuiteError",
    "SuiteParams",
    "build_face_swap",
    "build_ignores_colour",
    "build_live",
    "build_photo_homography",
    "build_print_artifacts",
    "build_replay_new_nonce",
    "crop_print",
    "draw_answerable",
    "face_mask",
    "jpeg",
    "live_timeline",
    "load_annotation",
    "paste_face",
    "plane_homography",
    "reflect",
    "render_live",
    "upscale_photo",
]

"""The live timeline: which real frame of the recording goes where in a bona fide session.

A recording cannot answer an arbitrary random challenge, so a live session answers a challenge
drawn until all its actions were annotated (:func:`draw_answerable`; the report says so), and
:func:`live_timeline` places a stretch of real frames around an annotated event of each asked
action so that its peak falls inside the action's window.  Only the order and time stamps of the
frames are chosen, never their content: see :func:`live_timeline` for the rules.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shiren.eval.suite_annotation import CONFIDENCE_RANK, Annotation, Event, Stretch, suite_error
from shiren.eval.suite_material import SourceVideo, SuiteParams
from shiren.liveness.challenge import Action, Challenge, Variant, draw_challenge
from shiren.liveness.config import Level, LivenessConfig

MAX_REDRAWS = 10_000
PEAK_MARGIN_MS = 150.0
"""A placed peak keeps at least this far from its window's end (the peak must be *inside*)."""


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


def draw_answerable(
    config: LivenessConfig,
    level: Level | str,
    seed: int,
    available: frozenset[Action],
    *,
    now: float | None = None,
    variant: Variant = Variant.LIVE,
) -> tuple[Challenge, int]:
    """The first challenge drawn with ``seed, seed + 1, …`` whose actions are all available.

    A recording cannot answer an arbitrary random challenge, so live sessions are restricted to
    challenges it can answer; the report says so.  Returns the challenge and the seed used.
    """
    for k in range(MAX_REDRAWS):
        challenge = draw_challenge(config, level, seed=seed + k, now=now, variant=variant)
        if all(step.action in available for step in challenge.actions):
            return challenge, seed + k
    raise suite_error(
        "no challenge answerable with the annotated actions was drawn",
        available=sorted(a.value for a in available),
        tries=MAX_REDRAWS,
    )


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
        raise suite_error(f"no annotated event for {action.value}", action=action.value)
    best = max(CONFIDENCE_RANK.get(e.confidence, -1) for e in own)
    return rng.choice([e for e in own if CONFIDENCE_RANK.get(e.confidence, -1) == best])


def _still_phase(
    source: SourceVideo, challenge: Challenge, rng: random.Random
) -> tuple[Stretch, list[tuple[int, float]]]:
    """A neutral stretch played forwards and backwards from ``t = 0`` to the first action."""
    times = source.times_ms
    stretches = [s for s in source.annotation.neutral if s.end_frame - s.start_frame >= 4]
    if not stretches:
        raise suite_error("the annotation has no neutral stretch of ≥ 5 frames")
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
            raise suite_error(f"the {step.action.value} event cannot be placed in its window")
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


__all__ = [
    "MAX_REDRAWS",
    "PEAK_MARGIN_MS",
    "LiveTimeline",
    "Placement",
    "draw_answerable",
    "live_timeline",
]

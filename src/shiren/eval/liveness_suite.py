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

This module builds the sessions made of the recording's frames (live, replay, wrong colours, face
swap).  Beside it: the annotation (:mod:`shiren.eval.suite_annotation`), the material and knobs
(:mod:`shiren.eval.suite_material`), the live timeline (:mod:`shiren.eval.suite_timeline`), the
image effects (:mod:`shiren.eval.suite_effects`) and the photo attacks
(:mod:`shiren.eval.suite_photo_attacks`); the names callers import from
``shiren.eval.liveness_suite`` are re-exported here.
"""

from __future__ import annotations

import random

from shiren.core.geometry import FloatArray, RGBImage
from shiren.eval.suite_annotation import (
    DEFAULT_ANNOTATION,
    Annotation,
    Event,
    Stretch,
    SuiteError,
    load_annotation,
    parse_annotation,
)
from shiren.eval.suite_effects import (
    face_mask,
    jpeg,
    paste_face,
    reflect,
    screen_colour,
    session_frames,
)
from shiren.eval.suite_material import (
    DEFAULT_PARAMS,
    Photo,
    SourceVideo,
    SuiteParams,
    crop_print,
    upscale_photo,
)
from shiren.eval.suite_photo_attacks import (
    build_photo_homography,
    build_print_artifacts,
    plane_homography,
)
from shiren.eval.suite_timeline import LiveTimeline, Placement, draw_answerable, live_timeline
from shiren.liveness.challenge import Challenge, Variant, draw_challenge
from shiren.liveness.config import Level, LivenessConfig
from shiren.liveness.frames import FrameSequence

SESSION_TYPES = (
    "live",
    "photo_homography",
    "print_artifacts",
    "replay_new_nonce",
    "ignores_colour",
    "face_swap",
)
ATTACK_TYPES = SESSION_TYPES[1:]


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
        rgb = screen_colour(colours, times, k, delay)
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
    variant: Variant = Variant.LIVE,
) -> tuple[Challenge, LiveTimeline, random.Random]:
    available = source.annotation.available(params.min_confidence)
    challenge, used = draw_answerable(config, level, seed, available, now=now, variant=variant)
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
    params: SuiteParams = DEFAULT_PARAMS,
    now: float | None = None,
    variant: Variant = Variant.LIVE,
) -> tuple[Challenge, FrameSequence]:
    """A bona fide session answering a fresh challenge (see :func:`live_timeline`); ``variant``
    draws a challenge without the colour flash (``motion``, ``recorded``)."""
    challenge, timeline, _ = _live_parts(source, config, level, seed, params, now, variant)
    images, times, _ = render_live(
        source,
        timeline,
        colours=challenge,
        gain=params.colour_gain,
        delay=params.display_delay_frames,
    )
    return challenge, session_frames(images, times, config, challenge.nonce, _describe(timeline))


def build_replay_new_nonce(
    source: SourceVideo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = DEFAULT_PARAMS,
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
    params: SuiteParams = DEFAULT_PARAMS,
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
    return challenge, session_frames(
        images, times, config, challenge.nonce, f"{_describe(timeline)};{label}"
    )


def build_face_swap(
    source: SourceVideo,
    donor: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = DEFAULT_PARAMS,
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
    return challenge, session_frames(
        images, times, config, challenge.nonce, f"{_describe(timeline)};swap:{donor.name}"
    )


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
    "parse_annotation",
    "paste_face",
    "plane_homography",
    "reflect",
    "render_live",
    "upscale_photo",
]

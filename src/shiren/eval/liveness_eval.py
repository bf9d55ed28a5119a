"""Liveness evaluation: replay simulated sessions through the whole checker and count outcomes.

ISO/IEC 30107-3 vocabulary: BPCER is the share of bona fide (``live``) sessions rejected; APCER
is, per attack type, the share of attack sessions accepted, and the headline APCER is the worst
type's (an attacker picks the attack that works).  Every rate carries its Clopper–Pearson 95 %
interval: 20 sessions cannot show a rate below ≈ 14 %, and the report must not pretend otherwise.

For each attack type the report also counts which signal failed and which reason code was given,
and which signal was the *only* one to fail (the signal that alone stopped the attack): that is
what tells an engineer which defence is doing the work and which is decorative.

``action_detection`` measures the action detector on the recording itself, event by event, against
the hand annotation, independently of the assembled sessions.  :func:`bench_liveness` times the
whole check on a real 30-frame upload.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.core.geometry import FloatArray, RGBImage
from shiren.eval.intervals import clopper_pearson
from shiren.eval.liveness_suite import (
    SESSION_TYPES,
    Annotation,
    Photo,
    SourceVideo,
    SuiteError,
    SuiteParams,
    build_face_swap,
    build_ignores_colour,
    build_live,
    build_photo_homography,
    build_print_artifacts,
    build_replay_new_nonce,
    crop_print,
    upscale_photo,
)
from shiren.liveness.actions import check_step, responses
from shiren.liveness.challenge import Action, ActionStep, Challenge, draw_challenge
from shiren.liveness.check import LivenessChecker, LivenessResult, MemoryReplayGuard, fingerprint
from shiren.liveness.config import ActionThresholds, Level, LivenessConfig
from shiren.liveness.frames import FrameSequence, validate
from shiren.liveness.signals import Baseline, FaceSignals, face_signals
from shiren.models.protocols import FaceTracker

LFW_SUFFIX = "_0001.jpg"
BENCH_SIZE = (640, 360)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rate(k: int, n: int) -> dict[str, Any]:
    """``k / n`` with its exact 95 % interval (``None`` rate when ``n == 0``)."""
    if n == 0:
        return {"rate": None, "k": 0, "n": 0, "ci95": None}
    lo, hi = clopper_pearson(k, n)
    return {"rate": k / n, "k": k, "n": n, "ci95": [lo, hi]}


# -- material -------------------------------------------------------------------------------


def load_source(frames: FrameSequence, tracker: FaceTracker, annotation: Annotation) -> SourceVideo:
    """The recording with one mesh per frame (tracked as one video, as the checker would)."""
    images = [f.image for f in frames.frames]
    return SourceVideo(
        images=tuple(images),
        times_ms=tuple(frames.times_ms),
        meshes=tuple(tracker.track(images)),
        annotation=annotation,
    )


def _single_mesh(tracker: FaceTracker, image: RGBImage) -> FloatArray | None:
    return tracker.track([image])[0]


def lfw_photos(
    root: Path, tracker: FaceTracker, count: int, seed: int
) -> tuple[list[Photo], list[dict[str, str]]]:
    """``count`` LFW photos of different people (one per person, chosen by ``seed``), each with
    its mesh; photos where no face is tracked are skipped.  Also their names and sha256s."""
    from shiren.core.image import load_image

    names = sorted(p.name for p in root.iterdir() if (p / f"{p.name}{LFW_SUFFIX}").is_file())
    if not names:
        raise SuiteError(f"no LFW photos under {root}", detail={"root": str(root)})
    random.Random(f"lfw:{seed}").shuffle(names)
    photos: list[Photo] = []
    used: list[dict[str, str]] = []
    for name in names:
        if len(photos) >= count:
            break
        path = root / name / f"{name}{LFW_SUFFIX}"
        image = load_image(path).pixels
        mesh = _single_mesh(tracker, image)
        if mesh is None:
            continue
        photos.append(upscale_photo(image, mesh, name))
        used.append({"file": str(path.relative_to(root.parent)), "sha256": sha256_of(path)})
    return photos, used


def self_photos(source: SourceVideo, seed: int, count: int = 3) -> list[Photo]:
    """Prints of the live person made from neutral frames of the recording."""
    rng = random.Random(f"self:{seed}")
    frames = [
        i
        for s in source.annotation.neutral
        for i in range(s.start_frame, s.end_frame + 1)
        if source.meshes[i] is not None
    ]
    if not frames:
        raise SuiteError("no neutral frame with a tracked face for the photo attacks")
    picks = [frames[rng.randrange(len(frames))] for _ in range(count)]
    out = []
    for i in picks:
        mesh = source.meshes[i]
        assert mesh is not None
        out.append(crop_print(source.images[i], mesh, rng))
    return out


# -- running sessions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRecord:
    kind: str
    seed: int
    nonce: str
    passed: bool
    reasons: tuple[str, ...]
    failed_signals: tuple[str, ...]
    values: dict[str, float | None]
    frames: int
    faces_found: int
    source: str
    actions: tuple[str, ...]
    replay_caught: bool | None = None


def _record(
    kind: str, seed: int, challenge: Challenge, frames: FrameSequence, result: LivenessResult
) -> SessionRecord:
    return SessionRecord(
        kind=kind,
        seed=seed,
        nonce=challenge.nonce,
        passed=result.passed,
        reasons=tuple(r.value for r in result.reasons),
        failed_signals=tuple(
            name for name, sig in result.signals.items() if sig.required and not sig.passed
        ),
        values={name: sig.value for name, sig in result.signals.items()},
        frames=len(frames),
        faces_found=result.faces_found,
        source=frames.source,
        actions=tuple(s.action.value for s in challenge.actions),
    )


def check_now(challenge: Challenge, frames: FrameSequence) -> float:
    """A check time inside the challenge's validity: just after the session ends."""
    now = challenge.issued_at + frames.duration_ms / 1000.0 + 1.0
    return min(now, challenge.expires_at - 1e-3)


@dataclass(frozen=True, slots=True)
class SuiteInputs:
    source: SourceVideo
    self_photos: tuple[Photo, ...]
    other_photos: tuple[Photo, ...]


Builder = Callable[[int], tuple[Challenge, FrameSequence]]


def _builders(
    inputs: SuiteInputs, config: LivenessConfig, level: Level, params: SuiteParams, now: float
) -> dict[str, Builder]:
    src = inputs.source
    photos = [*inputs.self_photos, *inputs.other_photos]
    donors = inputs.other_photos

    def photo_for(seed: int) -> Photo:
        """Half the photo attacks show the live person, half other people."""
        if seed % 2 == 0 and inputs.self_photos:
            return inputs.self_photos[(seed // 2) % len(inputs.self_photos)]
        return photos[seed % len(photos)] if not donors else donors[seed % len(donors)]

    def kw(seed: int) -> dict[str, Any]:
        return {"level": level, "seed": seed, "params": params, "now": now}

    return {
        "live": lambda s: build_live(src, config, **kw(s)),
        "photo_homography": lambda s: build_photo_homography(photo_for(s), config, **kw(s)),
        "print_artifacts": lambda s: build_print_artifacts(photo_for(s), config, **kw(s)),
        "replay_new_nonce": lambda s: build_replay_new_nonce(src, config, **kw(s)),
        "ignores_colour": lambda s: build_ignores_colour(src, config, **kw(s)),
        "face_swap": lambda s: build_face_swap(src, donors[s % len(donors)], config, **kw(s)),
    }


def session_seed(seed: int, kind: str, index: int) -> int:
    """Distinct, reproducible seeds per type and session (live and attacks never share one)."""
    return seed * 1_000_003 + (SESSION_TYPES.index(kind) + 1) * 100_000 + index * 97


def run_sessions(
    checker: LivenessChecker,
    inputs: SuiteInputs,
    config: LivenessConfig,
    *,
    level: Level,
    sessions: int,
    seed: int,
    params: SuiteParams,
    now: float,
    types: Sequence[str] = SESSION_TYPES,
    progress: Callable[[str, int, SessionRecord], None] | None = None,
) -> list[SessionRecord]:
    """Build and check ``sessions`` sessions of each type.  Replays are checked without a replay
    guard (it would catch them by fingerprint alone); a second checker sharing the models, with a
    guard that saw the original session, records whether the guard would have caught each."""
    builders = _builders(inputs, config, level, params, now)
    guarded = LivenessChecker(
        verifier=checker.verifier,
        tracker=checker.tracker,
        pad=checker.pad,
        config=checker.config,
        key=checker.key,
        replay_guard=MemoryReplayGuard(),
    )
    assert guarded.replay_guard is not None
    records: list[SessionRecord] = []
    for kind in types:
        for i in range(sessions):
            s = session_seed(seed, kind, i)
            challenge, frames = builders[kind](s)
            result = checker.check(challenge, frames, now=check_now(challenge, frames))
            rec = _record(kind, s, challenge, frames, result)
            if kind == "replay_new_nonce":
                original_nonce = frames.source.removeprefix("replay-of:")
                guarded.replay_guard.seen_before(fingerprint(frames), original_nonce)
                again = guarded.check(challenge, frames, now=check_now(challenge, frames))
                caught = any(r.value == "liveness.replay_suspected" for r in again.reasons)
                rec = replace(rec, replay_caught=caught)
            records.append(rec)
            if progress is not None:
                progress(kind, i, rec)
    return records


def _values_summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


def summarise(records: Sequence[SessionRecord]) -> dict[str, Any]:
    """BPCER, APCER per type and overall, and per type which signals / reasons stopped it."""
    by_type: dict[str, list[SessionRecord]] = {}
    for r in records:
        by_type.setdefault(r.kind, []).append(r)
    live = by_type.get("live", [])
    bp = rate(sum(1 for r in live if not r.passed), len(live))
    apcer_by_type: dict[str, Any] = {}
    stops: dict[str, Any] = {}
    for kind, rows in by_type.items():
        accepted = sum(1 for r in rows if r.passed)
        reasons = Counter(code for r in rows for code in r.reasons)
        failed = Counter(name for r in rows for name in r.failed_signals)
        alone = Counter(r.failed_signals[0] for r in rows if len(r.failed_signals) == 1)
        signal_names = sorted({name for r in rows for name in r.values})
        values = {
            name: _values_summary(
                [v for r in rows if (v := r.values.get(name)) is not None and np.isfinite(v)]
            )
            for name in signal_names
        }
        stops[kind] = {
            "n": len(rows),
            "rejected": len(rows) - accepted,
            "reason_counts": dict(reasons.most_common()),
            "signal_failures": dict(failed.most_common()),
            "stopped_by_only": dict(alone.most_common()),
            "signal_values": values,
        }
        if kind != "live":
            got = rate(accepted, len(rows))
            apcer_by_type[kind] = {
                "rate": got["rate"],
                "accepted": accepted,
                "n": len(rows),
                "ci95": got["ci95"],
            }
    worst = max(
        apcer_by_type.items(), key=lambda kv: -1.0 if kv[1]["rate"] is None else kv[1]["rate"]
    )
    replays = [r for r in by_type.get("replay_new_nonce", []) if r.replay_caught is not None]
    guard = rate(sum(1 for r in replays if r.replay_caught), len(replays))
    return {
        "bpcer": {
            "rate": bp["rate"],
            "rejected": bp["k"],
            "n": bp["n"],
            "ci95": bp["ci95"],
        },
        "apcer_by_type": apcer_by_type,
        "apcer": {"rate": worst[1]["rate"], "worst_type": worst[0], "ci95": worst[1]["ci95"]}
        if apcer_by_type
        else None,
        "by_type": stops,
        "replay_guard_catches": {
            "rate": guard["rate"],
            "caught": guard["k"],
            "n": guard["n"],
            "ci95": guard["ci95"],
            "note": "replays checked again with a MemoryReplayGuard that saw the original "
            "session's fingerprint; the main run has no guard",
        },
    }


# -- action detection -----------------------------------------------------------------------


def _neutral_mask(signals: FaceSignals, annotation: Annotation) -> np.ndarray:
    mask = np.zeros(len(signals), dtype=bool)
    for s in annotation.neutral:
        mask[s.start_frame : s.end_frame + 1] = True
    return mask & signals.found


def annotated_baseline(signals: FaceSignals, annotation: Annotation) -> Baseline:
    """The person's resting values from the annotated neutral frames (not from a challenge's
    lead-in: the recording has no challenge)."""
    mask = _neutral_mask(signals, annotation)
    if not mask.any():
        raise SuiteError("no annotated neutral frame has a tracked face")
    return Baseline(
        ear=float(np.median(signals.ear[mask])),
        mar=float(np.median(signals.mar[mask])),
        yaw=float(np.median(signals.yaw[mask])),
        pitch=float(np.median(signals.pitch[mask])),
        frames=int(mask.sum()),
    )


def action_detection(
    source: SourceVideo, th: ActionThresholds, *, image_size: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Per annotated event: was its action detected in ``[start − slack, end + slack]``?

    Uses the checker's own detector (:func:`shiren.liveness.actions.check_step`) on signals of
    the whole recording.  ``detected`` is what the checker would count (the action rose and no
    foreign action did); ``rose`` ignores foreign actions.  False alarms: windows of the same
    length inside annotated neutral stretches (checked without slack, so that they stay neutral;
    capped at the stretch's length) in which the action is detected anyway.
    """
    ann = source.annotation
    signals = face_signals(list(source.meshes), list(source.times_ms), image_size or source.size)
    base = annotated_baseline(signals, ann)
    curves = responses(signals, base, th)
    per_action: dict[str, dict[str, Any]] = {
        a.value: {"annotated": 0, "detected": 0, "rose": 0, "events": []} for a in Action
    }
    for e in ann.events:
        out = check_step(ActionStep(e.action, int(e.start_ms), int(e.end_ms)), signals, curves, th)
        row = per_action[e.action.value]
        row["annotated"] += 1
        row["detected"] += int(out.detected)
        row["rose"] += int(out.score >= 1.0)
        row["events"].append(
            {
                "frames": [e.start_frame, e.end_frame],
                "confidence": e.confidence,
                "detected": out.detected,
                "score": round(out.score, 4),
                "peak_ms": out.peak_ms,
                "face_frames": out.frames,
                "foreign": list(out.foreign),
                "reason": None if out.reason is None else out.reason.value,
            }
        )
    no_slack = replace(th, window_slack_ms=0.0)
    times = signals.t_ms
    for action in Action:
        row = per_action[action.value]
        lengths = [e.end_ms - e.start_ms for e in ann.events if e.action is action]
        length = (statistics.median(lengths) if lengths else 1000.0) + 2 * th.window_slack_ms
        windows = alarms = 0
        capped = False
        for s in ann.neutral:
            span = s.end_ms - s.start_ms
            size = min(length, span)
            capped |= size < length
            t0 = s.start_ms
            while t0 + size <= s.end_ms + 1e-6:
                step = ActionStep(action, int(t0), int(t0 + size))
                windows += 1
                alarms += int(check_step(step, signals, curves, no_slack).detected)
                t0 += size
        row["recall"] = row["detected"] / row["annotated"] if row["annotated"] else None
        row["false_alarms"] = {
            "windows": windows,
            "detected": alarms,
            "rate": alarms / windows if windows else None,
            "window_ms": length,
            "capped_to_neutral_stretch": capped,
        }
    del times
    return {
        "baseline": asdict(base),
        "frames_with_face": int(signals.found.sum()),
        "frames": len(signals),
        "per_action": per_action,
        "note": "baseline from the annotated neutral frames; event windows get the checker's "
        "slack; false-alarm windows have no slack and are capped to the neutral stretches, "
        "which are short (≤ 1.2 s), so they measure little",
    }


# -- bench ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_session(
    source: FrameSequence,
    config: LivenessConfig,
    *,
    n_frames: int,
    start: int,
    seed: int,
    now: float,
) -> tuple[Challenge, FrameSequence]:
    """``n_frames`` consecutive real frames resized to 640×360 (what the capture page uploads),
    their times spread over a fresh challenge's whole duration (its windows cover them)."""
    if not 2 <= n_frames <= len(source):
        raise SuiteError(f"--frames must be between 2 and {len(source)}", detail={"n": n_frames})
    first = max(0, min(start, len(source) - n_frames))
    challenge = draw_challenge(config, Level.NORMAL, seed=seed, now=now)
    images = [
        np.ascontiguousarray(
            cv2.resize(f.image, BENCH_SIZE, interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
        for f in source.frames[first : first + n_frames]
    ]
    span = float(challenge.duration_ms)
    times = [i * span / (n_frames - 1) for i in range(n_frames)]
    frames = validate(images, times, config.frames, nonce=challenge.nonce, source="bench")
    return challenge, frames


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def bench_liveness(
    checker: LivenessChecker,
    challenge: Challenge,
    frames: FrameSequence,
    *,
    repeat: int,
    warmup: int = 2,
) -> dict[str, Any]:
    """p50 / p95 / max of the whole check and p50 per stage, after ``warmup`` unmeasured runs."""
    now = check_now(challenge, frames)
    for _ in range(warmup):
        checker.check(challenge, frames, now=now)
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    passed = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = checker.check(challenge, frames, now=now)
        totals.append((time.perf_counter() - t0) * 1000.0)
        passed += int(result.passed)
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    p50 = _pct(totals, 50)
    return {
        "frames": len(frames),
        "size": list(frames.size),
        "repeat": repeat,
        "warmup": warmup,
        "check_ms": {"p50": p50, "p95": _pct(totals, 95), "max": max(totals)},
        "stages_p50_ms": {k: _pct(v, 50) for k, v in stages.items()},
        "frames_per_second": len(frames) * 1000.0 / p50 if p50 > 0 else None,
        "passed_runs": passed,
        "machine": {
            "cpu_count": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
        },
    }


__all__ = [
    "SessionRecord",
    "SuiteInputs",
    "action_detection",
    "annotated_baseline",
    "bench_liveness",
    "bench_session",
    "check_now",
    "lfw_photos",
    "load_source",
    "rate",
    "run_sessions",
    "self_photos",
    "session_seed",
    "sha256_of",
    "summarise",
]

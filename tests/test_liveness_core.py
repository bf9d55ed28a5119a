"""Liveness core: challenge, frames, actions, 3-D motion, colour flash, fusion.

Unit tests use hand-made signal curves (so each rule is checked on its own); the real-data tests
use the webcam video in ``shared/data`` and the real models.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from shiren.errors import ErrorCode, FramesError, InputError, ShirenError
from shiren.liveness.actions import check_challenge, check_step, responses
from shiren.liveness.challenge import (
    TURNS,
    Action,
    ActionStep,
    Challenge,
    draw_challenge,
    load_challenge,
    parse_challenge,
)
from shiren.liveness.config import Level, load_config, parse_config
from shiren.liveness.flash import check_colour
from shiren.liveness.frames import load_frames, validate
from shiren.liveness.parallax import planarity_residual
from shiren.liveness.signals import Baseline, FaceSignals, face_signals
from shiren.reasons import ReasonCode

CFG = load_config()
NOW = 1_800_000_000.0


# -- challenge ------------------------------------------------------------------------------


def test_seeded_draw_is_reproducible_and_unseeded_is_not() -> None:
    a = draw_challenge(CFG, "normal", seed=3, now=NOW)
    b = draw_challenge(CFG, "normal", seed=3, now=NOW)
    assert a == b
    c, d = draw_challenge(CFG, "normal", now=NOW), draw_challenge(CFG, "normal", now=NOW)
    assert c.nonce != d.nonce


@pytest.mark.parametrize("level", list(Level))
def test_draws_follow_the_level_policy(level: Level) -> None:
    policy = CFG.level(level)
    for seed in range(200):
        ch = draw_challenge(CFG, level, seed=seed, now=NOW)
        lo, hi = policy.actions
        assert lo <= len(ch.actions) <= hi
        assert len(ch.colours) == policy.colours
        names = [s.action for s in ch.actions]
        assert all(x != y for x, y in itertools.pairwise(names)), names
        colours = [c.name for c in ch.colours]
        assert all(x != y for x, y in itertools.pairwise(colours))
        if policy.turn_required:
            assert any(a in TURNS for a in names)
        # one timeline: lead-in, colours, actions, no overlaps
        t = ch.lead_in_ms
        for step in ch.colours:
            assert step.start_ms == t
            t = step.end_ms
        for act in ch.actions:
            assert act.start_ms >= t
            t = act.end_ms
        assert ch.duration_ms == t


def test_every_action_is_drawn() -> None:
    seen = {
        s.action for seed in range(300) for s in draw_challenge(CFG, seed=seed, now=NOW).actions
    }
    assert seen == set(Action)


def test_signature_detects_any_edit() -> None:
    key = b"k" * 32
    ch = draw_challenge(CFG, "normal", seed=1, now=NOW, key=key)
    assert ch.signature_valid(key)
    assert not ch.signature_valid(b"x" * 32)
    edited = replace(ch, actions=tuple(replace(s, end_ms=s.end_ms + 1) for s in ch.actions))
    assert not edited.signature_valid(key)
    # survives a JSON round trip
    again = load_challenge(ch.to_json())
    assert again == ch
    assert again.signature_valid(key)


def test_expiry() -> None:
    ch = draw_challenge(CFG, seed=1, now=NOW)
    assert not ch.expired(NOW + 10)
    assert ch.expired(NOW + CFG.challenge.ttl_s + 1)


def _raw(**changes: Any) -> dict[str, Any]:
    raw = draw_challenge(CFG, seed=2, now=NOW).to_dict()
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"nonce": "x"},
        _raw(nonce="short"),
        _raw(nonce="a" * 20 + "!!"),
        _raw(version=9),
        _raw(actions=[]),
        _raw(actions=[{"action": "dance", "start_ms": 0, "end_ms": 10}]),
        _raw(actions=[{"action": "blink", "start_ms": 10, "end_ms": 5}]),
        _raw(actions=[{"action": "blink", "start_ms": -5, "end_ms": 5}]),
        _raw(actions=[{"action": "blink", "start_ms": float("nan"), "end_ms": 5}]),
        _raw(
            actions=[
                {"action": "blink", "start_ms": 0, "end_ms": 1000},
                {"action": "nod", "start_ms": 500, "end_ms": 1500},
            ]
        ),
        _raw(colours=[{"rgb": [300, 0, 0], "start_ms": 0, "end_ms": 10}]),
        _raw(colours=[{"rgb": [1, 2], "start_ms": 0, "end_ms": 10}]),
        _raw(expires_at=0),
        _raw(signature=12),
    ],
)
def test_bad_challenges_are_typed_errors(raw: Any) -> None:
    with pytest.raises(InputError) as info:
        parse_challenge(raw)
    assert info.value.code == ErrorCode.CHALLENGE_INVALID


def test_challenge_json_must_parse() -> None:
    with pytest.raises(InputError) as info:
        load_challenge("{not json")
    assert info.value.code == ErrorCode.CHALLENGE_INVALID


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"challenge": {"unknown": 1}},
        {"levels": {"normal": {"actions": [3, 2]}}},
        {"levels": {"normal": {"required": ["telepathy"]}}},
        {"levels": {"extreme": {}}},
        {"challenge": {"colour_step_ms": 0}},
        {"levels": {"normal": {"passive_threshold": "paranoid"}}},
    ],
)
def test_bad_config_is_a_config_error(raw: dict[str, Any]) -> None:
    with pytest.raises(ShirenError) as info:
        parse_config(raw, "test")
    assert info.value.code == ErrorCode.CONFIG_INVALID


def test_shipped_config_loads_every_level() -> None:
    for level in Level:
        assert 0.0 < CFG.passive_threshold(level) < 1.0
    assert CFG.passive_threshold("low") <= CFG.passive_threshold("normal")
    assert CFG.passive_threshold("normal") <= CFG.passive_threshold("high")


# -- frames ---------------------------------------------------------------------------------


def _imgs(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    return [np.full((size[1], size[0], 3), i % 255, np.uint8) for i in range(n)]


def _times(n: int, step: float = 66.7) -> list[float]:
    return [i * step for i in range(n)]


@pytest.mark.parametrize(
    ("images", "times", "code"),
    [
        ([], [], ErrorCode.FRAMES_EMPTY),
        (_imgs(1), [0.0], ErrorCode.FRAMES_TOO_FEW),
        (_imgs(5), _times(5), ErrorCode.FRAMES_TOO_FEW),
        (_imgs(9) + _imgs(1, (32, 32)), _times(10), ErrorCode.FRAMES_INCONSISTENT),
        (_imgs(10), _times(9), ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), [*_times(9), 100.0], ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), [*_times(9), float("nan")], ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), [-5.0, *_times(9)[1:]], ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), _times(10, 1e6), ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), [*_times(9), 5000.0], ErrorCode.FRAMES_BAD_TIMESTAMPS),
        (_imgs(10), [0.0] * 10, ErrorCode.FRAMES_BAD_TIMESTAMPS),
    ],
    ids=[
        "none",
        "one",
        "too-few",
        "mixed-sizes",
        "missing-time",
        "backwards",
        "nan",
        "negative",
        "absurd-length",
        "long-gap",
        "all-equal",
    ],
)
def test_bad_sequences_are_typed_errors(
    images: list[np.ndarray], times: list[float], code: ErrorCode
) -> None:
    with pytest.raises(FramesError) as info:
        validate(images, times, CFG.frames)
    assert info.value.code == code


def test_too_many_frames() -> None:
    limits = replace(CFG.frames, max_frames=12)
    with pytest.raises(FramesError) as info:
        validate(_imgs(13), _times(13), limits)
    assert info.value.code == ErrorCode.FRAMES_TOO_FEW


def _write_frames(folder: Path, n: int, meta: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(_imgs(n)):
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    if meta is not None:
        (folder / "frames.json").write_text(json.dumps(meta))


def test_directory_with_metadata(tmp_path: Path) -> None:
    meta = {
        "nonce": "n" * 32,
        "frames": [{"file": f"{i:04d}.png", "t_ms": 100.0 * i} for i in range(10)],
    }
    _write_frames(tmp_path / "s", 10, meta)
    seq = load_frames(tmp_path / "s", CFG.frames)
    assert len(seq) == 10
    assert seq.nonce == "n" * 32
    assert seq.times_ms[-1] == 900.0
    assert math.isclose(seq.fps, 10.0)


def test_directory_without_metadata_uses_fps(tmp_path: Path) -> None:
    _write_frames(tmp_path / "s", 10, None)
    seq = load_frames(tmp_path / "s", CFG.frames, fps=20)
    assert seq.times_ms[1] == pytest.approx(50.0)
    assert seq.nonce is None


@pytest.mark.parametrize(
    "meta",
    [
        {"frames": "nope"},
        {"frames": [{"file": "../0000.png", "t_ms": 0}]},
        {"frames": [{"file": "0000.png", "t_ms": "soon"}]},
        {"frames": [{"t_ms": 0}]},
    ],
)
def test_bad_metadata(tmp_path: Path, meta: dict[str, Any]) -> None:
    _write_frames(tmp_path / "s", 10, meta)
    with pytest.raises(InputError):
        load_frames(tmp_path / "s", CFG.frames)


def test_corrupt_frame_in_a_directory(tmp_path: Path) -> None:
    _write_frames(tmp_path / "s", 10, None)
    (tmp_path / "s" / "0003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError) as info:
        load_frames(tmp_path / "s", CFG.frames)
    assert info.value.code.value.startswith("input.")


@pytest.mark.parametrize(
    "content", [b"", b"not a video at all" * 100, b"\x1aE\xdf\xa3" + b"\0" * 500]
)
def test_unreadable_video(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "clip.webm"
    path.write_bytes(content)
    with pytest.raises(FramesError) as info:
        load_frames(path, CFG.frames)
    assert info.value.code == ErrorCode.VIDEO_UNREADABLE


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FramesError) as info:
        load_frames(tmp_path / "nothing", CFG.frames)
    assert info.value.code == ErrorCode.INPUT_FILE_NOT_FOUND


def test_real_video_loads(real_mov_frames: Any) -> None:
    assert len(real_mov_frames) == 199
    assert real_mov_frames.size == (960, 540)
    assert 14.0 < real_mov_frames.fps < 16.0


# -- actions on hand-made curves ---------------------------------------------------------------


def _signals(
    n: int = 60, step: float = 66.7, ear: float = 0.3, **curves: np.ndarray
) -> FaceSignals:
    cols = {
        "ear": np.full(n, ear),
        "mar": np.full(n, 0.02),
        "yaw": np.zeros(n),
        "pitch": np.zeros(n),
        "roll": np.zeros(n),
        "iod": np.full(n, 100.0),
    }
    cols.update(curves)
    return FaceSignals(t_ms=np.arange(n) * step, meshes=tuple([None] * n), **cols)


def _base(s: FaceSignals) -> Baseline:
    return Baseline(ear=float(s.ear[0]), mar=float(s.mar[0]), yaw=0.0, pitch=0.0, frames=5)


def _step(action: Action, start: int = 1000, end: int = 3000) -> ActionStep:
    return ActionStep(action, start, end)


@pytest.mark.parametrize("open_ear", [0.3, 0.15])
def test_blink_relative_to_own_baseline(open_ear: float) -> None:
    ear = np.full(60, open_ear)
    ear[25:27] = open_ear * 0.5  # two closed frames (~130 ms)
    s = _signals(ear=ear)
    out = check_step(_step(Action.BLINK), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert out.detected, out


def test_half_closed_eyes_are_not_a_blink() -> None:
    ear = np.full(60, 0.3)
    ear[25:27] = 0.3 * 0.85
    s = _signals(ear=ear)
    out = check_step(_step(Action.BLINK), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert not out.detected
    assert out.reason == ReasonCode.LIVENESS_ACTION_MISSING


def test_eyes_that_stay_closed_are_not_a_blink() -> None:
    ear = np.full(60, 0.3)
    ear[20:59] = 0.1
    s = _signals(ear=ear)
    out = check_step(_step(Action.BLINK), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert not out.detected


def test_blink_outside_its_window_does_not_count() -> None:
    ear = np.full(60, 0.3)
    ear[5:7] = 0.1  # at ~400 ms, before the window (1000–3000 ms, slack 400)
    s = _signals(ear=ear)
    out = check_step(_step(Action.BLINK), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert not out.detected


@pytest.mark.parametrize(
    ("action", "curve", "value"),
    [
        (Action.TURN_LEFT, "yaw", 25.0),
        (Action.TURN_RIGHT, "yaw", -25.0),
        (Action.NOD, "pitch", 15.0),
        (Action.NOD, "pitch", -15.0),
        (Action.OPEN_MOUTH, "mar", 0.45),
    ],
)
def test_actions_rise_from_neutral(action: Action, curve: str, value: float) -> None:
    data = np.zeros(60) if curve != "mar" else np.full(60, 0.02)
    data[25:40] = value
    s = _signals(**{curve: data})
    out = check_step(_step(action), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert out.detected, out
    # the opposite turn is not detected, and is reported as foreign in its window
    if action in TURNS:
        other = Action.TURN_RIGHT if action is Action.TURN_LEFT else Action.TURN_LEFT
        wrong = check_step(_step(other), s, responses(s, _base(s), CFG.actions), CFG.actions)
        assert not wrong.detected
        assert wrong.reason in (
            ReasonCode.LIVENESS_ACTION_MISSING,
            ReasonCode.LIVENESS_UNEXPECTED_ACTION,
        )


def test_an_action_already_held_at_the_window_start_does_not_count() -> None:
    yaw = np.full(60, 25.0)  # turned all along
    s = _signals(yaw=yaw)
    base = Baseline(ear=0.3, mar=0.02, yaw=0.0, pitch=0.0, frames=5)
    out = check_step(_step(Action.TURN_LEFT), s, responses(s, base, CFG.actions), CFG.actions)
    assert not out.detected


def test_a_foreign_action_fails_the_window() -> None:
    yaw = np.zeros(60)
    yaw[22:28] = 25.0  # turn left …
    yaw[32:38] = -25.0  # … and right, in a turn-left window
    s = _signals(yaw=yaw)
    out = check_step(_step(Action.TURN_LEFT), s, responses(s, _base(s), CFG.actions), CFG.actions)
    assert not out.detected
    assert out.reason == ReasonCode.LIVENESS_UNEXPECTED_ACTION
    assert "turn_right" in out.foreign


def test_returning_from_the_previous_turn_is_not_foreign() -> None:
    yaw = np.zeros(60)
    yaw[:18] = -25.0  # still turned right from the previous window, returning at ~1.2 s
    yaw[30:40] = 25.0
    s = _signals(yaw=yaw)
    base = Baseline(ear=0.3, mar=0.02, yaw=0.0, pitch=0.0, frames=5)
    out = check_step(_step(Action.TURN_LEFT), s, responses(s, base, CFG.actions), CFG.actions)
    assert out.detected, out


def test_windows_without_faces_are_face_lost() -> None:
    s = _signals(ear=np.full(60, np.nan))
    base = Baseline(ear=0.3, mar=0.02, yaw=0.0, pitch=0.0, frames=5)
    out = check_step(_step(Action.BLINK), s, responses(s, base, CFG.actions), CFG.actions)
    assert out.reason == ReasonCode.LIVENESS_FACE_LOST


def test_challenge_needs_every_action_in_order() -> None:
    yaw = np.zeros(90)
    yaw[25:35] = 25.0  # turn left in the first window only
    s = _signals(n=90, yaw=yaw)
    ch = Challenge(
        nonce="a" * 32,
        level=Level.NORMAL,
        issued_at=0,
        expires_at=1e12,
        lead_in_ms=0,
        actions=(_step(Action.TURN_LEFT, 1000, 3000), _step(Action.TURN_RIGHT, 3000, 5000)),
        colours=(),
    )
    out = check_challenge(ch, s, _base(s), CFG.actions)
    assert not out.passed
    assert [a.detected for a in out.actions] == [True, False]
    swapped = replace(ch, actions=(ch.actions[1], ch.actions[0]))
    assert not check_challenge(swapped, s, _base(s), CFG.actions).actions[0].detected


# -- 3-D motion ------------------------------------------------------------------------------


def _rot_homography(w: int, h: int, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    f, d = float(w), 600.0
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    r = ry @ rx
    t = (np.eye(3) - r) @ np.array([0, 0, d])
    return np.asarray(k @ (r + np.outer(t, [0, 0, 1.0]) / d) @ np.linalg.inv(k))


def test_a_photo_turned_as_a_plane_is_flat(real_checker: Any, real_mov_frames: Any) -> None:
    photo = real_mov_frames.frames[0].image
    h, w = photo.shape[:2]
    seq = [
        cv2.warpPerspective(
            photo, _rot_homography(w, h, d, d / 5), (w, h), borderMode=cv2.BORDER_REPLICATE
        )
        for d in range(0, 45, 5)
    ]
    meshes = real_checker.tracker.track(seq)
    assert meshes[0] is not None
    assert meshes[-1] is not None
    got = planarity_residual(seq, meshes[0], meshes[-1])
    assert got is not None
    assert got[0] < CFG.parallax.pass_residual / 2, got


def test_a_real_head_turn_shows_parallax(real_checker: Any, real_mov_frames: Any) -> None:
    # frames 134–139: the webcam subject turns to his left by ~30° (hand-annotated event)
    seq = [f.image for f in real_mov_frames.frames[134:140]]
    meshes = real_checker.tracker.track(seq)
    got = planarity_residual(seq, meshes[0], meshes[-1])
    assert got is not None
    assert got[0] > CFG.parallax.pass_residual, got


# -- colour flash ----------------------------------------------------------------------------


def _tinted(
    frames: list[np.ndarray], times: list[float], ch: Challenge, meshes: list[Any], gain: float
) -> list[np.ndarray]:
    out = []
    for img, t, mesh in zip(frames, times, meshes, strict=True):
        step = ch.colour_at(t - 66.0)
        if step is None or mesh is None:
            out.append(img)
            continue
        mask = np.zeros(img.shape[:2], np.float32)
        cv2.fillConvexPoly(mask, cv2.convexHull(mesh[:468, :2].astype(np.int32)), 1.0)
        mask = cv2.GaussianBlur(mask, (31, 31), 0)[..., None]
        c = np.array(step.rgb, np.float32) / 255.0
        out.append(np.clip(img * (1 + mask * gain * (c - c.mean())), 0, 255).astype(np.uint8))
    return out


def test_colour_follows_the_right_sequence_only(real_checker: Any, real_mov_frames: Any) -> None:
    """Simulated reflection (3 %) of the challenge's colours on still webcam frames: the right
    sequence correlates, another random sequence and no reflection do not pass."""
    idx = list(range(15)) + list(range(180, 199)) + list(range(14, -1, -1))
    frames = [real_mov_frames.frames[i].image for i in idx]
    times = [i * 66.7 for i in range(len(frames))]
    meshes = real_checker.tracker.track(frames)
    passed_right = passed_other = 0
    for k in range(4):
        ch = draw_challenge(CFG, "normal", seed=100 + k, now=NOW)
        tinted = _tinted(frames, times, ch, meshes, 0.03)
        seq = validate(tinted, times, CFG.frames)
        sig = face_signals(real_checker.tracker.track(tinted), times, seq.size)
        passed_right += check_colour(ch, seq, sig, CFG.colour).passed
        other = draw_challenge(CFG, "normal", seed=500 + k, now=NOW)
        passed_other += check_colour(other, seq, sig, CFG.colour).passed
    assert passed_right == 4
    assert passed_other == 0
    plain = validate(frames, times, CFG.frames)
    sig = face_signals(meshes, times, plain.size)
    untinted = check_colour(draw_challenge(CFG, seed=7, now=NOW), plain, sig, CFG.colour)
    assert not untinted.passed


# -- the whole check on the live video -----------------------------------------------------------


def _live_challenge(**changes: Any) -> Challenge:
    """A challenge whose windows match what the webcam subject does (hand annotation):
    open mouth (1.27–5.9 s), turn right (6.9–8.9 s), turn left (9.3–11.8 s)."""
    raw = {
        "nonce": "b" * 32,
        "level": "low",
        "issued_at": NOW,
        "expires_at": NOW + 180,
        "lead_in_ms": 1000,
        "actions": [
            {"action": "open_mouth", "start_ms": 1000, "end_ms": 3600},
            {"action": "turn_right", "start_ms": 5600, "end_ms": 8200},
            {"action": "turn_left", "start_ms": 8300, "end_ms": 10900},
        ],
        "colours": [],
    }
    raw.update(changes)
    return parse_challenge(raw)


def test_live_video_passes_a_challenge_it_answers(real_checker: Any, real_mov_frames: Any) -> None:
    result = real_checker.check(_live_challenge(), real_mov_frames, now=NOW + 5)
    assert result.passed, result.to_dict()
    assert result.signals["challenge"].passed
    assert result.signals["identity"].passed
    assert result.signals["passive"].passed
    assert result.signals["parallax"].passed  # measured though not required at "low"
    assert 0.5 <= result.score <= 1.0
    payload = json.dumps(result.to_dict("zh-CN"), ensure_ascii=False)
    assert "passed" in payload


def test_live_video_fails_a_challenge_it_does_not_answer(
    real_checker: Any, real_mov_frames: Any
) -> None:
    swapped = _live_challenge(
        actions=[
            {"action": "open_mouth", "start_ms": 1000, "end_ms": 3600},
            {"action": "turn_left", "start_ms": 5600, "end_ms": 8200},
            {"action": "turn_right", "start_ms": 8300, "end_ms": 10900},
        ]
    )
    result = real_checker.check(swapped, real_mov_frames, now=NOW + 5)
    assert not result.passed
    assert result.score < 0.5
    assert ReasonCode.LIVENESS_ACTION_MISSING in result.reasons or (
        ReasonCode.LIVENESS_UNEXPECTED_ACTION in result.reasons
    )


def test_normal_level_without_a_colour_response_fails(
    real_checker: Any, real_mov_frames: Any
) -> None:
    ch = _live_challenge(level="normal")
    result = real_checker.check(ch, real_mov_frames, now=NOW + 5)
    assert not result.passed
    assert result.signals["colour"].required
    assert not result.signals["colour"].passed


def test_expired_wrong_nonce_forged_and_replayed(real_checker: Any, real_mov_frames: Any) -> None:
    from shiren.liveness.check import LivenessChecker, MemoryReplayGuard

    ch = _live_challenge()
    late = real_checker.check(ch, real_mov_frames, now=NOW + 10_000)
    assert late.reasons == (ReasonCode.LIVENESS_CHALLENGE_EXPIRED,)
    other = replace(real_mov_frames, nonce="c" * 32)
    assert real_checker.check(ch, other, now=NOW + 5).reasons == (
        ReasonCode.LIVENESS_CHALLENGE_MISMATCH,
    )
    key = b"s" * 32
    signed = LivenessChecker(
        verifier=real_checker.verifier,
        tracker=real_checker.tracker,
        pad=real_checker.pad,
        key=key,
        replay_guard=MemoryReplayGuard(),
    )
    assert signed.check(ch, real_mov_frames, now=NOW + 5).reasons == (
        ReasonCode.LIVENESS_CHALLENGE_MISMATCH,
    )
    good = ch.signed(key)
    assert signed.check(good, real_mov_frames, now=NOW + 5).passed
    again = replace(good, nonce="d" * 32).signed(key)
    assert signed.check(again, real_mov_frames, now=NOW + 5).reasons == (
        ReasonCode.LIVENESS_REPLAY_SUSPECTED,
    )


def test_no_passive_model_fails_closed(real_checker: Any, real_mov_frames: Any) -> None:
    from shiren.liveness.check import LivenessChecker

    blind = LivenessChecker(verifier=real_checker.verifier, tracker=real_checker.tracker, pad=None)
    result = blind.check(_live_challenge(), real_mov_frames, now=NOW + 5)
    assert not result.passed
    assert ReasonCode.LIVENESS_PASSIVE_UNAVAILABLE in result.reasons


def test_a_face_swapped_in_mid_way_is_caught(real_checker: Any, real_mov_frames: Any) -> None:
    """After 6 s the frames show another person's photo (LFW), moved as the head turns."""
    from tests.conftest import lfw

    other = cv2.cvtColor(cv2.imread(str(lfw("Colin_Powell", 40))), cv2.COLOR_BGR2RGB)
    scene = real_mov_frames.frames[0].image.copy()
    big = cv2.resize(other, (300, 300))
    images = []
    for k, frame in enumerate(real_mov_frames.frames):
        if frame.t_ms < 6000:
            images.append(frame.image)
            continue
        img = scene.copy()
        shift = int(20 * math.sin(k / 5))
        img[120:420, 330 + shift : 630 + shift] = big
        images.append(img)
    seq = validate(images, real_mov_frames.times_ms, CFG.frames)
    result = real_checker.check(_live_challenge(), seq, now=NOW + 5)
    assert not result.passed

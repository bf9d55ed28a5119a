"""The liveness evaluation's session builders and the ``shiren eval liveness`` report.

Builders must hand the checker what a capture page would (strictly increasing times, one frame
size, the challenge's nonce), and a live session must really answer its challenge in time: an
event placed outside its window would measure the assembly, not the checker.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shiren.eval.liveness_suite import (
    DEFAULT_ANNOTATION,
    SuiteError,
    SuiteParams,
    build_face_swap,
    build_ignores_colour,
    build_live,
    build_photo_homography,
    build_print_artifacts,
    build_replay_new_nonce,
    draw_answerable,
    face_mask,
    live_timeline,
    load_annotation,
    parse_annotation,
    reflect,
)
from shiren.liveness.challenge import Action
from shiren.liveness.config import load_config
from shiren.liveness.frames import FrameSequence
from tests.conftest import LFW, REAL_MOV, require

NOW = 1_800_000_000.0


def _stand_in(times: list[float]) -> dict[str, Any]:
    """A hand-made annotation (the shape of the real one) for tests without the video."""
    return {
        "frame_times_ms": times,
        "events": [
            {
                "action": "turn_left",
                "start_ms": times[20],
                "end_ms": times[40],
                "peak_ms": times[30],
                "start_frame": 20,
                "end_frame": 40,
                "peak_frame": 30,
                "confidence": "high",
                "note": "",
            },
            {
                "action": "open_mouth",
                "start_ms": times[45],
                "end_ms": times[90],
                "peak_ms": times[85],
                "start_frame": 45,
                "end_frame": 90,
                "peak_frame": 85,
                "confidence": "high",
                "note": "long: the peak is late",
            },
            {
                "action": "blink",
                "start_ms": times[5],
                "end_ms": times[7],
                "peak_ms": times[6],
                "start_frame": 5,
                "end_frame": 7,
                "peak_frame": 6,
                "confidence": "low",
                "note": "",
            },
        ],
        "neutral": [{"start_ms": 0, "end_ms": times[12], "start_frame": 0, "end_frame": 12}],
        "face_not_visible": [],
    }


def _stand_in_source(n: int = 100) -> Any:
    from shiren.eval.liveness_suite import SourceVideo

    times = [round(i * 1000 / 15) + (i % 3) for i in range(n)]
    ann = parse_annotation(_stand_in([float(t) for t in times]))
    images = tuple(np.full((36, 64, 3), i % 250, dtype=np.uint8) for i in range(n))
    return SourceVideo(images, tuple(float(t) for t in times), (None,) * n, ann)


def test_annotation_validation_rejects_out_of_order_events() -> None:
    raw = _stand_in([float(i * 66) for i in range(100)])
    raw["events"][0]["peak_frame"] = 50  # after its end frame
    with pytest.raises(SuiteError):
        parse_annotation(raw)
    with pytest.raises(SuiteError):
        parse_annotation({"frame_times_ms": [0, 0, 1]})


def test_available_actions_follow_confidence() -> None:
    ann = parse_annotation(_stand_in([float(i * 66) for i in range(100)]))
    assert ann.available("high") == {Action.TURN_LEFT, Action.OPEN_MOUTH}
    assert Action.BLINK in ann.available("low")


def test_draw_answerable_uses_only_available_actions() -> None:
    config = load_config()
    allowed = frozenset({Action.TURN_LEFT, Action.OPEN_MOUTH})
    for seed in range(10):
        challenge, used = draw_answerable(config, "normal", seed * 50, allowed, now=NOW)
        assert used >= seed * 50
        assert {s.action for s in challenge.actions} <= allowed


def test_live_timeline_places_every_peak_inside_its_window() -> None:
    source = _stand_in_source()
    config = load_config()
    allowed = source.annotation.available("high")
    for seed in range(12):
        challenge, _ = draw_answerable(config, "normal", seed * 31, allowed, now=NOW)
        tl = live_timeline(source, challenge, random.Random(seed), SuiteParams())
        times = [t for _, t in tl.frames]
        assert all(b > a for a, b in itertools.pairwise(times))
        assert times[0] == 0.0
        assert times[-1] >= challenge.duration_ms - 100
        assert len(tl.placements) == len(challenge.actions)
        for p, step in zip(tl.placements, challenge.actions, strict=True):
            assert p.action is step.action
            assert step.start_ms <= p.peak_t_ms < step.end_ms
            # the peak frame itself is in the session at that time
            assert (p.event.peak_frame, p.peak_t_ms) in tl.frames
        # the still phase uses only the neutral stretch
        still = [
            i for i, t in tl.frames if t < challenge.still_until_ms - SuiteParams().pre_roll_ms
        ]
        assert all(tl.neutral.start_frame <= i <= tl.neutral.end_frame for i in still)


def test_reflection_tints_only_the_face_towards_the_colour() -> None:
    image = np.full((100, 100, 3), 120, dtype=np.uint8)
    pts = np.array(
        [[50 + 20 * np.cos(a), 50 + 25 * np.sin(a)] for a in np.linspace(0, 6.2, 40)],
        dtype=np.float32,
    )
    mask = face_mask(image.shape, pts)
    out = reflect(image, mask, (255, 0, 0), 0.08)
    centre, corner = out[50, 50].astype(int), out[2, 2].astype(int)
    assert centre[0] > 120 > centre[1]
    assert centre[1] == centre[2]
    assert list(corner) == [120, 120, 120]
    assert reflect(image, mask, None, 0.08) is image


def _check_sequence(challenge: Any, frames: FrameSequence, size: tuple[int, int]) -> None:
    times = frames.times_ms
    assert all(b > a for a, b in itertools.pairwise(times))
    assert {f.image.shape for f in frames.frames} == {(size[1], size[0], 3)}
    assert frames.nonce == challenge.nonce
    assert times[0] >= 0
    assert times[-1] <= challenge.duration_ms + 100
    assert challenge.actions
    assert not challenge.expired(challenge.issued_at + 1)


@pytest.fixture(scope="module")
def material() -> Any:
    """The annotated recording with its meshes, a self print and two LFW donors."""
    from shiren.eval.liveness_eval import lfw_photos, load_source, self_photos
    from shiren.liveness.frames import load_frames
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    config = load_config()
    frames = load_frames(require(REAL_MOV), config.frames)
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    source = load_source(frames, tracker, load_annotation(require(DEFAULT_ANNOTATION)))
    others, _ = lfw_photos(require(LFW), tracker, 2, 0)
    return source, self_photos(source, 0, 1), others


def test_builders_make_valid_sessions(material: Any) -> None:
    source, selfies, others = material
    config = load_config()
    kw: dict[str, Any] = {"seed": 3, "now": NOW}
    sessions = {
        "live": build_live(source, config, **kw),
        "replay": build_replay_new_nonce(source, config, **kw),
        "ignores_colour": build_ignores_colour(source, config, **kw),
        "swap": build_face_swap(source, others[0], config, **kw),
        "photo": build_photo_homography(selfies[0], config, **kw),
        "print": build_print_artifacts(others[1], config, **kw),
    }
    for challenge, frames in sessions.values():
        _check_sequence(challenge, frames, (960, 540))
    live_challenge, live_frames = sessions["live"]
    replay_challenge, replay_frames = sessions["replay"]
    assert replay_challenge.nonce != live_challenge.nonce
    assert replay_frames.source == f"replay-of:{live_challenge.nonce}"
    assert all(
        np.array_equal(a.image, b.image)
        for a, b in zip(live_frames.frames, replay_frames.frames, strict=True)
    )
    # the swap changes the second half only
    _, swap_frames = sessions["swap"]
    assert np.array_equal(swap_frames.frames[2].image, live_frames.frames[2].image)
    assert not np.array_equal(swap_frames.frames[-3].image, live_frames.frames[-3].image)


def test_eval_liveness_cli_writes_report(tmp_path: Path) -> None:
    require(REAL_MOV)
    require(LFW)
    from typer.testing import CliRunner

    from shiren.cli.main import app

    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app,
        ["eval", "liveness", "--out", str(out), "--sessions", "2", "--donors", "2"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text("utf-8"))
    for key in (
        "bpcer",
        "apcer",
        "apcer_by_type",
        "by_type",
        "action_detection",
        "config",
        "provenance",
        "replay_guard_catches",
        "live_challenges",
    ):
        assert key in report
    assert report["colour_simulated"] is True
    assert 0.0 <= report["bpcer"]["rate"] <= 1.0
    assert report["bpcer"]["n"] == 2
    assert set(report["apcer_by_type"]) == {
        "photo_homography",
        "print_artifacts",
        "replay_new_nonce",
        "ignores_colour",
        "face_swap",
    }
    for row in report["apcer_by_type"].values():
        assert 0.0 <= row["rate"] <= 1.0
        assert row["n"] == 2
        lo, hi = row["ci95"]
        assert 0.0 <= lo <= row["rate"] <= hi <= 1.0
    assert report["apcer"]["rate"] == max(r["rate"] for r in report["apcer_by_type"].values())
    per_action = report["action_detection"]["per_action"]
    assert per_action["turn_left"]["annotated"] >= 1
    for row in per_action.values():
        assert row["detected"] <= row["annotated"]
    data = report["provenance"]["settings"]["data"]
    assert len(data["video"]["sha256"]) == 64
    assert len(report["sessions"]) == 12

"""The injection evaluation's accounting on hand-checkable records, and its session builders on a
small real slice (shiren.eval.injection_eval, shiren.eval.injection_sessions)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

from shiren.eval.injection_eval import (
    PHYSICAL,
    SessionRecord,
    fit_thresholds,
    fold_of,
    judge_folds,
    summarise,
)
from shiren.eval.injection_material import (
    default_specs,
    load_recording,
    load_traces,
    traces_for_fold,
)
from shiren.eval.injection_sessions import (
    ATTACK_KINDS,
    VARIANTS,
    Bench,
    answer,
    build,
    reflected,
)
from shiren.eval.injection_sim import DEFAULT_SIM
from shiren.eval.liveness_suite import render_live
from shiren.eval.suite_material import SuiteParams
from shiren.liveness.config import Level, load_config
from tests.conftest import SHARED, require


def _record(kind: str, person: str, fold: int, **values: float | None) -> SessionRecord:
    return SessionRecord(
        kind=kind, variant="v", recording=person, person=person, fold=fold, seed=0, nonce="n",
        frames=10, values=dict(values), details={}, build_ms=0.0, measure_ms=0.0,
    )  # fmt: skip


def test_lines_sit_past_every_live_value_by_the_margin() -> None:
    live = [
        _record("live", "a", 0, repeat_fraction=0.0, flash_response=r) for r in (0.9, 0.95, 0.9)
    ]
    lines = fit_thresholds(live, margin=0.25)
    # repeats: all live 0 → spread floors at the resolution (0.005); line 0 + 0.005
    assert lines["repeat_fraction"].threshold == pytest.approx(0.005)
    # flash (low): min 0.9, median 0.9 → spread 0.02 (resolution), line 0.9 − 0.02
    assert lines["flash_response"].direction == "low"
    assert lines["flash_response"].threshold == pytest.approx(0.88)
    assert lines["jitter_ms"].threshold == pytest.approx(0.05)  # half the 0.1 ms resolution
    assert lines["upload_deficit_s"] == PHYSICAL["upload_deficit_s"]  # physics, never fitted
    assert lines["min_interval_ratio"].threshold == pytest.approx(4.0 / 80.0)  # the timer clamp
    assert "grid_foreign" not in lines  # never measured: no line


def test_folds_alternate_by_sorted_person() -> None:
    persons = ["P09", "zubair", "P08", "P10"]
    assert [fold_of(p, persons) for p in ("P08", "P09", "P10", "zubair")] == [0, 1, 0, 1]


def test_each_fold_is_judged_by_the_other_folds_live_lines() -> None:
    records = [
        _record("live", "a", 0, repeat_fraction=0.0),
        _record("live", "b", 1, repeat_fraction=0.2),  # odd live person: only fold 1
        _record("retimed", "a", 0, repeat_fraction=0.1),
        _record("retimed", "b", 1, repeat_fraction=0.1),
    ]
    judged, lines = judge_folds(records, margin=0.0)
    # fold 0 judged by fold 1's live (line 0.2 + 0.005): the retimed 0.1 passes unseen
    # fold 1 judged by fold 0's live (line 0.005): the odd live person is a false alarm
    got = {(j.record.kind, j.record.fold): j.suspected for j in judged}
    assert got == {
        ("live", 0): False,
        ("retimed", 0): False,
        ("live", 1): True,
        ("retimed", 1): True,
    }
    assert set(lines) == {"test_fold_0", "test_fold_1"}
    summary = summarise(judged, target=0.05)
    assert summary["bpcer"]["k"] == 1
    assert summary["bpcer"]["n"] == 2
    assert summary["apcer_by_type"]["retimed"]["rate"] == pytest.approx(0.5)
    assert summary["apcer_by_type"]["retimed"]["caught_by_only"] == {"repeat_fraction": 1}
    assert summary["goal"]["met_on_point_estimates"] is False
    lo, hi = summary["bpcer"]["ci95"]
    assert lo < 0.5 < hi


# -- builders on a small real slice ----------------------------------------------------------


@pytest.fixture(scope="module")
def bench_and_recording() -> tuple[Bench, Any]:
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    require(SHARED / "grid_talking_faces")
    config = load_config()
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    spec = next(s for s in default_specs(SHARED) if s.person == "P08")
    rec = load_recording(spec, tracker, config.frames)
    traces, _ = load_traces()
    bench = Bench(
        config, Level.NORMAL, traces_for_fold(traces, 0), DEFAULT_SIM, SuiteParams(), time.time()
    )
    return bench, rec


def test_lazy_reflection_renders_what_render_live_renders(
    bench_and_recording: tuple[Bench, Any],
) -> None:
    bench, rec = bench_and_recording
    challenge, timeline = answer(rec, bench, seed=5)
    images, _, _ = render_live(rec.source, timeline, colours=challenge, gain=0.08, delay=1)
    make = reflected(rec, timeline, challenge, 0.08, 1)
    for k in (0, 12, 20, 31, len(images) - 1):
        assert np.array_equal(make(k), images[k])


@pytest.mark.parametrize("kind", ["live", *ATTACK_KINDS])
def test_every_kind_builds_a_valid_upload(
    bench_and_recording: tuple[Bench, Any], kind: str
) -> None:
    bench, rec = bench_and_recording
    session = build(kind, rec, bench, 17, VARIANTS[kind][0])
    assert session.frames.nonce == session.challenge.nonce
    assert len(session.frames) >= 8
    assert session.upload.received_at is not None
    times = session.frames.times_ms
    assert all(b > a for a, b in itertools.pairwise(times))

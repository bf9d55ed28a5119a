"""``shiren eval injection``: the injection check on live and injected sessions, by person.

Protocol (ISO/IEC 30107-3 vocabulary, applied to injection as CEN/TS 18099 does):

* sessions are built at run time from real recordings (:mod:`shiren.eval.injection_sessions`);
* the people are split into two folds; the lines (:class:`FeatureThreshold`) are fitted on the
  **live** sessions of one fold (:func:`fit_thresholds`) and every session of the *other* fold
  is judged with them, then the folds swap.  No person, recording or browser trace is on both
  sides of a split; every session is judged once, by lines that never saw its person;
* BPCER: live sessions judged injected; APCER per injection type (and per variant): injected
  sessions *not* judged injected.  Every rate has its Clopper–Pearson 95 % interval;
* the per-feature table says which feature caught what (and what it alone caught).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shiren.eval.injection_sessions import (
    ATTACK_KINDS,
    KINDS,
    VARIANTS,
    Bench,
    BuiltSession,
    Recording,
    build,
    frames_for_flash,
)
from shiren.eval.intervals import clopper_pearson
from shiren.liveness.injection import FEATURES, InjectionFeatures, judge, measure_injection
from shiren.liveness.injection_config import (
    DEFAULT_INJECTION_THRESHOLDS,
    WEAK_FEATURES,
    Direction,
    FeatureThreshold,
    InjectionThresholds,
    PageProtocol,
)
from shiren.liveness.injection_timing import TIMER_CLAMP_MS
from shiren.liveness.signals import face_signals
from shiren.models.protocols import FaceTracker

LOW_FEATURES = ("jitter_ms", "min_interval_ratio", "flash_response", "grid_suppressed")
DIRECTIONS: dict[str, Direction] = dict.fromkeys(LOW_FEATURES, "low")
RESOLUTION: dict[str, float] = {
    "timer_mismatch": 0.005,
    "schedule_ms": 5.0,
    "off_resolution": 0.01,
    "jitter_ms": 0.02,
    "min_interval_ratio": 0.02,
    "upload_deficit_s": 0.25,
    "repeat_fraction": 0.005,
    "grid_foreign": 0.5,
    "grid_aligned": 0.02,
    "grid_suppressed": 0.02,
    "flash_response": 0.02,
    "flash_lag_outside_ms": 10.0,
}
"""The smallest difference each feature can honestly resolve (its units): a line never sits
closer than this to the most extreme live value, and the live spread is never taken smaller.
Times are rounded to 0.1 ms by the page, lags searched in 10 ms steps, the server's clock and
the upload's arrival time are good to a quarter of a second; the rest are a few % of the
feature's live range."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    kind: str
    variant: str
    recording: str
    person: str
    fold: int
    seed: int
    nonce: str
    frames: int
    values: dict[str, float | None]
    details: dict[str, float | int | str | bool | None]
    build_ms: float
    measure_ms: float


def rate(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"rate": None, "k": 0, "n": 0, "ci95": None}
    lo, hi = clopper_pearson(k, n)
    return {"rate": k / n, "k": k, "n": n, "ci95": [lo, hi]}


def fold_of(person: str, persons: Sequence[str]) -> int:
    """People alternate between the two folds in sorted order."""
    return sorted(set(persons)).index(person) % 2


def session_seed(seed: int, kind: str, rec_index: int, i: int) -> int:
    return seed * 1_000_003 + (KINDS.index(kind) + 1) * 100_000 + rec_index * 1_000 + i


def measure_session(
    session: BuiltSession, tracker: FaceTracker, thresholds: InjectionThresholds
) -> InjectionFeatures:
    """The injection features as a server would compute them: meshes tracked on the uploaded
    frames (only the leading ones the flash features read), then :func:`measure_injection`."""
    frames = session.frames
    n = frames_for_flash(session, thresholds.flash.search_max_ms)
    meshes = tracker.track([f.image for f in frames.frames[:n]]) if n else []
    padded = [*meshes, *([None] * (len(frames) - len(meshes)))]
    signals = face_signals(padded, frames.times_ms, frames.size)
    return measure_injection(
        session.challenge, frames, signals=signals, upload=session.upload, thresholds=thresholds
    )


def run_sessions(
    recordings: Sequence[Recording],
    benches: Sequence[Bench],
    tracker: FaceTracker,
    *,
    sessions: int,
    seed: int,
    kinds: Sequence[str] = KINDS,
    progress: Callable[[SessionRecord, int, int], None] | None = None,
) -> list[SessionRecord]:
    """``sessions`` sessions of each kind from each recording (variants in turn); each
    recording's sessions use the timer traces of its own fold (``benches[fold]``)."""
    persons = [r.person for r in recordings]
    total = len(recordings) * len(kinds) * sessions
    out: list[SessionRecord] = []
    for r_idx, rec in enumerate(recordings):
        fold = fold_of(rec.person, persons)
        for kind in kinds:
            for i in range(sessions):
                variant = VARIANTS[kind][i % len(VARIANTS[kind])]
                s = session_seed(seed, kind, r_idx, i)
                t0 = time.perf_counter()
                built = build(kind, rec, benches[fold], s, variant)
                t1 = time.perf_counter()
                feats = measure_session(built, tracker, DEFAULT_INJECTION_THRESHOLDS)
                t2 = time.perf_counter()
                record = SessionRecord(
                    kind, variant, rec.name, rec.person, fold, s, built.challenge.nonce,
                    len(built.frames), dict(feats.values), dict(feats.details),
                    (t1 - t0) * 1000.0, (t2 - t1) * 1000.0,
                )  # fmt: skip
                out.append(record)
                if progress is not None:
                    progress(record, len(out), total)
    return out


def _finite(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


PHYSICAL: dict[str, FeatureThreshold] = {
    "upload_deficit_s": FeatureThreshold(RESOLUTION["upload_deficit_s"], 1.0),
    "min_interval_ratio": FeatureThreshold(
        TIMER_CLAMP_MS / PageProtocol().frame_interval_ms,
        TIMER_CLAMP_MS / PageProtocol().frame_interval_ms,
        "low",
    ),
    "jitter_ms": FeatureThreshold(
        PageProtocol().t_resolution_ms / 2, PageProtocol().t_resolution_ms / 2, "low"
    ),
}
"""Lines set by physics, not fitted: a page films in real time, so a capture cannot claim more
filming than the server saw pass (beyond the clocks' resolution), however long live borrowers
usually wait; a repeating timer never fires two frames closer than the browsers' 4 ms clamp,
however its stalls are caught up (Chromium's shortest interval in the traces: 17 ms); and a
timeline whose intervals deviate from their median by less than half the page's time
resolution on average is exact, which no browser timer is.  (Fitting the jitter line to live
sessions would fit it to the stalls of one fold's browser runs: the quietest Chromium trace
deviates by 0.11 ms on average, the busiest by 3.1 ms.)"""


def fit_thresholds(live: Sequence[SessionRecord], margin: float) -> dict[str, FeatureThreshold]:
    """Each feature's line just beyond every given live session: the most extreme live value
    moved outwards by ``margin`` × the live spread (|extreme − median|), at least by the
    feature's :data:`RESOLUTION` (train BPCER 0 by construction); :data:`PHYSICAL` lines are
    kept as they are."""
    out: dict[str, FeatureThreshold] = dict(PHYSICAL)
    for name in FEATURES:
        if name in PHYSICAL:
            continue
        values = _finite(r.values.get(name) for r in live)
        if not values:
            continue
        direction = DIRECTIONS.get(name, "high")
        extreme = max(values) if direction == "high" else min(values)
        spread = max(abs(extreme - statistics.median(values)), RESOLUTION[name])
        step = max(margin * spread, RESOLUTION[name])
        line = extreme + step if direction == "high" else extreme - step
        decisive = name not in WEAK_FEATURES
        out[name] = FeatureThreshold(line, spread, direction, decisive)
    return out


def _features(record: SessionRecord) -> InjectionFeatures:
    return InjectionFeatures(values=record.values, details=record.details)


@dataclass(frozen=True, slots=True)
class Judged:
    record: SessionRecord
    suspected: bool
    """Any line crossed, decisive or weak (the measurement's own yes / no)."""
    fired: tuple[str, ...]
    score: float | None
    decisive: bool = False
    """A decisive line crossed (:attr:`InjectionResult.suspected`)."""


def judge_folds(
    records: Sequence[SessionRecord], margin: float
) -> tuple[list[Judged], dict[str, Any]]:
    """Every session judged by the lines fitted on the other fold's live sessions."""
    judged: list[Judged] = []
    lines: dict[str, Any] = {}
    for test_fold in (0, 1):
        train_live = [r for r in records if r.fold != test_fold and r.kind == "live"]
        if not train_live:
            continue
        fitted = fit_thresholds(train_live, margin)
        lines[f"test_fold_{test_fold}"] = fitted
        th = InjectionThresholds(features=fitted)
        for r in records:
            if r.fold != test_fold:
                continue
            result = judge(_features(r), th)
            names = tuple(n for n, s in result.signals.items() if s.suspected)
            judged.append(Judged(r, bool(names), names, result.score, result.suspected))
    return judged, lines


def _by(judged: Iterable[Judged], key: Callable[[Judged], str]) -> dict[str, list[Judged]]:
    out: dict[str, list[Judged]] = {}
    for j in judged:
        out.setdefault(key(j), []).append(j)
    return out


def _outcome(rows: Sequence[Judged], attack: bool) -> dict[str, Any]:
    """APCER (attacks not caught) or BPCER (live caught) of ``rows``, with what fired."""
    errors = sum(1 for j in rows if j.suspected != attack)
    fired = Counter(n for j in rows for n in j.fired)
    alone = Counter(j.fired[0] for j in rows if len(j.fired) == 1)
    return {
        **rate(errors, len(rows)),
        "caught": sum(1 for j in rows if j.suspected),
        "features_fired": dict(fired.most_common()),
        "caught_by_only": dict(alone.most_common()),
    }


def feature_ranges(records: Sequence[SessionRecord]) -> dict[str, dict[str, Any]]:
    """Per kind and feature: min / median / max over the sessions (where measured)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, rows in _by(
        (Judged(r, False, (), None) for r in records), lambda j: j.record.kind
    ).items():
        out[kind] = {}
        for name in FEATURES:
            v = _finite(j.record.values.get(name) for j in rows)
            out[kind][name] = (
                {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}
                if v
                else None
            )
    return out


def summarise(judged: Sequence[Judged], target: float) -> dict[str, Any]:
    by_kind = _by(judged, lambda j: j.record.kind)
    live = by_kind.get("live", [])
    bpcer = _outcome(live, attack=False)
    apcer = {k: _outcome(by_kind[k], attack=True) for k in ATTACK_KINDS if k in by_kind}
    variants = _variant_outcomes(judged)
    per_fold = {
        f"fold_{f}": {
            "bpcer": _outcome([j for j in live if j.record.fold == f], attack=False),
            "apcer": {
                k: _outcome([j for j in by_kind[k] if j.record.fold == f], attack=True)
                for k in apcer
            },
        }
        for f in (0, 1)
    }
    worst = max(
        apcer.items(),
        key=lambda kv: -1.0 if kv[1]["rate"] is None else kv[1]["rate"],
        default=None,
    )
    met = (
        bpcer["rate"] is not None
        and bpcer["rate"] <= target
        and all(a["rate"] is not None and a["rate"] <= target for a in apcer.values())
    )
    return {
        "by_mode": {m: mode_outcomes(judged, m) for m in MODES},
        "bpcer": bpcer,
        "apcer_by_type": apcer,
        "apcer_by_variant": variants,
        "apcer_worst": None if worst is None else {"type": worst[0], **worst[1]},
        "per_fold": per_fold,
        "goal": {
            "target": target,
            "statement": f"every injection type APCER ≤ {target:.0%} at live BPCER ≤ {target:.0%}",
            "met_on_point_estimates": met,
            "met_on_upper_ci95": bpcer["ci95"] is not None
            and bpcer["ci95"][1] <= target
            and all(a["ci95"] is not None and a["ci95"][1] <= target for a in apcer.values()),
        },
    }


MODES = ("review", "enforce")
"""The modes that act (``[injection] mode`` in the policy; ``shadow`` and ``off`` change
nothing): ``review`` sends a capture with decisive evidence to manual review and only records
weak evidence; ``enforce`` fails it as an attack and sends weak evidence to review."""


def effect(j: Judged, mode: str) -> str:
    """``rejected`` (fails as an attack), ``review`` (sent to a reviewer) or ``accepted``
    (the injection check lets it through) under ``mode``."""
    if mode == "enforce":
        return "rejected" if j.decisive else ("review" if j.suspected else "accepted")
    if mode == "review":
        return "review" if j.decisive else "accepted"
    return "accepted"


def mode_outcomes(judged: Sequence[Judged], mode: str) -> dict[str, Any]:
    """Per kind under ``mode``: how many sessions were rejected, sent to review, accepted;
    APCER (an attack accepted: neither rejected nor sent to review) per type; for live
    sessions BPCER (rejected) and the share sent to review, counted apart."""
    by_kind = _by(judged, lambda j: j.record.kind)
    out: dict[str, Any] = {}
    for kind, rows in by_kind.items():
        counts = Counter(effect(j, mode) for j in rows)
        n = len(rows)
        row = {e: rate(counts.get(e, 0), n) for e in ("rejected", "review", "accepted")}
        if kind == "live":
            row["bpcer"] = row["rejected"]
            row["not_passed"] = rate(n - counts.get("accepted", 0), n)
        else:
            row["apcer"] = row["accepted"]
        out[kind] = row
    return out


SENSITIVITY_MARGINS = (0.0, 0.25, 0.5, 1.0, 2.0)


def margin_sensitivity(records: Sequence[SessionRecord], target: float) -> list[dict[str, Any]]:
    """BPCER and APCER per type for other line margins: how much the result hangs on that one
    choice (a sensitivity table, not a second chance to pick the margin on the test folds)."""
    out = []
    for margin in SENSITIVITY_MARGINS:
        s = summarise(judge_folds(records, margin)[0], target)
        out.append(
            {
                "margin": margin,
                "bpcer": s["bpcer"]["rate"],
                "apcer": {k: v["rate"] for k, v in s["apcer_by_type"].items()},
            }
        )
    return out


def _variant_outcomes(judged: Sequence[Judged]) -> dict[str, Any]:
    groups = _by(
        (j for j in judged if j.record.kind != "live"),
        lambda j: f"{j.record.kind}/{j.record.variant}",
    )
    return {name: _outcome(rows, attack=True) for name, rows in sorted(groups.items())}


__all__ = [
    "DIRECTIONS",
    "MODES",
    "PHYSICAL",
    "RESOLUTION",
    "Judged",
    "SessionRecord",
    "effect",
    "feature_ranges",
    "fit_thresholds",
    "fold_of",
    "judge_folds",
    "margin_sensitivity",
    "measure_session",
    "mode_outcomes",
    "rate",
    "run_sessions",
    "session_seed",
    "summarise",
]

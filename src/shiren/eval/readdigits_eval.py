"""``shiren eval readdigits``: BPCER and APCER per attack type of the read-the-digits check.

Sessions come from :mod:`shiren.eval.readdigits_material` (the GRID clips, re-timed to fresh
English challenges; attacks built from them at run time, never stored).  Every session goes
through :meth:`ReadDigitsChecker.check_capture` — the real face mesh, identity and passive steps —
and the silence rule of :func:`~shiren.liveness.audio.check_sound`; a typed error (a muted track)
counts as a rejected session.

Protocol (chosen before any result was seen, as ``shiren eval injection``'s): the people alternate
between two folds (fold 0: P08, P10 (two clips), P12, P14, P16; fold 1: P09, P11, P13, P15, P17).
The synchrony rule's two lines are fitted on one fold's sessions and judge the other fold; then
the folds swap: ``max_peak_gap`` the highest genuine gap moved up by ``margin`` × (highest −
median); ``min_corr`` the minimax line on that fold's genuine *and* attack sessions (see
:func:`_lines`; it replaced the lowest-genuine-value rule, which one badly synchronised speaker
dragged below zero).  The onset rule, the speech detector, the lag band, the per-digit share and
the mouth-movement floor are fixed constants (not fitted; set on sessions of other seeds, see
docs/LIVENESS.md).  Clopper–Pearson 95 % intervals.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.geometry import FloatArray, RGBImage
from shiren.errors import InputError
from shiren.eval.intervals import clopper_pearson
from shiren.eval.readdigits_material import (
    ATTACKS,
    NOISES,
    Clip,
    Session,
    attack,
    babble,
    espeak_available,
    genuine,
    load_clip,
    speech_rms,
    with_noise,
)
from shiren.liveness.audio import AVLimits, check_sound
from shiren.liveness.readdigits import Schedule, draw_read_digits
from shiren.liveness.readdigits_check import (
    ReadDigitsChecker,
    ReadDigitsConfig,
    noise_explains,
)
from shiren.models.protocols import FaceTracker, ModelInfo

FOLDS: dict[str, int] = {
    "P08": 0, "P10": 0, "P12": 0, "P14": 0, "P16": 0,
    "P09": 1, "P11": 1, "P13": 1, "P15": 1, "P17": 1,
}  # fmt: skip


MIN_PEAK_GAP = 0.02


class CachedTracker:
    """The real tracker run once per clip, in order; sessions re-use the clip's meshes by frame
    object (every session frame *is* one of its clip's decoded frames)."""

    def __init__(self, tracker: FaceTracker) -> None:
        self.inner = tracker
        self.info: ModelInfo = tracker.info
        self._meshes: dict[int, FloatArray | None] = {}
        self._keep: list[RGBImage] = []

    def learn(self, frames: Sequence[RGBImage]) -> None:
        for image, mesh in zip(frames, self.inner.track(list(frames)), strict=True):
            self._meshes[id(image)] = mesh
            self._keep.append(image)

    def track(self, images: Sequence[RGBImage]) -> list[FloatArray | None]:
        missing = [im for im in images if id(im) not in self._meshes]
        if missing:
            self.learn(missing)
        return [self._meshes[id(im)] for im in images]


@dataclass
class Row:
    kind: str
    clip: str
    person: str
    fold: int
    note: str
    digits: int = 0
    """How many digits the session's challenge showed."""
    error: str | None = None
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def passed(self, name: str) -> bool:
        return bool(self.signals.get(name, {}).get("passed", False))


def _row(session: Session, checker: ReadDigitsChecker, challenge: Any, limits: AVLimits) -> Row:
    row = Row(
        session.kind,
        session.clip,
        session.person,
        FOLDS.get(session.person, 0),
        session.note,
        len(challenge.steps),
    )
    try:
        check_sound(session.capture, limits)
        result = checker.check_capture(challenge, session.capture, verified=True)
    except InputError as exc:
        row.error = str(exc.code)
        return row
    for name, sig in result.signals.items():
        row.signals[name] = {"passed": sig.passed, "value": sig.value, **sig.details}
        if name == "sync":
            row.signals[name]["corr"] = sig.value
    return row


def build_rows(
    clips: list[Clip],
    checker: ReadDigitsChecker,
    sessions: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    snr_db: float | None = None,
    noise: str = "white",
    *,
    digits: int | None = None,
) -> tuple[list[Row], list[str]]:
    """Every clip's sessions and their rows.  ``snr_db``: ``noise`` (``white``, or ``babble``:
    other people talking, :func:`~shiren.eval.readdigits_material.babble`) added to every
    session's sound, this many dB under the genuine session's speech (the same sessions as
    without it: the noise has its own generator).  ``digits``: every challenge this long
    (default: the shipped :class:`~shiren.liveness.readdigits.Schedule`'s draw)."""
    if noise not in NOISES:
        raise InputError(f"unknown noise {noise!r}: one of {', '.join(NOISES)}")
    schedule = Schedule(digits=(digits, digits)) if digits else Schedule()
    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    notes = []
    kinds = list(ATTACKS)
    if not espeak_available():
        kinds.remove("synth")
        notes.append("synth skipped: espeak-ng is not installed (apt-get install -y espeak-ng)")
    rows: list[Row] = []
    limits = checker.config.limits
    total = len(clips) * sessions
    for n, (rep, ci) in enumerate((r, c) for r in range(sessions) for c in range(len(clips))):
        clip = clips[ci]
        challenge = draw_read_digits(
            lang="en", seed=rng.randrange(2**62), now=0.0, schedule=schedule
        )
        session, order = genuine(clip, challenge, rng, limits)
        others = [c for c in clips if c.person != clip.person]
        other = others[(rep + ci) % len(others)]
        built = [session] + [attack(k, clip, order, other, challenge, rng, limits) for k in kinds]
        present = [s for s in built if s is not None]
        if snr_db is not None:
            level = speech_rms(session.capture.audio) * 10 ** (-snr_db / 20.0)
            room = None
            if noise == "babble":
                length = max(s.capture.audio.size for s in present)
                room = babble(clips, clip.person, length, noise_rng)
            present = [with_noise(s, level, noise_rng, room) for s in present]
        rows += [_row(s, checker, challenge, limits) for s in present]
        if progress is not None:
            progress(n + 1, total)
    return rows, notes


def _sync_ok(row: Row, lines: dict[str, float], min_mouth: float, min_share: float) -> bool:
    s = row.signals["sync"]
    return bool(
        s["mouth_range"] >= min_mouth
        and s["corr"] >= lines["min_corr"]
        and s["peak_gap"] <= lines["max_peak_gap"]
        and s.get("digit_share", 1.0) >= min_share
    )


def _lines(train: list[Row], margin: float, min_mouth: float, min_share: float) -> dict[str, float]:
    """``max_peak_gap``: the highest genuine gap moved up by ``margin`` × (highest − median), at
    least ``MIN_PEAK_GAP`` (GRID's genuine gaps are all 0: a line at 0 would fail any rounding).
    ``min_corr``: the line that minimises max(genuine sync-rejection rate, the worst attack
    type's sync-acceptance rate) on ``train`` (every session without a typed error), the middle
    of the range of such lines (a minimax line: one odd person moves it only as far as the
    attacks allow)."""
    genuine = [r for r in train if r.kind == "genuine"]
    gap = np.array([r.signals["sync"]["peak_gap"] for r in genuine], dtype=float)
    hi, gmed = float(gap.max()), float(np.median(gap))
    gap_line = max(MIN_PEAK_GAP, hi + margin * (hi - gmed))
    lines = {"min_corr": 0.0, "max_peak_gap": round(gap_line, 4)}
    kinds = sorted({r.kind for r in train} - {"genuine"})
    best: tuple[float, list[float]] | None = None
    for t in sorted({round(float(r.signals["sync"]["corr"]), 4) for r in train}):
        trial = {**lines, "min_corr": t}
        bpcer = float(np.mean([not _sync_ok(r, trial, min_mouth, min_share) for r in genuine]))
        apcer = max(
            (
                float(np.mean([_sync_ok(r, trial, min_mouth, min_share) for r in rows]))
                for rows in ([r for r in train if r.kind == k] for k in kinds)
                if rows
            ),
            default=0.0,
        )
        err = max(bpcer, apcer)
        if best is None or err < best[0] - 1e-12:
            best = (err, [t])
        elif abs(err - best[0]) <= 1e-12:
            best[1].append(t)
    if best is not None:
        lines["min_corr"] = round((min(best[1]) + max(best[1])) / 2, 4)
        lines["train_error"] = round(best[0], 4)
    return lines


def judge(
    rows: list[Row],
    margin: float,
    min_mouth: float,
    min_share: float = 0.75,
    fixed: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Fit on one fold's sessions (genuine and attacks), judge the other fold; both ways.  With
    ``fixed`` (``min_corr``, ``max_peak_gap``), judge every session by those lines instead — the
    shipped check, as a deployment runs it (for conditions it was not fitted on: noise)."""
    lines_by_fold: dict[int, dict[str, float]] = {}
    for fold in (0, 1):
        train = [r for r in rows if r.fold != fold and r.error is None]
        lines_by_fold[fold] = (
            dict(fixed) if fixed is not None else _lines(train, margin, min_mouth, min_share)
        )
    for r in rows:
        if r.error is not None:
            r.signals["decision"] = {"passed": False, "failed": [r.error]}
            continue
        sync = _sync_ok(r, lines_by_fold[r.fold], min_mouth, min_share)
        failed = [
            name
            for name, ok in (
                ("onsets", r.passed("onsets")),
                ("sync", sync),
                ("identity", r.passed("identity")),
                ("passive", r.passed("passive")),
            )
            if not ok
        ]
        r.signals["decision"] = {"passed": not failed, "failed": failed}
    return {str(k): v for k, v in lines_by_fold.items()}


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"k": k, "n": n, "rate": (k / n) if n else None, "ci95": [round(lo, 4), round(hi, 4)]}


def _spread(values: list[float]) -> list[float] | None:
    return [round(float(v), 4) for v in np.percentile(values, [0, 50, 100])] if values else None


def _too_noisy(row: Row, config: ReadDigitsConfig | None) -> bool:
    """A failed session the check would send back with ``liveness.too_noisy`` alone (a retry
    somewhere quieter, not a review): it failed only on its speech (onsets, sync), in a recording
    under ``min_snr_db``, and a failed sync is one the noise explains
    (:func:`~shiren.liveness.readdigits_check.noise_explains`)."""
    if config is None:
        return False
    failed = set(row.signals["decision"]["failed"])
    sync = row.signals.get("sync", {})
    snr = sync.get("snr_db")
    if not failed or not failed <= {"onsets", "sync"} or snr is None or snr >= config.min_snr_db:
        return False
    return "sync" not in failed or noise_explains(
        sync["corr"], sync["peak_gap"], sync["mouth_range"], config.sync, config.noisy_min_corr
    )


def summarise(
    rows: list[Row], target: float, config: ReadDigitsConfig | None = None
) -> dict[str, Any]:
    """Per kind: the rate, the failed signals, the margins, and ``too_noisy`` (failed sessions
    the check ``config`` would tell to read again somewhere quieter, :func:`_too_noisy`)."""
    out: dict[str, Any] = {}
    for kind in ["genuine", *ATTACKS]:
        these = [r for r in rows if r.kind == kind]
        if not these:
            continue
        accepted = sum(1 for r in these if r.signals["decision"]["passed"])
        failed: dict[str, int] = {}
        for r in these:
            for name in r.signals["decision"]["failed"]:
                failed[name] = failed.get(name, 0) + 1
        ok = [r for r in these if r.error is None]
        entry: dict[str, Any] = {
            "sessions": len(these),
            "failed_signals": failed,
            "too_noisy": sum(
                1 for r in these if not r.signals["decision"]["passed"] and _too_noisy(r, config)
            ),
            "margins": {
                "sync_corr": _spread([r.signals["sync"]["corr"] for r in ok]),
                "sync_peak_gap": _spread([r.signals["sync"]["peak_gap"] for r in ok]),
                "sync_best_lag_ms": _spread([r.signals["sync"]["best_lag_ms"] for r in ok]),
                "mouth_range": _spread([r.signals["sync"]["mouth_range"] for r in ok]),
                "digit_share": _spread([r.signals["sync"]["digit_share"] for r in ok]),
                "onsets_score": _spread([r.signals["onsets"]["value"] for r in ok]),
                "snr_db": _spread(
                    [r.signals["sync"]["snr_db"] for r in ok if "snr_db" in r.signals["sync"]]
                ),
            },
        }
        if kind == "genuine":
            entry["bpcer"] = _rate(len(these) - accepted, len(these))
        else:
            entry["apcer"] = _rate(accepted, len(these))
        out[kind] = entry
    worst = max((v["apcer"]["rate"] for k, v in out.items() if k != "genuine"), default=0.0)
    bpcer = out.get("genuine", {}).get("bpcer", {}).get("rate")
    out["goal_met"] = bool(bpcer is not None and bpcer <= target and worst <= target)
    return out


def load_clips(folder: Path, limit: int | None = None) -> list[Clip]:
    paths = sorted(folder.glob("*.mpg"))
    if not paths:
        raise InputError(f"no GRID clips (*.mpg) in {folder.name}")
    return [load_clip(p) for p in paths[:limit]]


__all__ = ["FOLDS", "CachedTracker", "Row", "build_rows", "judge", "load_clips", "summarise"]

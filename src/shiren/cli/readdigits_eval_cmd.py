"""``shiren eval readdigits``: BPCER and APCER per attack type of the read-the-digits check on
sessions built at run time from the GRID talking-face clips (see
:mod:`shiren.eval.readdigits_eval`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded

DEFAULT_CLIPS = (
    Path(
        os.environ.get(
            "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
        )
    )
    / "grid_talking_faces"
)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("readdigits")(eval_readdigits)


def eval_readdigits(
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json).")],
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, help="Sessions per clip (and per attack type).")
    ] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Base seed (reproducible runs).")] = 0,
    clips: Annotated[Path, typer.Option("--clips", help="The GRID clips folder.")] = DEFAULT_CLIPS,
    limit: Annotated[
        int | None, typer.Option("--limit", min=2, help="Use only the first N clips (smoke runs).")
    ] = None,
    margin: Annotated[
        float, typer.Option("--margin", min=0.0, help="Lines sit this many genuine spreads out.")
    ] = 0.25,
    pad_model: Annotated[
        str, typer.Option("--pad-model", help="Passive model: 'auto', a registry name.")
    ] = "auto",
    target: Annotated[float, typer.Option("--target", help="Goal for APCER and BPCER.")] = 0.05,
    snr_db: Annotated[
        float | None,
        typer.Option(
            "--snr-db",
            min=-20.0,
            max=80.0,
            help="Add noise (--noise) this many dB under each genuine session's speech (to "
            "every session built from it): a noisy room.",
        ),
    ] = None,
    noise: Annotated[
        str,
        typer.Option(
            "--noise",
            help="With --snr-db: 'white' (steady hiss) or 'babble' (four other people talking).",
        ),
    ] = "white",
    shipped_lines: Annotated[
        bool,
        typer.Option(
            "--shipped-lines",
            help="Judge by the shipped min_corr / max_peak_gap instead of lines fitted per fold.",
        ),
    ] = False,
    digits: Annotated[
        int | None,
        typer.Option(
            "--digits",
            min=4,
            max=6,
            help="Digits per challenge (default: the shipped schedule's own draw).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report.")] = False,
) -> None:
    """Genuine read-the-digits sessions re-timed from real talking faces, and dubbed, shifted,
    frozen, looped, synthesised and silent attacks: BPCER, APCER per type, 95 % intervals."""
    report = run_guarded(
        as_json,
        lambda: _eval(
            out,
            sessions,
            seed,
            clips,
            limit,
            margin,
            pad_model,
            target,
            snr_db,
            shipped_lines,
            noise,
            digits,
        ),
    )
    if as_json:
        emit(report)
        return
    for kind, entry in report["summary"].items():
        if not isinstance(entry, dict):
            continue
        rate: dict[str, Any] = entry.get("bpcer") or entry["apcer"]
        name = "BPCER" if "bpcer" in entry else "APCER"
        typer.echo(
            f"{kind:9s} {name} {rate['k']}/{rate['n']} CI95 {rate['ci95']} "
            f"failed: {entry['failed_signals']}; told too noisy: {entry['too_noisy']}"
        )
    typer.echo(f"goal met: {report['summary']['goal_met']}; report: {out / 'report.json'}")


def _eval(
    out: Path,
    sessions: int,
    seed: int,
    clips: Path,
    limit: int | None,
    margin: float,
    pad_model: str,
    target: float,
    snr_db: float | None = None,
    shipped_lines: bool = False,
    noise: str = "white",
    digits: int | None = None,
) -> dict[str, Any]:
    from dataclasses import asdict

    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.readdigits_eval import CachedTracker, build_rows, judge, load_clips, summarise
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.readdigits import Schedule
    from shiren.liveness.readdigits_check import ReadDigitsChecker

    material = load_clips(clips, limit)
    live = LivenessChecker.from_config(pad_model=pad_model or None)
    cached = CachedTracker(live.tracker)
    for clip in material:
        cached.learn(clip.frames)
    live.tracker = cached
    checker = ReadDigitsChecker(live)

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} clip sessions", end="", file=sys.stderr, flush=True)

    rows, notes = build_rows(
        material, checker, sessions, seed, progress, snr_db, noise, digits=digits
    )
    print(file=sys.stderr)
    sync = checker.config.sync
    fixed = {"min_corr": sync.min_corr, "max_peak_gap": sync.max_peak_gap}
    lines = judge(
        rows,
        margin,
        sync.min_mouth_range,
        sync.min_digit_share,
        fixed=fixed if shipped_lines else None,
    )
    report: dict[str, Any] = {
        "protocol": {
            "clips": [c.name for c in material],
            "sessions_per_clip": sessions,
            "seed": seed,
            "margin": margin,
            "lines_by_judged_fold": lines,
            "lines": "shipped" if shipped_lines else "fitted per fold",
            "digits": list((digits, digits) if digits else Schedule().digits),
            "snr_db": snr_db,
            "noise": noise if snr_db is not None else None,
            "min_snr_db": checker.config.min_snr_db,
            "noisy_min_corr": checker.config.noisy_min_corr,
            "sync_band_ms": list(sync.band_ms),
            "min_digit_share": sync.min_digit_share,
            "min_mouth_range": sync.min_mouth_range,
            "sample_ms": checker.config.limits.sample_ms,
            "luma_ms": checker.config.limits.luma_ms,
            "passive_model": live.pad.info.name if live.pad else None,
            "notes": notes,
        },
        "summary": summarise(rows, target, checker.config),
        "sessions": [asdict(r) for r in rows],
    }
    models = [{"name": m.name, "version": m.version, "sha256": m.sha256} for m in live.models]
    report["provenance"] = provenance({"command": "eval readdigits"}, models)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    return report


__all__ = ["register"]

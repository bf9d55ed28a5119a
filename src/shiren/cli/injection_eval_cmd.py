"""``shiren eval injection``: APCER per injection type and BPCER of the injection check, on
sessions built at run time from the shared recordings (see :mod:`shiren.eval.injection_eval`)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded
from shiren.errors import ErrorCode, InputError

DEFAULT_DATA = Path(
    os.environ.get(
        "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
    )
)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("injection")(eval_injection)


def eval_injection(
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json).")],
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, help="Sessions per recording and type.")
    ] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Base seed (reproducible runs).")] = 0,
    data: Annotated[
        Path, typer.Option("--data", help="The shared data folder (recordings).")
    ] = DEFAULT_DATA,
    recordings: Annotated[
        int | None,
        typer.Option("--recordings", min=2, help="Use only the first N recordings (smoke runs)."),
    ] = None,
    margin: Annotated[
        float,
        typer.Option("--margin", min=0.0, help="Lines sit this many live spreads past train live."),
    ] = 0.25,
    target: Annotated[float, typer.Option("--target", help="Goal for APCER and BPCER.")] = 0.05,
    traces: Annotated[
        Path | None, typer.Option("--traces", help="Page timer traces (default: the shipped ones).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report.")] = False,
) -> None:
    """Live and injected sessions (virtual camera, re-timed recording, re-encoded stream, screen
    replay) from real recordings, split by person: APCER per type, BPCER, with 95 % intervals."""
    report = run_guarded(
        as_json,
        lambda: _eval(out, sessions, seed, data, recordings, margin, target, traces),
    )
    if as_json:
        emit(report)
        return
    _print_summary(report)


def _eval(
    out: Path,
    sessions: int,
    seed: int,
    data: Path,
    limit: int | None,
    margin: float,
    target: float,
    traces_path: Path | None,
) -> dict[str, Any]:
    from shiren.eval.injection_eval import (
        feature_ranges,
        fit_thresholds,
        judge_folds,
        margin_sensitivity,
        run_sessions,
        summarise,
    )
    from shiren.eval.injection_material import (
        DEFAULT_TRACES,
        default_specs,
        load_recording,
        load_traces,
        traces_for_fold,
    )
    from shiren.eval.injection_sessions import Bench
    from shiren.eval.injection_sim import DEFAULT_SIM
    from shiren.eval.liveness_eval import sha256_of
    from shiren.eval.provenance import provenance, to_jsonable, write_json
    from shiren.eval.suite_material import SuiteParams
    from shiren.liveness.config import Level, load_config
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    started = time.time()
    if not data.is_dir():
        raise InputError(
            f"data folder not found: {data}",
            code=ErrorCode.INPUT_FILE_NOT_FOUND,
            detail={"path": str(data)},
        )
    config = load_config()
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    specs = default_specs(data, limit)
    recs = []
    for spec in specs:
        recs.append(load_recording(spec, tracker, config.frames))
        typer.echo(f"loaded {recs[-1].name} ({recs[-1].person})", err=True)
    if len({r.person for r in recs}) < 2:
        raise InputError("need recordings of at least two people", code=ErrorCode.INPUT_INVALID)
    trace_file = traces_path or DEFAULT_TRACES
    all_traces, trace_meta = load_traces(trace_file)
    suite = SuiteParams()
    benches = [
        Bench(config, Level.NORMAL, traces_for_fold(all_traces, f), DEFAULT_SIM, suite, started)
        for f in (0, 1)
    ]

    out.mkdir(parents=True, exist_ok=True)
    partial = out / "sessions.partial.jsonl"
    partial.write_text("", "utf-8")

    def progress(rec: Any, done: int, total: int) -> None:
        with partial.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(to_jsonable(rec), sort_keys=True) + "\n")
        typer.echo(
            f"[{done:4}/{total}] fold {rec.fold} {rec.kind:15} {rec.variant:15} "
            f"{rec.recording:24} {rec.frames:3} frames  {rec.build_ms / 1000:.1f}+"
            f"{rec.measure_ms / 1000:.1f} s",
            err=True,
        )

    records = run_sessions(recs, benches, tracker, sessions=sessions, seed=seed, progress=progress)
    judged, lines = judge_folds(records, margin)
    report: dict[str, Any] = summarise(judged, target)
    recommended = fit_thresholds([r for r in records if r.kind == "live"], margin)
    report |= {
        "protocol": {
            "split": "people alternate between two folds (sorted names); lines fitted on one "
            "fold's live sessions judge the other fold's sessions, then the folds swap; every "
            "session is judged once by lines that never saw its person, recording or browser "
            "trace",
            "line_rule": f"each feature: the most extreme train live value moved outwards by "
            f"{margin} × the live spread (at least the feature's resolution); train BPCER 0",
            "apcer": "injected sessions not judged injected",
            "bpcer": "live sessions judged injected",
        },
        "folds": {str(f): sorted({r.person for r in records if r.fold == f}) for f in (0, 1)},
        "thresholds_by_test_fold": to_jsonable(lines),
        "thresholds_recommended": to_jsonable(recommended),
        "feature_ranges": feature_ranges(records),
        "margin_sensitivity": margin_sensitivity(records, target),
        "simulation": {
            "sim": to_jsonable(DEFAULT_SIM),
            "suite": to_jsonable(suite),
            "page_timing": trace_meta,
            "note": "live sessions are real frames re-ordered and re-timed; the flash's "
            "reflection, sensor noise, the virtual camera, codecs, the display and its "
            "recapture are SIMULATED; page timing comes from real headless-Chromium traces",
        },
        "sessions_per_recording_and_type": sessions,
        "sessions": [to_jsonable(r) for r in records],
        "elapsed_s": round(time.time() - started, 1),
    }
    settings: dict[str, object] = {
        "command": " ".join(["shiren", *sys.argv[1:]]),
        "seed": seed,
        "sessions": sessions,
        "margin": margin,
        "target": target,
        "data": {
            "recordings": [
                {"file": r.path, "sha256": r.sha256, "person": r.person, "annotated": r.annotated}
                for r in recs
            ],
            "traces": {"file": str(trace_file), "sha256": sha256_of(Path(trace_file))},
        },
    }
    models = [
        {"name": tracker.info.name, "version": tracker.info.version, "sha256": tracker.info.sha256}
    ]
    report["provenance"] = provenance(settings, models)
    write_json(out / "report.json", report)
    partial.unlink(missing_ok=True)
    report["report_file"] = str(out / "report.json")
    return report


def _fmt(row: dict[str, Any] | None) -> str:
    if not row or row.get("rate") is None:
        return "n/a"
    lo, hi = row["ci95"]
    return f"{row['k']}/{row['n']} = {row['rate']:.1%} [{lo:.1%}, {hi:.1%}]"


def _print_summary(report: dict[str, Any]) -> None:
    typer.echo(f"BPCER (live judged injected)   {_fmt(report['bpcer'])}")
    for kind, row in report["apcer_by_type"].items():
        top = ", ".join(f"{k}:{v}" for k, v in list(row["features_fired"].items())[:4]) or "-"
        typer.echo(f"APCER {kind:24} {_fmt(row)}  fired: {top}")
    for name, row in report["apcer_by_variant"].items():
        typer.echo(f"  {name:30} {_fmt(row)}")
    for mode, kinds in report.get("by_mode", {}).items():
        typer.echo(f"mode {mode}:")
        for kind, row in kinds.items():
            typer.echo(
                f"  {kind:16} rejected {_fmt(row['rejected'])}  review {_fmt(row['review'])}  "
                f"accepted {_fmt(row['accepted'])}"
            )
    goal = report["goal"]
    typer.echo(
        f"goal ({goal['statement']}): met on point estimates: "
        f"{goal['met_on_point_estimates']}; on 95 % upper bounds: "
        f"{goal['met_on_upper_ci95']}"
    )
    typer.echo(f"report: {report['report_file']}")

"""``shiren eval liveness`` (BPCER / APCER of the whole liveness check on simulated sessions) and
``shiren bench-liveness`` (latency of one check on a real 30-frame upload).

``bench`` is a plain command (not a group), so the liveness benchmark is its own top-level
command rather than ``shiren bench liveness``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded
from shiren.errors import ErrorCode, InputError

# The evaluation data sit beside a checkout (../shared/data) or where SHIREN_SHARED_DATA says.
DEFAULT_SHARED = Path(
    os.environ.get(
        "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
    )
)
VideoOpt = Annotated[
    Path,
    typer.Option("--video", help="The annotated live recording (real.mov)."),
]
AnnotationOpt = Annotated[
    Path | None,
    typer.Option("--annotation", help="Its hand annotation (default: the shipped one)."),
]


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    eval_app.command("liveness")(eval_liveness)
    app.command("bench-liveness")(bench_liveness_cmd)


def _default_video() -> Path:
    return DEFAULT_SHARED / "zubair_liveness_videos" / "real.mov"


def _default_lfw() -> Path:
    return DEFAULT_SHARED / "lfw_view2" / "lfw-deepfunneled"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(
            f"{what} not found: {path}",
            code=ErrorCode.INPUT_FILE_NOT_FOUND,
            detail={"path": str(path)},
        )
    return path


def eval_liveness(
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json).")],
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Sessions per type.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Base seed (reproducible runs).")] = 0,
    level: Annotated[str, typer.Option("--level", help="low | normal | high.")] = "normal",
    video: VideoOpt = _default_video(),  # noqa: B008
    annotation: AnnotationOpt = None,
    lfw: Annotated[
        Path, typer.Option("--lfw", help="LFW deep-funneled folder (other people's photos).")
    ] = _default_lfw(),  # noqa: B008
    gain: Annotated[
        float, typer.Option("--colour-gain", help="Simulated reflection gain of the flash.")
    ] = 0.08,
    donors: Annotated[int, typer.Option("--donors", min=1, help="LFW people used.")] = 8,
    config: Annotated[
        Path | None, typer.Option("--config", help="A liveness.toml of your own.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report.")] = False,
) -> None:
    """Replay live and attack sessions through the whole liveness check: BPCER, APCER per type,
    which signal stops each attack, action detection on the annotated recording."""
    report = run_guarded(
        as_json,
        lambda: _eval(out, sessions, seed, level, video, annotation, lfw, gain, donors, config),
    )
    if as_json:
        emit(report)
        return
    _print_summary(report)


def _eval(
    out: Path,
    sessions: int,
    seed: int,
    level_name: str,
    video: Path,
    annotation_path: Path | None,
    lfw: Path,
    gain: float,
    donors: int,
    config_path: Path | None,
) -> dict[str, Any]:
    from shiren.eval.liveness_eval import (
        SuiteInputs,
        action_detection,
        lfw_photos,
        load_source,
        run_sessions,
        self_photos,
        sha256_of,
        summarise,
    )
    from shiren.eval.liveness_suite import DEFAULT_ANNOTATION, SuiteParams, load_annotation
    from shiren.eval.provenance import provenance, to_jsonable, write_json
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.config import Level, load_config
    from shiren.liveness.frames import load_frames

    started = time.time()
    config = load_config(config_path)
    level = Level(level_name)
    config.level(level)
    ann_path = annotation_path or DEFAULT_ANNOTATION
    ann = load_annotation(_require(ann_path, "annotation"))
    video_sha = sha256_of(_require(video, "video"))
    if ann.video_sha256 is not None and ann.video_sha256 != video_sha:
        raise InputError(
            "the annotation describes a different video (sha256 differs)",
            code=ErrorCode.INPUT_INVALID,
            detail={"video": video_sha, "annotation": ann.video_sha256},
        )
    params = SuiteParams(colour_gain=gain)
    checker = LivenessChecker.from_config(config)
    frames = load_frames(video, config.frames)
    source = load_source(frames, checker.tracker, ann)
    others, lfw_used = lfw_photos(_require(lfw, "LFW folder"), checker.tracker, donors, seed)
    inputs = SuiteInputs(source, tuple(self_photos(source, seed)), tuple(others))

    def progress(kind: str, index: int, rec: Any) -> None:
        mark = "accepted" if rec.passed else "rejected"
        typer.echo(
            f"{kind:17} {index + 1:3}/{sessions} {mark}  {','.join(rec.failed_signals) or '-'}",
            err=True,
        )

    records = run_sessions(
        checker,
        inputs,
        config,
        level=level,
        sessions=sessions,
        seed=seed,
        params=params,
        now=started,
        progress=progress,
    )
    report: dict[str, Any] = summarise(records)
    available = sorted(a.value for a in ann.available(params.min_confidence))
    report |= {
        "level": level.value,
        "sessions_per_type": sessions,
        "colour_simulated": True,
        "simulation": {
            **to_jsonable(params),  # type: ignore[dict-item]
            "note": "the colour response of every session is SIMULATED (reflected light added "
            "to the face mask); live sessions are real frames re-ordered and re-timed",
        },
        "live_challenges": {
            "restricted_to_available_actions": True,
            "available_actions": available,
            "min_confidence": params.min_confidence,
            "note": "a recording cannot answer every random challenge: live (and live-based "
            "attack) sessions use challenges whose actions all have an annotated event",
        },
        "passive_model": None if checker.pad is None else checker.pad.info.name,
        "config": {"source": config.source, "values": to_jsonable(config)},
        "action_detection": action_detection(source, config.actions),
        "sessions": [to_jsonable(r) for r in records],
        "elapsed_s": round(time.time() - started, 1),
    }
    if checker.pad is None:
        report["warning"] = "no PAD model: the passive signal failed every session"
    settings: dict[str, object] = {
        "command": " ".join(["shiren", *sys.argv[1:]]),
        "seed": seed,
        "sessions": sessions,
        "level": level.value,
        "data": {
            "video": {"file": str(video), "sha256": video_sha},
            "annotation": {"file": str(ann_path), "sha256": sha256_of(ann_path)},
            "lfw": lfw_used,
        },
    }
    models = [{"name": m.name, "version": m.version, "sha256": m.sha256} for m in checker.models]
    report["provenance"] = provenance(settings, models)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    report["report_file"] = str(out / "report.json")
    return report


def _fmt_rate(row: dict[str, Any] | None) -> str:
    if not row or row.get("rate") is None:
        return "n/a"
    lo, hi = row["ci95"]
    return f"{row['rate']:.3f} [{lo:.3f}, {hi:.3f}]"


def _print_summary(report: dict[str, Any]) -> None:
    bp = report["bpcer"]
    typer.echo(f"BPCER (live rejected)  {_fmt_rate(bp)}  n={bp['n']}")
    for kind, row in report["apcer_by_type"].items():
        stops = report["by_type"][kind]["signal_failures"]
        top = ", ".join(f"{k}:{v}" for k, v in stops.items()) or "-"
        typer.echo(f"APCER {kind:17} {_fmt_rate(row)}  n={row['n']}  failed: {top}")
    if report.get("apcer"):
        typer.echo(
            f"APCER (worst type: {report['apcer']['worst_type']})  {report['apcer']['rate']}"
        )
    guard = report["replay_guard_catches"]
    typer.echo(f"replay guard catches {_fmt_rate(guard)}")
    live = report["by_type"].get("live", {})
    typer.echo(f"live failures by signal: {live.get('signal_failures', {})}")
    for action, row in report["action_detection"]["per_action"].items():
        fa = row["false_alarms"]
        typer.echo(
            f"action {action:11} annotated {row['annotated']}  detected {row['detected']}  "
            f"false alarms {fa['detected']}/{fa['windows']}"
        )
    typer.echo(f"report: {report['report_file']}")


def bench_liveness_cmd(
    frames_n: Annotated[int, typer.Option("--frames", help="Frames in the session.")] = 30,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed checks.")] = 20,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="onnxruntime / OpenCV threads and CPU cores.")
    ] = 2,
    start: Annotated[int, typer.Option("--start", help="First frame of the recording.")] = 80,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    video: VideoOpt = _default_video(),  # noqa: B008
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON here.")] = None,
    pad_model: Annotated[
        str,
        typer.Option(
            "--pad-model",
            help="Passive model: 'auto' (MiniFASNet when configured, else human-antispoof).",
        ),
    ] = "auto",
) -> None:
    """Time the whole liveness check on a real session of N frames (640×360), after a warm-up."""

    def action() -> dict[str, Any]:
        import cv2

        from shiren.eval.bench import pin_to_cores
        from shiren.eval.liveness_eval import bench_liveness, bench_session
        from shiren.eval.provenance import provenance, write_json
        from shiren.liveness.check import LivenessChecker
        from shiren.liveness.config import load_config
        from shiren.liveness.frames import load_frames
        from shiren.models.mediapipe_face import MediapipeMeshTracker
        from shiren.models.registry import build_passive_model, get_entry
        from shiren.verifier import PROFILES, Verifier

        cpus = pin_to_cores(threads)
        cv2.setNumThreads(threads)
        config = load_config()
        verifier = Verifier.from_config(PROFILES["fast"].config(threads=threads))
        checker = LivenessChecker(
            verifier=verifier,
            tracker=MediapipeMeshTracker(get_entry("face-mesh-attention")),
            pad=build_passive_model(pad_model, threads=threads),
            config=config,
        )
        recording = load_frames(_require(video, "video"), config.frames)
        challenge, frames = bench_session(
            recording, config, n_frames=frames_n, start=start, seed=seed, now=time.time()
        )
        report = bench_liveness(checker, challenge, frames, repeat=repeat)
        report |= {
            "threads": threads,
            "pinned_cpus": cpus,
            "target": "≤ 300 ms for a 30-frame session on 2 cores",
            "meets_target": frames_n == 30 and report["check_ms"]["p95"] <= 300.0,
            "first_frame": start,
        }
        models = [
            {"name": m.name, "version": m.version, "sha256": m.sha256} for m in checker.models
        ]
        settings: dict[str, object] = {
            "command": " ".join(["shiren", *sys.argv[1:]]),
            "video": str(video),
        }
        report["provenance"] = provenance(settings, models)
        if out is not None:
            write_json(out, report)
        return report

    emit(run_guarded(True, action))

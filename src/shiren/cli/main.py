"""The ``shiren`` command line: thin wrappers over the Python API.

Exit codes: 0 a verdict was reached (match or not, pass or not); 2 the input could not be judged
(JSON with ``code`` and ``message`` on stdout when ``--json``); 3 shiren itself cannot work (a
model missing or corrupt, bad settings).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from shiren.errors import InputError, ShirenError

app = typer.Typer(
    name="shiren",
    help="shiren (实人): real-person verification: face quality, 1:1 match, evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="List, verify and build the models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of user messages: zh-CN or en.")]


def emit(obj: Any) -> None:
    """Print one JSON document (UTF-8, not ASCII-escaped) to stdout."""
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False))


def run_guarded(as_json: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn a ShirenError into the documented exit code and output."""
    try:
        return action()
    except ShirenError as exc:
        status = 2 if isinstance(exc, InputError) else 3
        if as_json:
            emit({"error": exc.to_dict(), **exc.to_dict()})
        else:
            typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(status) from None


ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="fast | standard (MobileFaceNet) | dlib-fast | dlib-standard | dlib-accurate",
    ),
]


def verifier_for(
    profile: str = "standard", threshold: float | None = None, policy: str = "largest_central"
) -> Any:
    """Build the real :class:`~shiren.Verifier` for a named profile (typed errors on bad names)."""
    from shiren.verifier import PROFILES, Verifier

    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile must be one of {', '.join(PROFILES)}")
    if policy not in {"single", "largest_central"}:
        raise typer.BadParameter("--policy must be 'single' or 'largest_central'")
    config = PROFILES[profile].config(threshold=threshold, face_policy=policy)
    return Verifier.from_config(config)


@app.command()
def compare(
    first: Annotated[Path, typer.Argument(help="First image (e.g. the live selfie).")],
    second: Annotated[Path, typer.Argument(help="Second image (e.g. the ID or reference photo).")],
    threshold: Annotated[
        float | None, typer.Option(help="Similarity threshold (default: calibrated).")
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Face choice: single | largest_central.")
    ] = "largest_central",
    profile: ProfileOpt = "standard",
    as_json: JsonOpt = False,
    lang: LangOpt = "en",
) -> None:
    """Say whether two images show the same person: similarity, threshold, match, reasons."""

    def action() -> dict[str, Any]:
        verifier = verifier_for(profile, threshold, policy)
        return dict(verifier.compare(first, second).to_dict(lang))

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        verdict = "MATCH" if result["match"] else "NO MATCH"
        typer.echo(
            f"{verdict}  similarity={result['similarity']:.4f}  threshold={result['threshold']:.4f}"
        )
        for reason in result["reasons"]:
            typer.echo(f"  [{reason['image']}] {reason['code']}: {reason['message']}")


@app.command()
def quality(
    image: Annotated[Path, typer.Argument(help="Image to judge.")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh-CN",
) -> None:
    """Judge whether a capture is good enough, with reason codes and user tips."""

    def action() -> dict[str, Any]:
        verifier = verifier_for()
        analysis = verifier.analyze(image)
        report: dict[str, Any] = analysis.quality.to_dict(lang)
        report["face"] = {
            "box": analysis.face.box.to_list(),
            "score": round(analysis.face.score, 4),
        }
        report["faces_found"] = len(analysis.faces)
        return report

    report = run_guarded(as_json, action)
    if as_json:
        emit(report)
    else:
        typer.echo("PASS" if report["passed"] else "RETRY")
        for reason in report["reasons"]:
            typer.echo(f"  {reason['code']}: {reason['message']}")


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Show every built-in model with its version, licence, source and sha256.

    The MiniFASNet anti-spoofing models are listed too: their ONNX translations are built by
    ``shiren models build`` from the ``.pth`` files in ``$SHIREN_MINIFASNET_DIR``.
    """
    from shiren.models import mobilefacenet
    from shiren.models.manifest import builtin_manifest
    from shiren.models.registry import (
        MINIFASNET_MODELS,
        default_model_dir,
        minifasnet_ensemble_description,
        minifasnet_entry,
    )

    rows = [entry.to_dict() for entry in builtin_manifest().values()]
    cache = default_model_dir()
    rows.append(mobilefacenet.entry(cache).to_dict())
    rows += [minifasnet_entry(name, cache).to_dict() for name in MINIFASNET_MODELS]
    rows.append(minifasnet_ensemble_description(cache).to_dict())
    if as_json:
        emit(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']:24} {row['licence']:11} {row['sha256'][:16]}…  {row['source']}")


@models_app.command("build")
def models_build(
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only on failure.")] = False,
    model_dir: Annotated[Path | None, typer.Option(help="Where built models go.")] = None,
) -> None:
    """Verify every built-in model's sha256 and build the ONNX translations of dlib's ResNet and
    MobileFaceNet (from the npm tarball the set-up packs into ``<model_dir>/npm``).

    The MiniFASNet translations are built too when ``SHIREN_MINIFASNET_DIR`` is set (or already
    cached and verified); otherwise they are skipped with a one-line note, not an error.
    """
    import os

    from shiren.models import mobilefacenet
    from shiren.models.manifest import builtin_manifest, sha256_file, verified_path
    from shiren.models.registry import (
        MINIFASNET_ENSEMBLE,
        MINIFASNET_ENV,
        MINIFASNET_MODELS,
        ONNX_DLIB,
        default_model_dir,
        get_entry,
        minifasnet_entry,
    )

    def minifasnet_lines() -> list[str]:
        folder = model_dir or default_model_dir()
        cached = all(
            Path(e.file).is_file() and sha256_file(Path(e.file)) == e.sha256
            for e in (minifasnet_entry(name, folder) for name in MINIFASNET_MODELS)
        )
        if not cached and not os.environ.get(MINIFASNET_ENV, "").strip():
            return [f"skip  {MINIFASNET_ENSEMBLE}-*  ({MINIFASNET_ENV} is not set)"]
        lines = []
        for name in [*MINIFASNET_MODELS, MINIFASNET_ENSEMBLE]:
            entry = get_entry(name, model_dir=folder)
            where = verified_path(entry) if entry.file else "(ensemble)"
            lines.append(f"ok  {name}  {where}  sha256={entry.sha256[:16]}…")
        return lines

    def action() -> list[str]:
        lines = [
            f"ok  {name}  {verified_path(entry)}" for name, entry in builtin_manifest().items()
        ]
        for name in (ONNX_DLIB, mobilefacenet.NAME):
            entry = get_entry(name, model_dir=model_dir)
            lines.append(f"ok  {name}  {verified_path(entry)}  sha256={entry.sha256[:16]}…")
        return lines + minifasnet_lines()

    lines = run_guarded(False, action)
    if not quiet:
        typer.echo("\n".join(lines))


def _register_subcommands() -> None:
    from shiren.cli import (
        bench_cmd,
        console_cmd,
        demo_cmd,
        eval_cmd,
        liveness_cmd,
        liveness_eval_cmd,
        models_add_cmd,
        pad_cmd,
        service_cmd,
        templates_cmd,
    )

    eval_cmd.register(app)
    bench_cmd.register(app)
    pad_cmd.register(app)
    liveness_cmd.register(app)
    liveness_eval_cmd.register(app)
    service_cmd.register(app)
    console_cmd.register(app)
    demo_cmd.register(app)
    templates_cmd.register(app)
    models_add_cmd.register(models_app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    _register_subcommands()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="shiren")

"""``shiren models add --onnx FILE``: plug in a lender's own face network, with its calibration.

A lender may license a stronger network than the registries offer.  This command checks the file
(sha256, loads it, probes its output), records it in a user manifest (JSON, the format of
:func:`shiren.models.manifest.load_user_manifest`) and prints its calibration report on LFW View 2
with shiren's own detection and alignment: 10-fold accuracy, TAR at FAR 1e-2 / 1e-3 and the
thresholds for them.  It then says how to serve with it (``SHIREN_MODEL_MANIFEST``,
``SHIREN_EMBEDDER``, ``SHIREN_MATCH_THRESHOLD``); subjects enrolled with another network keep
working (their checks use that network, and a passing step-up adds the new one's template).
Own-population calibration follows with ``shiren calibrate --gallery`` once the network serves;
``shiren eval fairness`` does not take a user network yet.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded
from shiren.models.manifest import sha256_file

ADAPTER = "shiren.models.onnx_embedder:OnnxEmbedder"
# beside a checkout (../shared/data) or where SHIREN_SHARED_DATA says, as the other evaluations
DEFAULT_LFW = (
    Path(
        os.environ.get(
            "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
        )
    )
    / "lfw_view2"
)


def default_manifest() -> Path:
    """``<model cache>/user_models.json``, beside the built ONNX translations."""
    from shiren.models.registry import default_model_dir

    return default_model_dir() / "user_models.json"


def _entry(
    onnx: Path, size: int, options: dict[str, Any], licence: str, source: str
) -> dict[str, Any]:
    digest = sha256_file(onnx)
    return {
        "version": f"user@{digest[:12]}",
        "sha256": digest,
        "licence": licence,
        "source": source or f"added by `shiren models add` from {onnx.name}",
        "input_size": [size, size],
        "adapter": ADAPTER,
        "file": str(onnx.resolve()),
        "options": options,
    }


def _check_loads(name: str, raw: dict[str, Any]) -> Any:
    """Build the adapter from a one-entry manifest: typed ``model.*`` errors for a bad file."""
    from shiren.models.manifest import load_user_manifest
    from shiren.models.registry import build_model

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / "check.json"
        scratch.write_text(json.dumps({name: raw}), encoding="utf-8")
        return build_model(name, extra=load_user_manifest(scratch))


def _write(manifest: Path, name: str, raw: dict[str, Any]) -> None:
    from shiren.errors import ConfigError, ErrorCode

    data: dict[str, Any] = {}
    try:
        if manifest.exists():
            data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None  # type: ignore[assignment]
    if not isinstance(data, dict):
        raise ConfigError(
            "--manifest exists but is not a readable JSON object; nothing was changed",
            code=ErrorCode.CONFIG_INVALID,
            detail={"manifest": str(manifest)},
        )
    data[name] = raw
    tmp = manifest.with_name(f"{manifest.name}.{os.getpid()}.tmp")
    try:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(manifest)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            "cannot write --manifest",
            code=ErrorCode.CONFIG_INVALID,
            detail={"manifest": str(manifest)},
        ) from None


def _calibrate(name: str, manifest: Path, lfw: Path, limit: int | None, workers: int) -> Any:
    """LFW View 2 with shiren's detection and mesh alignment, mesh + mirrored views."""
    from shiren.eval.embeddings import compute_templates
    from shiren.eval.pairs import limit_per_fold, read_pairs
    from shiren.eval.verification import score_pairs, verification_report
    from shiren.models.registry import default_model_dir
    from shiren.verifier import Verifier, VerifierConfig

    config = VerifierConfig(
        embedder=name, model_manifest=manifest, views=("mesh", "mesh-flip"), threshold=0.0
    )
    verifier = Verifier.from_config(config)
    pairs = read_pairs(lfw / "pairs.txt")
    if limit is not None:
        pairs = limit_per_fold(pairs, limit)
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    templates = compute_templates(
        verifier,
        lfw / "lfw-deepfunneled",
        paths,
        cache_dir=default_model_dir().parent / "templates",
        workers=workers,
    )
    data = score_pairs(pairs, templates, verifier.embedder.metric)
    report = verification_report(data, 0.0, len(paths), templates.failures)
    detail = report.get("tar_at_far_detail", {})
    return {
        "data": "LFW View 2" + (f" (first {limit} pairs per fold)" if limit else ""),
        "pairs": report["n_pairs"],
        "failed_images": report["n_failed_images"],
        "accuracy_mean": report["accuracy_mean"],
        "accuracy_std": report["accuracy_std"],
        "tar_at_far": report["tar_at_far"],
        "threshold_at_far": {k: v["threshold"] for k, v in detail.items()},
        "dim": verifier.embedder.dim,
        "metric": verifier.embedder.metric,
    }


def add(
    onnx: Annotated[Path, typer.Option("--onnx", help="The network's ONNX file.")],
    name: Annotated[str, typer.Option("--name", help="Its name (letters, digits, - and _).")],
    manifest: Annotated[
        Path | None, typer.Option(help="User manifest to write (default: in the model cache).")
    ] = None,
    input_size: Annotated[int, typer.Option(help="Chip side in pixels.")] = 112,
    layout: Annotated[str, typer.Option(help="NCHW | NHWC.")] = "NCHW",
    channel_order: Annotated[str, typer.Option(help="RGB | BGR.")] = "RGB",
    mean: Annotated[float, typer.Option(help="Subtracted from 0-255 pixels.")] = 127.5,
    std: Annotated[float, typer.Option(help="Divides after the mean.")] = 128.0,
    metric: Annotated[str, typer.Option(help="cosine | euclidean.")] = "cosine",
    alignment: Annotated[str, typer.Option(help="arcface (112 template) | dlib.")] = "arcface",
    licence: Annotated[str, typer.Option(help="Its licence, as you hold it.")] = "proprietary",
    source: Annotated[str, typer.Option(help="Where it came from.")] = "",
    lfw: Annotated[Path, typer.Option(help="LFW View 2 folder (pairs.txt, lfw-deepfunneled).")] = (
        DEFAULT_LFW
    ),
    limit: Annotated[int | None, typer.Option(help="Only the first N pairs of each fold.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Template worker processes.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a lender's own ONNX face embedder and print its calibration report."""
    from shiren.errors import ConfigError, ErrorCode
    from shiren.models.manifest import builtin_manifest
    from shiren.verifier import PROFILES

    target = manifest or default_manifest()

    def action() -> dict[str, Any]:
        taken = {*builtin_manifest(), *(p.embedder for p in PROFILES.values())}
        if not name.replace("-", "").replace("_", "").isalnum() or name in taken:
            raise ConfigError(
                "--name must be new and use letters, digits, - and _",
                code=ErrorCode.CONFIG_INVALID,
                detail={"name": name},
            )
        if not onnx.is_file():
            raise ConfigError("--onnx is not a file", code=ErrorCode.CONFIG_INVALID)
        options = {
            "layout": layout.upper(),
            "channel_order": channel_order.upper(),
            "mean": [mean] * 3,
            "std": [std] * 3,
            "metric": metric,
            "alignment": alignment,
        }
        raw = _entry(onnx, input_size, options, licence, source)
        model = _check_loads(name, raw)
        _write(target, name, raw)
        report: dict[str, Any] = {
            "name": name,
            "manifest": str(target),
            "sha256": raw["sha256"],
            "dim": int(model.dim),
        }
        if (lfw / "pairs.txt").is_file():
            report["calibration"] = _calibrate(name, target, lfw, limit, workers)
            proposed = report["calibration"]["threshold_at_far"].get("1e-3")
        else:
            report["calibration"] = None
            proposed = None
        report["serve_with"] = {
            "SHIREN_MODEL_MANIFEST": str(target),
            "SHIREN_EMBEDDER": name,
            "SHIREN_MATCH_THRESHOLD": proposed,
        }
        return report

    report = run_guarded(as_json, action)
    if as_json:
        emit(report)
        return
    typer.echo(f"added {name} ({report['dim']}-d, sha256 {report['sha256'][:16]}…) to {target}")
    cal = report["calibration"]
    if cal is None:
        typer.echo(f"no LFW at {lfw}: no calibration report (pass --lfw)")
    else:
        typer.echo(
            f"{cal['data']}: accuracy {cal['accuracy_mean'] * 100:.2f} % ± "
            f"{cal['accuracy_std'] * 100:.2f}, TAR@FAR 1e-3 {cal['tar_at_far'].get('1e-3')}, "
            f"thresholds {cal['threshold_at_far']}, failed images {cal['failed_images']}"
        )
    for key, value in report["serve_with"].items():
        typer.echo(f"  {key}={value}")
    typer.echo(
        "then serve with these and run `shiren calibrate --gallery --tenant ID` on your own "
        "population: LFW's FAR-1e-3 threshold alone protects no cohort (`shiren eval fairness` "
        "does not take a user network yet)"
    )


def register(models_app: typer.Typer) -> None:
    models_app.command("add")(add)


__all__ = ["add", "default_manifest", "register"]

"""``shiren models list`` and ``shiren models build``: the built-in models, their licences and
checksums, and the ONNX translations built from them (``shiren models add`` is in
:mod:`shiren.cli.models_add_cmd`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shiren.cli.common import JsonOpt, emit, run_guarded


def models_list(as_json: JsonOpt = False) -> None:
    """Show every built-in model with its version, licence, source and sha256, and which passive
    anti-spoofing model the liveness check uses.

    The passive candidates carry ``passive_in_use`` (JSON): the registry's ``human-antispoof``
    (built by ``shiren models build`` from the ``@vladmandic/human`` npm tarball; ``dtn-fas`` where
    the set-up predates that tarball) unless MiniFASNet is configured (its ONNX translations built
    from the ``.pth`` files in ``$SHIREN_MINIFASNET_DIR``).
    """
    from shiren.models import dtn_fas, human_fas, mobilefacenet
    from shiren.models.manifest import builtin_manifest
    from shiren.models.registry import (
        MINIFASNET_ENV,
        MINIFASNET_MODELS,
        active_passive_model,
        default_model_dir,
        minifasnet_ensemble_description,
        minifasnet_entry,
    )

    rows = [entry.to_dict() for entry in builtin_manifest().values()]
    cache = default_model_dir()
    active = active_passive_model(cache)
    rows.append(mobilefacenet.entry(cache).to_dict())
    rows.append(dtn_fas.entry(cache).to_dict() | {"passive_in_use": active == dtn_fas.NAME})
    for name in human_fas.NAMES:
        rows.append(human_fas.entry(name, cache).to_dict() | {"passive_in_use": active == name})
    rows += [minifasnet_entry(name, cache).to_dict() for name in MINIFASNET_MODELS]
    ensemble = minifasnet_ensemble_description(cache)
    rows.append(ensemble.to_dict() | {"passive_in_use": active == ensemble.name})
    if as_json:
        emit(rows)
        return
    for row in rows:
        typer.echo(f"{row['name']:24} {row['licence']:11} {row['sha256'][:16]}…  {row['source']}")
    why = (
        "MiniFASNet is configured"
        if active == ensemble.name
        else f"MiniFASNet is not configured: set {MINIFASNET_ENV} to use it"
    )
    typer.echo(f"passive anti-spoofing in use: {active} ({why}; docs/LIVENESS.md)")


def models_build(
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only on failure.")] = False,
    model_dir: Annotated[Path | None, typer.Option(help="Where built models go.")] = None,
) -> None:
    """Verify every built-in model's sha256 and build the ONNX translations of dlib's ResNet,
    MobileFaceNet and the anti-spoofing networks ``dtn-fas``, ``human-antispoof`` and
    ``human-liveness`` (from the npm tarballs the set-up packs into ``<model_dir>/npm``).

    The MiniFASNet translations are built too when ``SHIREN_MINIFASNET_DIR`` is set (or already
    cached and verified); otherwise they are skipped with a one-line note, not an error.
    """
    import os

    from shiren.models import dtn_fas, human_fas, mobilefacenet
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
        for name in (ONNX_DLIB, mobilefacenet.NAME, dtn_fas.NAME, *human_fas.NAMES):
            entry = get_entry(name, model_dir=model_dir)
            lines.append(f"ok  {name}  {verified_path(entry)}  sha256={entry.sha256[:16]}…")
        return lines + minifasnet_lines()

    lines = run_guarded(False, action)
    if not quiet:
        typer.echo("\n".join(lines))


def register(models_app: typer.Typer) -> None:
    models_app.command("list")(models_list)
    models_app.command("build")(models_build)


__all__ = ["models_build", "models_list", "register"]

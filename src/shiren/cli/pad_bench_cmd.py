"""``shiren bench pad``: ms per face of each passive PAD model, as percentiles (issue 19)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded


def pad_bench(
    images: Annotated[Path, typer.Option("--images", help="Folder of face images (recursive).")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="PAD model (repeat the option); default: dtn-fas, minifasnet."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many images (spread over the folder).")] = 100,
    repeat: Annotated[int, typer.Option(min=1, help="Timed passes over the faces.")] = 1,
    cores: Annotated[int, typer.Option(help="Pin the process to this many CPU cores.")] = 1,
) -> None:
    """Time each PAD model's live score per face (p50/p95/p99) with one thread per model."""
    from shiren.eval.bench import list_images, pin_to_cores
    from shiren.eval.pad_bench import bench_pad, faces
    from shiren.models.registry import build_model

    if not images.is_dir():
        raise typer.BadParameter(f"{images} is not a folder")
    names = list(dict.fromkeys(model or ["dtn-fas", "minifasnet"]))

    def action() -> dict[str, Any]:
        cpus = pin_to_cores(cores)
        built = {name: build_model(name, threads=1) for name in names}
        samples = faces(build_model("blazeface"), list_images(images, limit))
        if not samples:
            raise typer.BadParameter(f"no face found in the images under {images}")
        return {
            "faces": len(samples),
            "repeat": repeat,
            "cpus": cpus,
            "threads_per_model": 1,
            "ms_per_face": bench_pad(built, samples, repeat=repeat),
            "models": {
                n: {"version": m.info.version, "sha256": m.info.sha256} for n, m in built.items()
            },
        }

    emit(run_guarded(True, action))


__all__ = ["pad_bench"]

"""``shiren bench``: per-stage p50/p95 of the server-side check and the ratio to a dlib baseline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded, verifier_for
from shiren.cli.fraud_cmd import index_bench
from shiren.cli.pad_bench_cmd import pad_bench


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(
        help="Benchmarks: the image pipeline (no subcommand), `index` or `pad`."
    )
    bench_app.callback(invoke_without_command=True)(bench)
    bench_app.command("index")(index_bench)  # issue 6: the 1:N face index at scale
    bench_app.command("pad")(pad_bench)  # issue 19: ms per face of the passive PAD models
    app.add_typer(bench_app, name="bench")


def bench(
    ctx: typer.Context,
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder of face images (recursive).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many images (spread over the folder).")] = 60,
    cores: Annotated[int, typer.Option(help="Pin the process to this many CPU cores.")] = 1,
    baseline: Annotated[bool, typer.Option(help="Also time the dlib-style baseline.")] = True,
    profile: Annotated[
        str,
        typer.Option(help="Profile: fast | standard | dlib-fast | dlib-standard | dlib-accurate."),
    ] = "standard",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Time decode, detect, mesh, quality, align and embed on real images (one core by default)."""
    if ctx.invoked_subcommand is not None:
        return
    if images is None:
        raise typer.BadParameter("--images is required (or use a subcommand: index, pad)")
    from shiren.eval.bench import bench_baseline, bench_shiren, list_images, pin_to_cores, rss_mb

    if not images.is_dir():
        raise typer.BadParameter(f"{images} is not a folder")
    paths = list_images(images, limit)
    if not paths:
        raise typer.BadParameter(f"no images under {images}")
    cpus = pin_to_cores(cores)
    rss_before = rss_mb()
    start = time.perf_counter()
    verifier = run_guarded(as_json, lambda: verifier_for(profile))
    load_s = time.perf_counter() - start
    rss_loaded = rss_mb()
    ours = bench_shiren(verifier, paths)
    rss_after = rss_mb()
    report: dict[str, Any] = {
        "images": len(paths),
        "cpus": cpus,
        "profile": profile,
        "views": list(verifier.config.views),
        "model_load_s": round(load_s, 3),
        "stages": ours["stages"],
        "failures": ours["failures"],
        "total_p50_ms": ours["stages"]["total"]["p50_ms"],
        "total_p95_ms": ours["stages"]["total"]["p95_ms"],
        "memory": {"before_models": rss_before, "after_load": rss_loaded, "after_run": rss_after},
        "resident_mb": rss_after["rss_mb"],
    }
    if baseline:
        base = bench_baseline(paths)
        report["baseline"] = base
        report["baseline_p50_ms"] = base["p50_ms"]
        report["baseline_p95_ms"] = base["p95_ms"]
        report["speedup"] = round(base["p50_ms"] / report["total_p50_ms"], 2)
    if as_json:
        emit(report)
        return
    for stage, row in report["stages"].items():
        typer.echo(f"{stage:8} p50 {row['p50_ms']:8.2f} ms   p95 {row['p95_ms']:8.2f} ms")
    if baseline:
        typer.echo(
            f"baseline p50 {report['baseline_p50_ms']:.1f} ms → speed-up ×{report['speedup']}"
        )
    typer.echo(f"resident memory {report['resident_mb']} MiB (cpus {cpus})")

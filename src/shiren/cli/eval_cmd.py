"""``shiren eval verification`` and ``shiren calibrate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

eval_app = typer.Typer(
    help="Evaluate accuracy on real data, as an accountant would.", no_args_is_help=True
)

PairsOpt = Annotated[
    Path, typer.Option("--pairs", help="LFW pairs.txt or a CSV (img1,img2,same[,cohort]).")
]
ImagesOpt = Annotated[Path, typer.Option("--images", help="Folder the pair paths are relative to.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="Only the first N pairs of each fold.")
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Processes computing templates.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="Template cache folder.")]
ProfileOpt = Annotated[
    str, typer.Option("--profile", help="Template views: fast | standard | accurate.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.command("calibrate")(calibrate)


def _templates(
    pairs_file: Path,
    images: Path,
    limit: int | None,
    workers: int,
    cache: Path | None,
    profile: str,
    progress: bool = True,
) -> tuple[Any, Any, Any]:
    """Read pairs, build the verifier, compute (or load) every template with a progress bar."""
    from tqdm import tqdm

    from shiren.cli.main import verifier_for
    from shiren.eval.embeddings import compute_templates
    from shiren.eval.pairs import limit_per_fold, read_pairs
    from shiren.models.registry import default_model_dir

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    pairs = read_pairs(pairs_file)
    if limit is not None:
        pairs = limit_per_fold(pairs, limit)
    verifier = verifier_for(profile)
    paths = [p.a for p in pairs] + [p.b for p in pairs]
    cache_dir = cache or default_model_dir().parent / "templates"
    with tqdm(
        total=len(set(paths)), desc="templates", unit="img", disable=not progress, file=sys.stderr
    ) as bar:
        templates = compute_templates(
            verifier, images, paths, cache_dir=cache_dir, workers=workers, progress=bar.update
        )
    return pairs, verifier, templates


@eval_app.command("verification")
def verification(
    pairs: PairsOpt,
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json + plots).")],
    limit: LimitOpt = None,
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: ProfileOpt = "standard",
) -> None:
    """1:1 accuracy: LFW 10-fold protocol, AUC, EER, TAR@FAR, failures, cohorts, plots."""
    from shiren.cli.main import emit, run_guarded
    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.verification import score_pairs, verification_report, write_plots

    def action() -> dict[str, Any]:
        pair_list, verifier, templates = _templates(pairs, images, limit, workers, cache, profile)
        data = score_pairs(pair_list, templates, verifier.embedder.metric)
        report = verification_report(
            data,
            verifier.threshold,
            len({p.a for p in pair_list} | {p.b for p in pair_list}),
            templates.failures,
        )
        out.mkdir(parents=True, exist_ok=True)
        report["plots"] = write_plots(data, out)
        report["provenance"] = provenance(
            {
                "pairs": pairs.name,
                "limit": limit,
                "views": list(verifier.config.views),
                "face_policy": verifier.config.face_policy,
                "threshold": verifier.threshold,
                "metric": verifier.embedder.metric,
            },
            [_model_dict(m) for m in verifier.models],
        )
        write_json(out / "report.json", report)
        return report

    report = run_guarded(True, action)
    emit(
        {
            k: report[k]
            for k in (
                "accuracy_mean",
                "accuracy_std",
                "auc",
                "eer",
                "tar_at_far",
                "n_pairs",
                "n_failed",
            )
        }
    )


def _model_dict(info: Any) -> dict[str, str]:
    return {
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "licence": info.licence,
    }


def calibrate(
    pairs: PairsOpt,
    images: ImagesOpt,
    targets: Annotated[str, typer.Option(help="Comma-separated target FARs.")] = "1e-2,1e-3,1e-4",
    operating: Annotated[
        float, typer.Option(help="Target FAR of the shipped default threshold.")
    ] = 1e-3,
    limit: LimitOpt = None,
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: ProfileOpt = "standard",
    write: Annotated[
        Path | None, typer.Option("--write", help="Update this thresholds.json.")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the threshold CI.")] = 1000,
) -> None:
    """Thresholds for target FARs, with confidence intervals, from genuine and impostor pairs."""
    from shiren.cli.main import emit, run_guarded
    from shiren.eval.calibrate import calibrate_thresholds
    from shiren.eval.metrics import apply_failure_policy
    from shiren.eval.provenance import to_jsonable
    from shiren.eval.verification import score_pairs

    far_targets = sorted(
        {float(t) for t in targets.split(",") if t.strip()} | {operating}, reverse=True
    )

    def action() -> dict[str, Any]:
        pair_list, verifier, templates = _templates(pairs, images, limit, workers, cache, profile)
        data = score_pairs(pair_list, templates, verifier.embedder.metric)
        applied = apply_failure_policy(data.scores, data.labels, "exclude")
        genuine, impostor = applied.scores[applied.labels], applied.scores[~applied.labels]
        estimates = calibrate_thresholds(genuine, impostor, far_targets, n_boot=n_boot)
        result = {
            "embedder": verifier.embedder.info.name,
            "views": list(verifier.config.views),
            "data": str(pairs),
            "n_failed_pairs_excluded": applied.n_failed,
            "estimates": [to_jsonable(e) for e in estimates],
        }
        if write is not None:
            _write_thresholds(write, result, operating)
        return result

    emit(run_guarded(True, action))


def _write_thresholds(path: Path, result: dict[str, Any], operating: float) -> None:
    import json
    from datetime import UTC, datetime

    table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    by_far = {f"{e['far_target']:.0e}": e for e in result["estimates"]}
    chosen = next(e for e in result["estimates"] if e["far_target"] == operating)
    variant = "+".join(result["views"])
    table.setdefault(result["embedder"], {})[variant] = {
        "threshold": round(float(chosen["threshold"]), 4),
        "operating_far": operating,
        "by_far": {k: round(float(v["threshold"]), 4) for k, v in by_far.items()},
        "source": f"shiren calibrate on {Path(result['data']).name} "
        f"({chosen['n_impostor']} impostor, "
        f"{chosen['n_genuine']} genuine pairs)",
        "date": datetime.now(UTC).date().isoformat(),
    }
    path.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

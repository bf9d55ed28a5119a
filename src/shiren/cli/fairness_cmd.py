"""``shiren eval fairness``: error rates per cohort (FMR, FNMR, FTA with exact intervals,
worst/best ratios, DET), the quality gate's rejections by cohort, and optionally K-image
comparisons per cohort (issue 14).

Cohorts are for measurement only: no decision of shiren ever takes a demographic as input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shiren.cli.cohort_study import (
    CohortPairsOpt,
    LabelsOpt,
    MinAgeOpt,
    TargetsOpt,
    fairness_study,
    quality_by_cohort,
)
from shiren.cli.common import emit, model_dict, run_guarded
from shiren.cli.eval_common import CacheOpt, EvalProfileOpt, ImagesOpt, SeedOpt, WorkersOpt

if TYPE_CHECKING:
    from shiren.verifier import Verifier


def fairness(
    labels: LabelsOpt,
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json/.md + plots).")],
    pairs: CohortPairsOpt = None,
    min_age: MinAgeOpt = None,
    targets: TargetsOpt = "1e-3,1e-4",
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: EvalProfileOpt = "standard",
    quality: Annotated[
        bool, typer.Option("--quality/--no-quality", help="Also quality-gate rejections by cohort.")
    ] = True,
    images_per_side: Annotated[
        int | None,
        typer.Option(
            "--images-per-side",
            min=1,
            help="Also K-image comparisons per cohort (identity-labelled images; issue 14).",
        ),
    ] = None,
    seed: SeedOpt = 0,
) -> None:
    """Error rates per cohort (FMR, FNMR, FTA with exact 95 % intervals, worst/best ratios, DET).

    Cohorts are for measurement only: no decision of shiren ever takes a demographic as input.
    """
    from shiren.eval.fairness_report import markdown, report, write_plots
    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.quality_rates import markdown as quality_markdown

    def action() -> dict[str, Any]:
        verifier, study = fairness_study(
            labels, images, pairs, min_age, targets, workers, cache, profile
        )
        rep = report(study)
        out.mkdir(parents=True, exist_ok=True)
        rep["plots"] = write_plots(study, out)
        settings: dict[str, object] = {"labels": str(labels), "images": str(images)}
        settings["min_age"] = min_age
        settings |= {"pairs": str(pairs) if pairs else None, "profile": profile}
        settings |= {"views": list(verifier.config.views), "metric": verifier.embedder.metric}
        rep["provenance"] = provenance(settings, [model_dict(m) for m in verifier.models])
        text = markdown(rep)
        if quality:
            rep["quality_by_cohort"] = quality_by_cohort(
                verifier, labels, images, pairs, min_age, workers
            )
            text += "\n## Quality-gate rejections by cohort\n\n" + quality_markdown(
                rep["quality_by_cohort"]
            )
        if images_per_side is not None:
            rep["multi_image"] = _fairness_multi(labels, images, verifier, images_per_side, seed,
                                                 workers, cache, profile)  # fmt: skip
            text += rep["multi_image"].pop("markdown")
        write_json(out / "report.json", rep)
        (out / "report.md").write_text(text, encoding="utf-8")
        return rep

    rep = run_guarded(True, action)
    emit({k: rep[k] for k in ("fmr_ratio", "fnmr_ratio", "pair_seconds", "n_pairs")})


def _fairness_multi(
    labels: Path, images: Path, verifier: Verifier, k: int, seed: int, workers: int,
    cache: Path | None, profile: str,
) -> dict[str, Any]:  # fmt: skip
    """The per-cohort K-image section of the fairness report (with its Markdown table)."""
    from shiren.cli.multi_image_cmd import MARKDOWN_HEADER, fairness_by_cohort, markdown_row

    section = fairness_by_cohort(
        labels, images, verifier, k=k, seed=seed, workers=workers, cache=cache
    )
    rows = [
        markdown_row(name, profile, {**row, "protocol": {"images_per_side": k}})
        for name, row in section["cohorts"].items()
    ]
    title = f"\n## {k} images per side, by cohort (seed {seed})\n\n"
    section["markdown"] = title + MARKDOWN_HEADER + "\n" + "\n".join(rows) + "\n"
    return section


def register(eval_app: typer.Typer) -> None:
    eval_app.command("fairness")(fairness)


__all__ = ["fairness", "register"]

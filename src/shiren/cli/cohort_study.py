"""The per-cohort measurement behind ``shiren eval fairness`` and ``shiren calibrate-cohorts``:
labelled images → templates (cached, with a progress bar) → per-cohort pair tallies at the
shipped thresholds, and the quality gate's rejections by cohort.

Cohorts are for measurement only: no decision of shiren ever takes a demographic as input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shiren.cli.common import verifier_for

if TYPE_CHECKING:
    from shiren.verifier import Verifier

LabelsOpt = Annotated[
    Path,
    typer.Option(
        "--labels",
        help="Image labels: a CSV (path,cohort[,identity,gender,age]) or a folder of "
        "<cohort>_names.txt LFW lists.",
    ),
]
MinAgeOpt = Annotated[
    int | None, typer.Option("--min-age", help="Only images whose known age is >= this.")
]
TargetsOpt = Annotated[str, typer.Option("--targets", help="Comma-separated target FMRs.")]
CohortPairsOpt = Annotated[
    Path | None,
    typer.Option("--pairs", help="Only the images this pair list refers to (e.g. LFW pairs)."),
]


def select_labels(labels_src: Path, pairs: Path | None, min_age: int | None) -> list[Any]:
    """The labelled images to measure: age-filtered, and limited to a pair list's images."""
    from shiren.eval.cohorts import filter_min_age, read_labels, restrict_to

    labels = filter_min_age(read_labels(labels_src), min_age)
    if pairs is not None:
        from shiren.eval.pairs import read_pairs

        labels = restrict_to(labels, {p for x in read_pairs(pairs) for p in (x.a, x.b)})
    return list(labels)


def fairness_study(
    labels_src: Path,
    images: Path,
    pairs: Path | None,
    min_age: int | None,
    targets: str,
    workers: int,
    cache: Path | None,
    profile: str,
) -> tuple[Verifier, Any]:
    """Labels → templates (cached, progress bar) → per-cohort pair tallies."""
    from tqdm import tqdm

    from shiren.eval.embeddings import compute_templates
    from shiren.eval.fairness_report import measure
    from shiren.models.registry import default_model_dir

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    labels = select_labels(labels_src, pairs, min_age)
    if not labels:
        raise typer.BadParameter("no labelled images left to measure")
    verifier = verifier_for(profile)
    cache_dir = cache or default_model_dir().parent / "templates"
    paths = [x.path for x in labels]
    with tqdm(total=len(set(paths)), desc="templates", unit="img", file=sys.stderr) as bar:
        tset = compute_templates(
            verifier, images, paths, cache_dir=cache_dir, workers=workers, progress=bar.update
        )
    far = sorted({float(t) for t in targets.split(",") if t.strip()}, reverse=True)
    n_groups = len({x.cohort for x in labels}) + 1
    with tqdm(total=n_groups, desc="pairs", unit="cohort", file=sys.stderr) as bar:
        study = measure(
            labels,
            tset.templates,
            tset.failures,
            operating_thresholds(verifier),
            far,
            verifier.embedder.metric,
            progress=bar.update,
        )
    return verifier, study


def quality_by_cohort(
    verifier: Verifier,
    labels_src: Path,
    images: Path,
    pairs: Path | None,
    min_age: int | None,
    workers: int,
) -> dict[str, Any]:
    """Run the quality gate (no embedding) on every labelled image and tally reasons by cohort."""
    from tqdm import tqdm

    from shiren.eval.embeddings import compute_quality
    from shiren.eval.quality_rates import quality_by_cohort as tally

    labels = select_labels(labels_src, pairs, min_age)
    paths = [x.path for x in labels]
    with tqdm(total=len(set(paths)), desc="quality", unit="img", file=sys.stderr) as bar:
        outcomes = compute_quality(verifier, images, paths, workers=workers, progress=bar.update)
    return tally(labels, outcomes)


def operating_thresholds(verifier: Verifier) -> dict[str, float]:
    """The shipped threshold and the shipped per-FAR thresholds (LFW-calibrated)."""
    from shiren.thresholds import threshold_entry

    out = {"shipped": float(verifier.threshold)}
    try:
        entry = threshold_entry(verifier.embedder.info.name, views=verifier.config.views)
    except Exception:  # a custom threshold or embedder: only the operating one is known
        return out
    for far, value in sorted(entry.get("by_far", {}).items(), reverse=True):
        if float(far) < 1e-2 and float(value) not in out.values():
            out[f"lfw_far_{far}"] = float(value)
    return out


__all__ = [
    "CohortPairsOpt",
    "LabelsOpt",
    "MinAgeOpt",
    "TargetsOpt",
    "fairness_study",
    "operating_thresholds",
    "quality_by_cohort",
    "select_labels",
]

"""What the accuracy evaluations share (``shiren eval verification|fairness``, ``shiren
calibrate``, ``shiren calibrate-cohorts``): their options and the pair list → templates step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shiren.cli.common import verifier_for

if TYPE_CHECKING:
    from shiren.eval.embeddings import TemplateSet
    from shiren.eval.pairs import Pair
    from shiren.verifier import Verifier

PairsOpt = Annotated[
    Path | None,
    typer.Option("--pairs", help="LFW pairs.txt or a CSV (img1,img2,same[,cohort])."),
]
ImagesOpt = Annotated[Path, typer.Option("--images", help="Folder the pair paths are relative to.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="Only the first N pairs of each fold.")
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Processes computing templates.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="Template cache folder.")]
EvalProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile", help="Profile: fast | standard | dlib-fast | dlib-standard | dlib-accurate."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the draws and degradations.")]


def pairs_and_verifier(
    pairs: Path, images: Path, limit: int | None, profile: str
) -> tuple[list[Pair], Verifier]:
    """The pair list (the first ``limit`` of each fold) and the profile's verifier."""
    from shiren.eval.pairs import limit_per_fold, read_pairs

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    pair_list = read_pairs(pairs)
    if limit is not None:
        pair_list = limit_per_fold(pair_list, limit)
    return pair_list, verifier_for(profile)


def templates_of_pairs(
    pairs_file: Path,
    images: Path,
    limit: int | None,
    workers: int,
    cache: Path | None,
    profile: str,
    progress: bool = True,
) -> tuple[list[Pair], Verifier, TemplateSet]:
    """Read pairs, build the verifier, compute (or load) every template with a progress bar."""
    from tqdm import tqdm

    from shiren.eval.embeddings import compute_templates
    from shiren.models.registry import default_model_dir

    pairs, verifier = pairs_and_verifier(pairs_file, images, limit, profile)
    paths = [p.a for p in pairs] + [p.b for p in pairs]
    cache_dir = cache or default_model_dir().parent / "templates"
    with tqdm(
        total=len(set(paths)), desc="templates", unit="img", disable=not progress, file=sys.stderr
    ) as bar:
        templates = compute_templates(
            verifier, images, paths, cache_dir=cache_dir, workers=workers, progress=bar.update
        )
    return pairs, verifier, templates


__all__ = [
    "CacheOpt",
    "EvalProfileOpt",
    "ImagesOpt",
    "LimitOpt",
    "PairsOpt",
    "SeedOpt",
    "WorkersOpt",
    "pairs_and_verifier",
    "templates_of_pairs",
]

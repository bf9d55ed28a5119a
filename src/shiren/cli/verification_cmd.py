"""``shiren eval verification``: 1:1 accuracy on a pair list (LFW's 10-fold protocol), or with K
images per side from identity labels (issue 14), optionally against an ID-card-like reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, model_dict, run_guarded
from shiren.cli.eval_common import (
    CacheOpt,
    EvalProfileOpt,
    ImagesOpt,
    LimitOpt,
    PairsOpt,
    SeedOpt,
    WorkersOpt,
    pairs_and_verifier,
    templates_of_pairs,
)

KOpt = Annotated[
    int,
    typer.Option(
        "--images-per-side",
        min=1,
        help="K: each side is the fused template of K distinct images of the person (--labels; "
        "with --pairs only 1).",
    ),
]
DegradeOpt = Annotated[
    str,
    typer.Option(
        "--degrade-reference",
        help="Degrade the reference side before detection: none | idcard (a 102x126 ID-card "
        "chip portrait, printed and re-shot, JPEG q35).",
    ),
]
MaxGenuineOpt = Annotated[
    int, typer.Option("--max-genuine-per-person", min=1, help="Genuine comparisons per person.")
]
MaxSidesOpt = Annotated[
    int, typer.Option("--max-sides-per-person", min=1, help="K-image sets per person (impostors).")
]
MinImagesOpt = Annotated[
    int,
    typer.Option(
        "--min-images-per-person",
        min=0,
        help="Genuine comparisons only for people with at least this many images (default 2K).",
    ),
]


def verification(
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json + plots).")],
    pairs: PairsOpt = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Identity labels instead of pairs: a CSV (path,identity) or a folder of "
            "per-person folders (LFW).",
        ),
    ] = None,
    images_per_side: KOpt = 1,
    seed: SeedOpt = 0,
    degrade_reference: DegradeOpt = "none",
    max_genuine_per_person: MaxGenuineOpt = 15,
    max_sides_per_person: MaxSidesOpt = 10,
    min_images_per_person: MinImagesOpt = 0,
    limit: LimitOpt = None,
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: EvalProfileOpt = "standard",
) -> None:
    """1:1 accuracy: LFW 10-fold protocol, AUC, EER, TAR@FAR, failures, cohorts, plots; FNMR and
    FMR at the shipped decision.  With --labels: K images per side (issue 14)."""
    from shiren.cli.multi_image_cmd import check_degrade

    degrade = check_degrade(degrade_reference)
    if (pairs is None) == (labels is None):
        raise typer.BadParameter("give exactly one of --pairs and --labels")
    if labels is not None:
        _verification_labelled(
            labels, images, out, images_per_side, seed, degrade,
            (max_genuine_per_person, max_sides_per_person, min_images_per_person), workers, cache,
            profile,
        )  # fmt: skip
        return
    assert pairs is not None
    if images_per_side != 1:
        raise typer.BadParameter("--images-per-side > 1 needs --labels (identities)")
    _verification_pairs(pairs, images, out, limit, workers, cache, profile, degrade, seed)


def _verification_pairs(
    pairs: Path, images: Path, out: Path, limit: int | None, workers: int, cache: Path | None,
    profile: str, degrade: str, seed: int,
) -> None:  # fmt: skip
    from shiren.cli.multi_image_cmd import pair_decision, pair_templates, score_reference_pairs
    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.verification import score_pairs, verification_report, write_plots

    def action() -> dict[str, Any]:
        if degrade == "none":
            pair_list, verifier, templates = templates_of_pairs(
                pairs, images, limit, workers, cache, profile
            )
            failures = templates.failures
            data = score_pairs(pair_list, templates, verifier.embedder.metric)
        else:
            pair_list, verifier = pairs_and_verifier(pairs, images, limit, profile)
            ref, probe = pair_templates(verifier, pair_list, images, cache, workers, degrade, seed)
            failures = {**probe.failures, **{f"reference:{k}": v for k, v in ref.failures.items()}}
            data = score_reference_pairs(pair_list, ref, probe, verifier.embedder.metric)
        report = verification_report(
            data,
            verifier.threshold,
            len({p.a for p in pair_list} | {p.b for p in pair_list}),
            failures,
        )
        report["decision"] = pair_decision(data, verifier, degrade)
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
                "degrade_reference": degrade,
                "seed": seed,
            },
            [model_dict(m) for m in verifier.models],
        )
        write_json(out / "report.json", report)
        return report

    report = run_guarded(True, action)
    keys = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far", "n_pairs", "n_failed")
    emit({**{k: report[k] for k in keys}, "decision": report["decision"]})


def _verification_labelled(
    labels: Path, images: Path, out: Path, k: int, seed: int, degrade: str,
    caps: tuple[int, int, int], workers: int, cache: Path | None, profile: str,
) -> None:  # fmt: skip
    """K images per side from identity labels: report.json and report.md in ``out``."""
    from shiren.cli.multi_image_cmd import MARKDOWN_HEADER, compact, labelled_study, markdown_row
    from shiren.eval.provenance import provenance, write_json

    def action() -> dict[str, Any]:
        verifier, report = labelled_study(
            labels, images, k=k, seed=seed, degrade=degrade, caps=caps, workers=workers,
            cache=cache, profile=profile,
        )  # fmt: skip
        settings: dict[str, object] = {"labels": str(labels), "images": str(images)}
        settings |= {"profile": profile, "views": list(verifier.config.views)}
        settings |= {"metric": verifier.embedder.metric, **report["protocol"]}
        report["provenance"] = provenance(settings, [model_dict(m) for m in verifier.models])
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "report.json", report)
        row = markdown_row(images.resolve().name, profile, report)
        (out / "report.md").write_text(f"{MARKDOWN_HEADER}\n{row}\n", encoding="utf-8")
        return report

    emit(compact(run_guarded(True, action)))


def register(eval_app: typer.Typer) -> None:
    eval_app.command("verification")(verification)


__all__ = ["register", "verification"]

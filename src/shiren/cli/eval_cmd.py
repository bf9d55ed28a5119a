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
    Path | None,
    typer.Option("--pairs", help="LFW pairs.txt or a CSV (img1,img2,same[,cohort])."),
]
ImagesOpt = Annotated[Path, typer.Option("--images", help="Folder the pair paths are relative to.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="Only the first N pairs of each fold.")
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Processes computing templates.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="Template cache folder.")]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile", help="Profile: fast | standard | dlib-fast | dlib-standard | dlib-accurate."
    ),
]


def register(app: typer.Typer) -> None:
    from shiren.cli.fraud_cmd import duplicates

    eval_app.command("duplicates")(duplicates)  # issue 6: 1:N duplicate identities
    app.add_typer(eval_app, name="eval")
    app.command("calibrate")(calibrate)
    app.command("calibrate-cohorts")(calibrate_cohorts)


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


KOpt = Annotated[
    int,
    typer.Option(
        "--images-per-side",
        min=1,
        help="K: each side is the fused template of K distinct images of the person (--labels; "
        "with --pairs only 1).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the draws and degradations.")]
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


@eval_app.command("verification")
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
    profile: ProfileOpt = "standard",
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
    from shiren.cli.main import emit, run_guarded
    from shiren.cli.multi_image_cmd import pair_decision, pair_templates, score_reference_pairs
    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.verification import score_pairs, verification_report, write_plots

    def action() -> dict[str, Any]:
        if degrade == "none":
            pair_list, verifier, templates = _templates(
                pairs, images, limit, workers, cache, profile
            )
            failures = templates.failures
            data = score_pairs(pair_list, templates, verifier.embedder.metric)
        else:
            pair_list, verifier = _pairs_and_verifier(pairs, images, limit, profile)
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
            [_model_dict(m) for m in verifier.models],
        )
        write_json(out / "report.json", report)
        return report

    report = run_guarded(True, action)
    keys = ("accuracy_mean", "accuracy_std", "auc", "eer", "tar_at_far", "n_pairs", "n_failed")
    emit({**{k: report[k] for k in keys}, "decision": report["decision"]})


def _pairs_and_verifier(
    pairs: Path, images: Path, limit: int | None, profile: str
) -> tuple[Any, Any]:
    from shiren.cli.main import verifier_for
    from shiren.eval.pairs import limit_per_fold, read_pairs

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    pair_list = read_pairs(pairs)
    if limit is not None:
        pair_list = limit_per_fold(pair_list, limit)
    return pair_list, verifier_for(profile)


def _verification_labelled(
    labels: Path, images: Path, out: Path, k: int, seed: int, degrade: str,
    caps: tuple[int, int, int], workers: int, cache: Path | None, profile: str,
) -> None:  # fmt: skip
    """K images per side from identity labels: report.json and report.md in ``out``."""
    from shiren.cli.main import emit, run_guarded
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
        report["provenance"] = provenance(settings, [_model_dict(m) for m in verifier.models])
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "report.json", report)
        row = markdown_row(images.resolve().name, profile, report)
        (out / "report.md").write_text(f"{MARKDOWN_HEADER}\n{row}\n", encoding="utf-8")
        return report

    emit(compact(run_guarded(True, action)))


def _model_dict(info: Any) -> dict[str, str]:
    return {
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "licence": info.licence,
    }


def calibrate(
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="LFW pairs.txt or a CSV (img1,img2,same[,cohort])."),
    ] = None,
    images: Annotated[
        Path | None, typer.Option("--images", help="Folder the pair paths are relative to.")
    ] = None,
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
    gallery: Annotated[
        bool, typer.Option("--gallery", help="Use a tenant's enrolled faces (impostor pairs).")
    ] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant id (--gallery).")] = None,
    target_fmr: Annotated[
        str, typer.Option("--target-fmr", help="Comma-separated target FMRs (--gallery).")
    ] = "1e-3,1e-4",
    max_pairs: Annotated[int, typer.Option(help="Pairs scored at most (--gallery).")] = 5_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (--gallery).")] = False,
) -> None:
    """Thresholds for target FARs, with confidence intervals, from genuine and impostor pairs
    (--pairs/--images), or from a tenant's enrolled gallery (--gallery --tenant ID)."""
    if gallery or pairs is None or images is None:  # the gallery's own command, in gallery_cmd
        from shiren.cli.gallery_cmd import calibrate_gallery

        calibrate_gallery(gallery, tenant, target_fmr, as_json=as_json, max_pairs=max_pairs)
        return
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
    """Record the pair-based (LFW) thresholds, keep any cohort-aware record already there, and make
    the shipped threshold the stricter of the two at the operating FAR (see :func:`protective`)."""
    import json
    from datetime import UTC, datetime

    table = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    by_far = {f"{e['far_target']:.0e}": e for e in result["estimates"]}
    chosen = next(e for e in result["estimates"] if e["far_target"] == operating)
    variant = "+".join(result["views"])
    entry = table.setdefault(result["embedder"], {}).setdefault(variant, {})
    entry.update(
        {
            "operating_far": operating,
            "by_far": {k: round(float(v["threshold"]), 4) for k, v in by_far.items()},
            "source": f"shiren calibrate on {Path(result['data']).name} "
            f"({chosen['n_impostor']} impostor, {chosen['n_genuine']} genuine pairs)",
            "date": datetime.now(UTC).date().isoformat(),
        }
    )
    entry["threshold"] = protective(entry)
    path.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_cohort_thresholds(
    path: Path, verifier: Any, name: str, labels: Path, min_age: int | None, result: dict[str, Any]
) -> None:
    """Add a cohort-aware record to the embedder's entry and re-derive the shipped threshold."""
    import json
    from datetime import UTC, datetime

    table = json.loads(path.read_text(encoding="utf-8"))
    variant = "+".join(verifier.config.views)
    entry = table.setdefault(verifier.embedder.info.name, {}).setdefault(variant, {})
    record: dict[str, Any] = {
        f"{float(r['target']):.0e}": round(float(r["threshold"]), 4) for r in result["cohort_aware"]
    }
    record["binding"] = {
        f"{float(r['target']):.0e}": r["binding_cohort"] for r in result["cohort_aware"]
    }
    record["source"] = f"shiren calibrate-cohorts on {labels.parent.name}/{labels.name}" + (
        f" (age >= {min_age})" if min_age is not None else ""
    )
    record["date"] = datetime.now(UTC).date().isoformat()
    entry.setdefault("cohort_aware", {})[name] = record
    if "by_far" in entry and "operating_far" in entry:
        entry["threshold"] = protective(entry)
    path.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def protective(entry: dict[str, Any]) -> float:
    """The shipped threshold: the highest of the pair-calibrated threshold at the operating FAR and
    every cohort-aware threshold at that FAR (issue 8: protect the worst cohort)."""
    key = f"{float(entry['operating_far']):.0e}"
    candidates = [float(entry["by_far"][key])]
    for record in entry.get("cohort_aware", {}).values():
        if key in record:
            candidates.append(float(record[key]))
    return round(max(candidates), 4)


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


def _select_labels(labels_src: Path, pairs: Path | None, min_age: int | None) -> list[Any]:
    """The labelled images to measure: age-filtered, and limited to a pair list's images."""
    from shiren.eval.cohorts import filter_min_age, read_labels, restrict_to

    labels = filter_min_age(read_labels(labels_src), min_age)
    if pairs is not None:
        from shiren.eval.pairs import read_pairs

        labels = restrict_to(labels, {p for x in read_pairs(pairs) for p in (x.a, x.b)})
    return list(labels)


def _fairness_study(
    labels_src: Path,
    images: Path,
    pairs: Path | None,
    min_age: int | None,
    targets: str,
    workers: int,
    cache: Path | None,
    profile: str,
) -> tuple[Any, Any]:
    """Labels → templates (cached, progress bar) → per-cohort pair tallies."""
    from tqdm import tqdm

    from shiren.cli.main import verifier_for
    from shiren.eval.embeddings import compute_templates
    from shiren.eval.fairness_report import measure
    from shiren.models.registry import default_model_dir

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    labels = _select_labels(labels_src, pairs, min_age)
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
            _operating_thresholds(verifier),
            far,
            verifier.embedder.metric,
            progress=bar.update,
        )
    return verifier, study


def _quality_by_cohort(
    verifier: Any,
    labels_src: Path,
    images: Path,
    pairs: Path | None,
    min_age: int | None,
    workers: int,
) -> dict[str, Any]:
    """Run the quality gate (no embedding) on every labelled image and tally reasons by cohort."""
    from tqdm import tqdm

    from shiren.eval.embeddings import compute_quality
    from shiren.eval.quality_rates import quality_by_cohort

    labels = _select_labels(labels_src, pairs, min_age)
    paths = [x.path for x in labels]
    with tqdm(total=len(set(paths)), desc="quality", unit="img", file=sys.stderr) as bar:
        outcomes = compute_quality(verifier, images, paths, workers=workers, progress=bar.update)
    return quality_by_cohort(labels, outcomes)


def _operating_thresholds(verifier: Any) -> dict[str, float]:
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


@eval_app.command("fairness")
def fairness(
    labels: LabelsOpt,
    images: ImagesOpt,
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json/.md + plots).")],
    pairs: CohortPairsOpt = None,
    min_age: MinAgeOpt = None,
    targets: TargetsOpt = "1e-3,1e-4",
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: ProfileOpt = "standard",
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
    from shiren.cli.main import emit, run_guarded
    from shiren.eval.fairness_report import markdown, report, write_plots
    from shiren.eval.provenance import provenance, write_json
    from shiren.eval.quality_rates import markdown as quality_markdown

    def action() -> dict[str, Any]:
        verifier, study = _fairness_study(
            labels, images, pairs, min_age, targets, workers, cache, profile
        )
        rep = report(study)
        out.mkdir(parents=True, exist_ok=True)
        rep["plots"] = write_plots(study, out)
        settings: dict[str, object] = {"labels": str(labels), "images": str(images)}
        settings["min_age"] = min_age
        settings |= {"pairs": str(pairs) if pairs else None, "profile": profile}
        settings |= {"views": list(verifier.config.views), "metric": verifier.embedder.metric}
        rep["provenance"] = provenance(settings, [_model_dict(m) for m in verifier.models])
        text = markdown(rep)
        if quality:
            rep["quality_by_cohort"] = _quality_by_cohort(
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
    labels: Path, images: Path, verifier: Any, k: int, seed: int, workers: int,
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


def calibrate_cohorts(
    labels: LabelsOpt,
    images: ImagesOpt,
    targets: TargetsOpt = "1e-3,1e-4",
    pairs: CohortPairsOpt = None,
    min_age: MinAgeOpt = None,
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: ProfileOpt = "standard",
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Record it in this thresholds.json (under --name)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Name of this cohort-aware record.")] = "cohorts",
) -> None:
    """Cohort-aware threshold: the single global threshold that keeps EVERY cohort's FMR at or
    below each target, and the FNMR per cohort it costs.

    Measurement only: the threshold is one number for everyone; no decision ever takes a
    person's demographic as input.
    """
    from shiren.cli.main import emit, run_guarded
    from shiren.eval.fairness_report import cohort_aware

    def action() -> dict[str, Any]:
        verifier, study = _fairness_study(
            labels, images, pairs, min_age, targets, workers, cache, profile
        )
        result = {
            "shipped_threshold": study.thresholds["shipped"],
            "cohort_aware": [cohort_aware(study, t) for t in study.targets],
        }
        if write is not None:
            _write_cohort_thresholds(write, verifier, name, labels, min_age, result)
        return result

    emit(run_guarded(True, action))

"""``shiren calibrate`` and ``shiren calibrate-cohorts``: thresholds for target FARs from genuine
and impostor pairs (or a tenant's enrolled gallery, :mod:`shiren.cli.gallery_cmd`), the
cohort-aware threshold that protects the worst cohort, and how both are recorded in a
``thresholds.json`` (the shipped threshold is :func:`protective`)."""

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
)
from shiren.cli.common import emit, run_guarded
from shiren.cli.eval_common import (
    CacheOpt,
    EvalProfileOpt,
    ImagesOpt,
    LimitOpt,
    WorkersOpt,
    templates_of_pairs,
)

if TYPE_CHECKING:
    from shiren.verifier import Verifier


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
    profile: EvalProfileOpt = "standard",
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
    from shiren.eval.calibrate import calibrate_thresholds
    from shiren.eval.metrics import apply_failure_policy
    from shiren.eval.provenance import to_jsonable
    from shiren.eval.verification import score_pairs

    far_targets = sorted(
        {float(t) for t in targets.split(",") if t.strip()} | {operating}, reverse=True
    )

    def action() -> dict[str, Any]:
        pair_list, verifier, templates = templates_of_pairs(
            pairs, images, limit, workers, cache, profile
        )
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


def calibrate_cohorts(
    labels: LabelsOpt,
    images: ImagesOpt,
    targets: TargetsOpt = "1e-3,1e-4",
    pairs: CohortPairsOpt = None,
    min_age: MinAgeOpt = None,
    workers: WorkersOpt = 2,
    cache: CacheOpt = None,
    profile: EvalProfileOpt = "standard",
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
    from shiren.eval.fairness_report import cohort_aware

    def action() -> dict[str, Any]:
        verifier, study = fairness_study(
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
    path: Path,
    verifier: Verifier,
    name: str,
    labels: Path,
    min_age: int | None,
    result: dict[str, Any],
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


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
    app.command("calibrate-cohorts")(calibrate_cohorts)


__all__ = ["calibrate", "calibrate_cohorts", "protective", "register"]

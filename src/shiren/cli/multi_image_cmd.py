"""The multi-image and degraded-reference parts of ``shiren eval verification`` / ``fairness``
(issue 14): K images per side from identity labels, an ID-card-like reference side."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from shiren.cli.common import verifier_for

DECISION_KEYS = ("n_genuine", "n_impostor", "n_failed_genuine", "n_failed_impostor")


def check_degrade(spec: str) -> str:
    """The validated ``--degrade-reference`` value (``none`` or a known spec)."""
    from shiren.core.degrade import parse_spec

    try:
        parse_spec(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return spec.strip().lower()


def decision_thresholds(verifier: Any) -> dict[str, float]:
    """The shipped decision: the verifier's ``threshold`` and, where the shipped table has one,
    the ``second_factor_threshold`` (below it: reject; between the two: a second factor)."""
    from shiren.thresholds import threshold_entry

    out = {"shipped": float(verifier.threshold)}
    try:
        entry = threshold_entry(verifier.embedder.info.name, views=verifier.config.views)
    except Exception:  # a custom embedder or threshold: only the operating one is known
        return out
    if "second_factor_threshold" in entry:
        out["second_factor"] = float(entry["second_factor_threshold"])
    return out


def templates_for(
    verifier: Any,
    images: Path,
    paths: Sequence[str],
    cache: Path | None,
    workers: int,
    degrade: str = "none",
    seed: int = 0,
) -> Any:
    """Templates of ``paths`` (clean, or made ID-card-like references), with a progress bar."""
    from tqdm import tqdm

    from shiren.eval.embeddings import compute_templates
    from shiren.models.registry import default_model_dir

    cache_dir = cache or default_model_dir().parent / "templates"
    label = "templates" if degrade == "none" else f"templates ({degrade})"
    with tqdm(total=len(set(paths)), desc=label, unit="img", file=sys.stderr) as bar:
        return compute_templates(
            verifier,
            images,
            paths,
            cache_dir=cache_dir,
            workers=workers,
            progress=bar.update,
            degrade=degrade,
            seed=seed,
        )


def _failures(tset: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for code in tset.failures.values():
        counts[code] = counts.get(code, 0) + 1
    return {"n_failed": len(tset.failures), "by_code": dict(sorted(counts.items()))}


def labelled_study(
    labels: Path,
    images: Path,
    *,
    k: int,
    seed: int,
    degrade: str,
    caps: tuple[int, int, int],
    workers: int,
    cache: Path | None,
    profile: str,
) -> tuple[Any, dict[str, Any]]:
    """The multi-image report (JSON-ready) for identity-labelled images, and the verifier.
    ``caps``: (genuine comparisons per person, K-image sets per person, minimum images)."""
    from shiren.eval.identities import read_identities
    from shiren.eval.multi_image import per_person, plan, score, summarize

    if not images.is_dir():
        raise typer.BadParameter(f"--images {images} is not a folder")
    ids = read_identities(labels)
    the_plan = plan(ids.people, k, seed, max_genuine=caps[0], max_sides=caps[1], min_images=caps[2])
    paths = sorted({p for s in _all_sides(the_plan) for p in s.paths})
    verifier = verifier_for(profile)
    clean = templates_for(verifier, images, paths, cache, workers)
    ref = clean
    if degrade != "none":
        ref = templates_for(verifier, images, paths, cache, workers, degrade, seed)
    scores = score(the_plan, ref.templates, clean.templates if ref is not clean else None,
                   verifier.embedder.metric)  # fmt: skip
    thresholds = decision_thresholds(verifier)
    report: dict[str, Any] = {
        "protocol": protocol(the_plan, degrade, caps),
        "people": {
            "labelled": the_plan.n_people,
            "with_2k_images": the_plan.n_people_genuine,  # and at least min_images_per_person
            "with_k_images": the_plan.n_people_impostor,
            "unlabelled_rows": ids.n_unlabelled,
        },
        "images": {"used": len(paths), "clean": _failures(clean)},
        **summarize(scores, thresholds),
        "per_person": per_person(scores, thresholds["shipped"]),
    }
    if degrade != "none":
        report["images"]["reference"] = _failures(ref)
    return verifier, report


def _all_sides(the_plan: Any) -> list[Any]:
    return [s for pair in the_plan.genuine for s in pair] + list(the_plan.sides)


def protocol(the_plan: Any, degrade: str, caps: tuple[int, int, int]) -> dict[str, Any]:
    """The settings that define the comparisons, for the report and its provenance."""
    return {
        "images_per_side": the_plan.k,
        "seed": the_plan.seed,
        "degrade_reference": degrade,
        "max_genuine_per_person": caps[0],
        "max_sides_per_person": caps[1],
        "min_images_per_person": max(2 * the_plan.k, caps[2]),
        "fusion": "shiren.core.fusion.fuse (unit-length mean of unit templates); K=1: unchanged",
        "both_ways": degrade != "none",
    }


def pair_templates(
    verifier: Any, pairs: Sequence[Any], images: Path, cache: Path | None, workers: int,
    degrade: str, seed: int,
) -> tuple[Any, Any]:  # fmt: skip
    """(reference templates for the ``a`` images, probe templates for the ``b`` images): the same
    set unless the reference is degraded."""
    clean = templates_for(verifier, images, [p.a for p in pairs] + [p.b for p in pairs], cache,
                          workers)  # fmt: skip
    if degrade == "none":
        return clean, clean
    ref = templates_for(verifier, images, [p.a for p in pairs], cache, workers, degrade, seed)
    return ref, clean


def score_reference_pairs(pairs: Sequence[Any], ref: Any, probe: Any, metric: Any) -> Any:
    """:func:`shiren.eval.verification.score_pairs`, ``a`` from ``ref`` and ``b`` from ``probe``."""
    from shiren.core.similarity import paired_similarity
    from shiren.eval.verification import PairScores

    scores = np.full(len(pairs), np.nan, dtype=np.float64)
    ok = [i for i, p in enumerate(pairs) if p.a in ref.templates and p.b in probe.templates]
    if ok:
        a = np.stack([ref.templates[pairs[i].a] for i in ok])
        b = np.stack([probe.templates[pairs[i].b] for i in ok])
        scores[ok] = paired_similarity(a, b, metric)
    return PairScores(
        scores=scores,
        labels=np.array([p.same for p in pairs], dtype=bool),
        folds=np.array([p.fold if p.fold is not None else 0 for p in pairs], dtype=np.int64),
        cohorts=tuple(p.cohort for p in pairs),
    )


def pair_decision(data: Any, verifier: Any, degrade: str) -> dict[str, Any]:
    """The shipped-decision summary of a pair list (K = 1): :func:`summarize` of its scores."""
    from shiren.eval.multi_image import Scores, summarize

    scores = Scores(
        genuine=data.scores[data.labels].astype(np.float32),
        genuine_people=("",) * int(data.labels.sum()),
        impostor=data.scores[~data.labels].astype(np.float32),
        n_sides_partial=0,
        n_sides_failed=0,
        ordered=False,
    )
    out = summarize(scores, decision_thresholds(verifier))
    out["degrade_reference"] = degrade
    out["reference_side"] = "the first image of each pair" if degrade != "none" else None
    return out


def compact(report: Mapping[str, Any]) -> dict[str, Any]:
    """The printed summary: everything but the per-person rows."""
    return {k: v for k, v in report.items() if k not in {"per_person", "provenance"}}


def markdown_row(name: str, profile: str, report: Mapping[str, Any]) -> str:
    """One Markdown table row: data, profile, K, reference, people, counts and the rates."""
    at = report["at_threshold"]
    proto = report.get("protocol", {})
    cells = [
        name,
        profile,
        str(proto.get("images_per_side", 1)),
        str(proto.get("degrade_reference", report.get("degrade_reference", "none"))),
        str(report.get("people", {}).get("with_2k_images", "—")),
        f"{report['n_genuine']:,}",
        f"{report['n_impostor']:,}",
        _pct(at["shipped"]["fnmr"]),
        _pct(at["second_factor"]["fnmr"]) if "second_factor" in at else "—",
        _pct(at["shipped"]["fmr"]),
        _pct(at["second_factor"]["fmr"]) if "second_factor" in at else "—",
    ]
    fm = report.get("at_fmr")
    cells += [f"{fm['threshold']:.4f}", _pct(fm["fnmr"])] if fm else ["—", "—"]
    return "| " + " | ".join(cells) + " |"


MARKDOWN_HEADER = (
    "| data | profile | K | reference | people ≥ 2K | genuine | impostor | FNMR @ shipped "
    "| FNMR @ second factor | FMR @ shipped | FMR @ second factor | threshold @ FMR 1e-3 "
    "| FNMR @ FMR 1e-3 |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _pct(rate: Mapping[str, Any]) -> str:
    """``k/n = r``: a percentage from 1 % up, else scientific (FMRs are small)."""
    if not rate["trials"]:
        return "—"
    value = float(rate["rate"])
    shown = f"{100.0 * value:.1f} %" if value >= 0.01 or value == 0.0 else f"{value:.1e}"
    return f"{rate['errors']}/{rate['trials']:,} = {shown}"


def fairness_by_cohort(
    labels_src: Path,
    images: Path,
    verifier: Any,
    *,
    k: int,
    seed: int,
    workers: int,
    cache: Path | None,
) -> dict[str, Any]:
    """The multi-image summary per cohort (identity-labelled images only): K-image genuine and
    impostor comparisons inside each cohort, at the shipped decision."""
    from shiren.eval.cohorts import read_labels
    from shiren.eval.multi_image import plan, score, summarize

    labelled = [x for x in read_labels(labels_src) if x.identity]
    tset = templates_for(verifier, images, [x.path for x in labelled], cache, workers)
    thresholds = decision_thresholds(verifier)
    out: dict[str, Any] = {}
    for cohort in sorted({x.cohort for x in labelled}):
        people: dict[str, list[str]] = {}
        for x in labelled:
            if x.cohort == cohort and x.identity:
                people.setdefault(x.identity, []).append(x.path)
        the_plan = plan(people, k, seed)
        if not the_plan.genuine:
            continue
        summary = summarize(score(the_plan, tset.templates, None, verifier.embedder.metric),
                            thresholds)  # fmt: skip
        out[cohort] = {"people": {"with_2k_images": the_plan.n_people_genuine}, **summary}
    return {"images_per_side": k, "seed": seed, "cohorts": out}

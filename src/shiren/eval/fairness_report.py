"""A per-cohort fairness study: FMR, FNMR and FTA per cohort, worst/best ratios, the cohort-aware
threshold, and the JSON / Markdown / PNG forms of the report (numpy + matplotlib, no models).

See :mod:`shiren.eval.fairness` for the definitions.  Cohorts are used for measurement only.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.similarity import Metric
from shiren.eval.cohorts import LabelledImage
from shiren.eval.fairness import (
    CROSS,
    Rate,
    Tally,
    bootstrap_fmr_ci,
    fmr_at,
    fmr_at_threshold,
    fmr_curve,
    fnmr_at,
    identity_codes,
    keep_for,
    pair_count,
    ratio,
    tally_group,
    threshold_at_fmr,
)

Progress = Callable[[int], None]
BOOT_MAX_IMAGES = 3000  # the image bootstrap holds the cohort's full score matrix

METHOD = (
    "95 % Clopper-Pearson (exact binomial) intervals. Impostor pairs = all unordered pairs of "
    "distinct images in the cohort whose identities differ; an image without an identity label "
    "is its own identity, so every pair with it counts as an impostor pair (near-duplicates of "
    "one person inflate FMR: see top_impostor_pairs). Pairs share images and are not "
    "independent, so the binomial interval is too narrow; fmr_first_threshold_bootstrap_ci95 "
    "is a 95 % percentile interval from 200 resamples of the cohort's images (at the first "
    "threshold, the shipped one). A ratio is null when the best "
    "cohort's rate is 0: the ratio is unbounded."
)


@dataclass(frozen=True, slots=True)
class CohortStats:
    """One cohort's images, failures by error code, and pair tally."""

    name: str
    n_images: int
    failures: Mapping[str, int]
    tally: Tally
    boot_ci: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Study:
    """Everything measured; ``thresholds`` maps a name (e.g. ``shipped``) to a threshold."""

    thresholds: Mapping[str, float]
    targets: Sequence[float]
    cohorts: Sequence[CohortStats]
    cross: CohortStats
    paths: Sequence[str]
    pair_seconds: float


def measure(
    labels: Sequence[LabelledImage],
    templates: Mapping[str, np.ndarray[Any, Any]],
    failures: Mapping[str, str],
    thresholds: Mapping[str, float],
    targets: Sequence[float],
    metric: Metric,
    progress: Progress | None = None,
    *,
    bootstrap: bool = True,
) -> Study:
    """Tally each within-cohort group and the cross-cohort group (images with a template)."""
    ok = [x for x in labels if x.path in templates]
    matrix = np.stack([templates[x.path] for x in ok]).astype(np.float32) if ok else None
    ids = identity_codes([x.identity for x in ok])
    names = sorted({x.cohort for x in labels})
    codes = np.asarray([names.index(x.cohort) for x in ok], dtype=np.int64)
    levels = np.asarray(list(thresholds.values()), dtype=np.float32)
    start, stats = time.perf_counter(), []
    for c, name in enumerate(names):
        index = np.flatnonzero(codes == c)
        keep = keep_for(pair_count(index.size), targets)
        tally = _tally(matrix, ids, index, levels, keep, metric, None)
        fails = Counter(failures[x.path] for x in labels if x.cohort == name and x.path in failures)
        boot = _boot(matrix, ids, index, float(levels[0]), metric) if bootstrap else None
        n_images = sum(x.cohort == name for x in labels)
        stats.append(CohortStats(name, n_images, fails, tally, boot))
        if progress:
            progress(1)
    everything = np.arange(len(ok), dtype=np.int64)
    n_cross = pair_count(len(ok)) - sum(
        pair_count(int((codes == c).sum())) for c in range(len(names))
    )
    cross = _tally(matrix, ids, everything, levels, keep_for(n_cross, targets), metric, codes)
    if progress:
        progress(1)
    seconds = time.perf_counter() - start
    cross_stats = CohortStats(CROSS, len(labels), {}, cross)
    return Study(thresholds, targets, stats, cross_stats, [x.path for x in ok], seconds)


def _tally(
    matrix: np.ndarray[Any, Any] | None,
    ids: np.ndarray[Any, Any],
    index: np.ndarray[Any, Any],
    levels: np.ndarray[Any, Any],
    keep: int,
    metric: Metric,
    cohorts: np.ndarray[Any, Any] | None,
) -> Tally:
    if matrix is None:
        return Tally(thresholds=levels, keep=keep)
    return tally_group(matrix, ids, index, levels, keep, metric, cohorts=cohorts)


def _boot(
    matrix: np.ndarray[Any, Any] | None,
    ids: np.ndarray[Any, Any],
    index: np.ndarray[Any, Any],
    threshold: float,
    metric: Metric,
) -> tuple[float, float] | None:
    if matrix is None or not 2 <= index.size <= BOOT_MAX_IMAGES:
        return None
    return bootstrap_fmr_ci(matrix, ids, index, threshold, metric)


def _rate(rate: Rate | None) -> dict[str, Any] | None:
    if rate is None:
        return None
    return {"rate": rate.rate, "errors": rate.errors, "trials": rate.trials, "ci95": rate.ci}


def cohort_row(study: Study, stats: CohortStats) -> dict[str, Any]:
    """The JSON row of one cohort (or of the cross-cohort group)."""
    names = list(study.thresholds)
    fmr = dict(zip(names, fmr_at(stats.tally), strict=True))
    fnmr = dict(zip(names, fnmr_at(stats.tally, list(study.thresholds.values())), strict=True))
    n_fail = sum(stats.failures.values())
    has_genuine = stats.tally.genuine.size > 0
    return {
        "cohort": stats.name,
        "n_images": stats.n_images,
        "n_impostor_pairs": stats.tally.n_impostor,
        "n_genuine_pairs": int(stats.tally.genuine.size),
        "fmr": {k: _rate(v) for k, v in fmr.items()},
        "fnmr": {k: _rate(v) for k, v in fnmr.items()} if has_genuine else None,
        "fta": _rate(Rate(n_fail, stats.n_images)) if stats.name != CROSS else None,
        "fta_by_error": dict(stats.failures),
        "fmr_first_threshold_bootstrap_ci95": stats.boot_ci,
        "threshold_at_fmr": {f"{t:g}": _threshold(stats.tally, t) for t in study.targets},
        "top_impostor_pairs": _top_pairs(study, stats.tally),
    }


def _threshold(tally: Tally, target: float) -> float | None:
    value = threshold_at_fmr(tally, target)
    return value if np.isfinite(value) else None


def _top_pairs(study: Study, tally: Tally, n: int = 10) -> list[dict[str, Any]]:
    order = np.argsort(-tally.top_scores)[:n]
    return [
        {
            "a": study.paths[int(tally.top_pairs[i, 0])],
            "b": study.paths[int(tally.top_pairs[i, 1])],
            "score": round(float(tally.top_scores[i]), 4),
        }
        for i in order
    ]


def ratios(rows: Sequence[Mapping[str, Any]], names: Sequence[str], key: str) -> dict[str, Any]:
    """Worst/best ratio of ``key`` ("fmr" or "fnmr") per threshold over the cohort rows."""
    out: dict[str, Any] = {}
    for name in names:
        rates = [Rate(r[key][name]["errors"], r[key][name]["trials"]) for r in rows if r[key]]
        out[name] = ratio(rates)
    return out


def cohort_aware(study: Study, target: float) -> dict[str, Any]:
    """The single global threshold keeping every cohort's FMR <= ``target`` (the highest of the
    cohorts' own thresholds at the target), and each cohort's FMR and FNMR there."""
    own = {s.name: threshold_at_fmr(s.tally, target) for s in study.cohorts if s.tally.n_impostor}
    if not own:
        return {"target": target, "threshold": None, "cohorts": []}
    chosen = max(own.values())
    rows = [
        {
            "cohort": s.name,
            "own_threshold": _finite(own.get(s.name)),
            "fmr": _rate(fmr_at_threshold(s.tally, chosen)),
            "fnmr": _rate(fnmr_at(s.tally, [chosen])[0]) if s.tally.genuine.size else None,
        }
        for s in study.cohorts
    ]
    binding = max(own, key=lambda k: own[k])
    return {
        "target": target,
        "threshold": _finite(chosen),
        "binding_cohort": binding,
        "cohorts": rows,
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None


def report(study: Study) -> dict[str, Any]:
    """The JSON-ready report (without provenance)."""
    rows = [cohort_row(study, s) for s in study.cohorts]
    names = list(study.thresholds)
    return {
        "method": METHOD,
        "thresholds": dict(study.thresholds),
        "cohorts": rows,
        "cross_cohort": cohort_row(study, study.cross),
        "fmr_ratio": ratios(rows, names, "fmr"),
        "fnmr_ratio": ratios(rows, names, "fnmr"),
        "cohort_aware": [cohort_aware(study, t) for t in study.targets],
        "pair_seconds": round(study.pair_seconds, 3),
        "n_pairs": sum(s.tally.n_impostor + s.tally.genuine.size for s in study.cohorts),
    }


def markdown(rep: Mapping[str, Any]) -> str:
    """A Markdown table: one row per cohort and threshold."""
    lines = [
        "| cohort | threshold | images | FTA | FMR (errors / pairs) [95 % CI] | FNMR [95 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    for row in [*rep["cohorts"], rep["cross_cohort"]]:
        for name, value in rep["thresholds"].items():
            fnmr = row["fnmr"][name] if row["fnmr"] else None
            fta = _fmt(row["fta"]) if row["fta"] else "—"
            lines.append(
                f"| {row['cohort']} | {name} ({value:.4f}) | {row['n_images']} | {fta} | "
                f"{_fmt(row['fmr'][name])} | {_fmt(fnmr)} |"
            )
    lines += ["", f"fmr_ratio (worst/best; null = unbounded): {rep['fmr_ratio']}"]
    lines += [f"fnmr_ratio: {rep['fnmr_ratio']}", "", rep["method"], ""]
    for aware in rep["cohort_aware"]:
        lines.append(_aware_line(aware))
    return "\n".join(lines) + "\n"


def _aware_line(aware: Mapping[str, Any]) -> str:
    parts = [
        f"{c['cohort']}: FMR {_fmt(c['fmr'])}, FNMR {_fmt(c['fnmr'])}" for c in aware["cohorts"]
    ]
    head = f"- cohort-aware threshold at FMR <= {aware['target']:g}: {aware['threshold']}"
    return head + f" (binding: {aware.get('binding_cohort')}); " + "; ".join(parts)


def _fmt(rate: Mapping[str, Any] | None) -> str:
    if rate is None or rate["rate"] is None:
        return "—"
    low, high = rate["ci95"]
    return f"{rate['rate']:.2e} ({rate['errors']}/{rate['trials']}) [{low:.1e}, {high:.1e}]"


def write_plots(study: Study, out: Path) -> dict[str, str]:
    """DET per cohort with genuine pairs (``det_cohorts.png``) and FMR vs threshold per cohort
    (``fmr_vs_threshold.png``, every cohort)."""
    from shiren.eval.metrics import roc_curve
    from shiren.eval.plots import plot_det

    written: dict[str, str] = {"fmr_vs_threshold": str(_plot_fmr(study, out))}
    curves = {}
    for s in study.cohorts:
        genuine = s.tally.genuine
        if genuine.size and s.tally.n_impostor:
            edges, _ = fmr_curve(s.tally)
            impostor = np.repeat(edges + 1.0 / (2 * edges.size), s.tally.histogram)
            labels = np.r_[np.ones(genuine.size, bool), np.zeros(impostor.size, bool)]
            curves[s.name] = roc_curve(np.r_[genuine, impostor], labels)
    if curves:
        written["det"] = str(plot_det(curves, out / "det_cohorts.png", title="DET per cohort"))
    return written


def _plot_fmr(study: Study, out: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in [*study.cohorts, study.cross]:
        edges, fmr = fmr_curve(s.tally)
        keep = fmr > 0
        ax.semilogy(edges[keep], fmr[keep], lw=1.2, label=f"{s.name} (I={s.tally.n_impostor})")
    for name, value in study.thresholds.items():
        ax.axvline(value, ls="--", lw=0.8, color="grey")
        ax.text(value, 1.0, name, rotation=90, fontsize="x-small", va="top")
    ax.set_xlabel("threshold (similarity)")
    ax.set_ylabel("FMR (impostor pairs >= threshold)")
    ax.set_title("FMR vs threshold per cohort")
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "fmr_vs_threshold.png", format="png")
    return out / "fmr_vs_threshold.png"

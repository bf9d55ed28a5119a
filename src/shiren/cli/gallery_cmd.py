"""``shiren calibrate --gallery --tenant ID``: the threshold on the lender's own population.

It opens the service from the ``SHIREN_*`` settings exactly as the server does (same database,
keys and models), decrypts the tenant's enrolled templates of the current network and prints the
impostor statistics of :mod:`shiren.eval.gallery`: counts, rates and thresholds, never a score of
one pair or a template.
"""

from __future__ import annotations

import math
from typing import Any

import typer

from shiren.cli.common import emit, run_guarded


def calibrate_gallery(
    gallery: bool,
    tenant: str | None,
    target_fmr: str,
    *,
    as_json: bool,
    max_pairs: int,
    seed: int = 0,
) -> None:
    """``shiren calibrate --gallery``: run the calibration for ``tenant`` and print it (JSON
    with ``as_json``).  ``target_fmr`` is comma-separated."""
    if not gallery:
        raise typer.BadParameter("give --pairs and --images, or --gallery --tenant TENANT_ID")
    if not tenant:
        raise typer.BadParameter("--gallery needs --tenant TENANT_ID")
    targets = _targets(target_fmr)
    if max_pairs < 1:
        raise typer.BadParameter("--max-pairs must be >= 1")

    def action() -> dict[str, Any]:
        from shiren.eval.population import population_report
        from shiren.service.bootstrap import build_service

        service = build_service()
        return population_report(service, tenant, targets=targets, max_pairs=max_pairs, seed=seed)

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
        return
    for line in report_lines(result):
        typer.echo(line)


def _targets(text: str) -> list[float]:
    """The target FMRs of ``--target-fmr`` (comma-separated), largest first."""
    try:
        targets = {float(t) for t in text.split(",") if t.strip()}
    except ValueError:
        raise typer.BadParameter(f"--target-fmr: not a number list: {text!r}") from None
    if not targets or any(not 0.0 < t < 1.0 for t in targets):
        raise typer.BadParameter("--target-fmr values must lie in (0, 1)")
    return sorted(targets, reverse=True)


def report_lines(result: dict[str, Any]) -> list[str]:
    """The report as text lines (what ``shiren calibrate --gallery`` prints)."""
    lines = [
        f"tenant {result['tenant_id']}: {result['n_subjects']} enrolled subjects with a "
        f"{result['network']} template",
    ]
    if result["n_other_network"]:
        lines.append(
            f"  {result['n_other_network']} subjects left out: template of another network"
        )
    rep = result["report"]
    if rep is None:
        lines.append("not enough enrolled faces: at least 2 subjects are needed for one pair")
        return lines
    if rep["sampled"]:
        pairs = (
            f"{rep['n_pairs_scored']:,} drawn at random from {rep['n_pairs_possible']:,} "
            f"(seed {rep['seed']}, with replacement)"
        )
    else:
        pairs = f"all {rep['n_pairs_possible']:,}"
    lines += [
        f"pairs: {pairs}; {rep['n_probable_duplicates_excluded']:,} probable duplicates "
        f"excluded (cosine >= {rep['duplicate_cutoff']:g}); {rep['n_pairs_used']:,} impostor "
        "pairs used",
        "thresholds are similarities (higher = more alike; a pair matches at score >= threshold)",
    ]
    if not result["enough"]:
        lines.append(f"note: fewer than {result['min_subjects']} subjects; the numbers are weak")
    conf = f"{rep['confidence']:.0%}"
    cur = rep["current"]
    lines.append(
        f"current threshold {cur['threshold']:.4f}: FMR {_rate(cur['fmr'])} "
        f"({cur['n_false_matches']:,}/{cur['n_pairs']:,}; {conf} CI {_ci(cur['fmr_ci'], _rate)})"
    )
    for p in rep["proposals"]:
        lines.append(_proposal_line(p, conf))
    return lines


def _proposal_line(p: dict[str, Any], conf: str) -> str:
    head = f"target FMR {p['target_fmr']:g}: "
    ach = p["achieved"]
    body = (
        f"threshold {_num(p['threshold'])} ({conf} CI {_ci(p['threshold_ci'], _num)}); "
        f"FMR there {_rate(ach['fmr'])} ({ach['n_false_matches']:,}/{ach['n_pairs']:,})"
    )
    if p["insufficient"]:
        return head + f"insufficient (needs >= {p['min_pairs']:,} pairs) — " + body
    return head + body


def _rate(value: float) -> str:
    return f"{value:.2e}"


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "unbounded"
    return f"{value:.4f}"


def _ci(bounds: list[float | None], fmt: Any) -> str:
    low, high = bounds
    low_s = "-inf" if low is None else fmt(low)
    high_s = "+inf" if high is None else fmt(high)
    return f"[{low_s}, {high_s}]"


__all__ = ["calibrate_gallery", "report_lines"]

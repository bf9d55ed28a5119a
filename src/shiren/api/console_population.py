"""The dashboard's "Threshold on your population" panel (admin and auditor: the roles that see
the dashboard): the numbers of ``shiren calibrate --gallery`` for the signed-in tenant, computed
on demand and cached in the process for a few minutes (:mod:`shiren.eval.population`), turned
into display strings here so the template stays plain."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi.concurrency import run_in_threadpool

from shiren.domain.console import Permission, allowed
from shiren.eval.population import cached_population_report
from shiren.service.app import ShirenService
from shiren.service.console_auth import Principal

log = logging.getLogger("shiren.console")


async def population_panel(service: ShirenService, me: Principal) -> dict[str, Any] | None:
    """The panel's view for ``me``'s tenant; ``None`` when ``me`` may not see the dashboard.
    ``{"state": "unavailable"}`` when it could not be computed (the page still renders)."""
    if not allowed(me.user.role, Permission.DASHBOARD_VIEW):
        return None
    try:
        report = await run_in_threadpool(cached_population_report, service, me.tenant.id)
    except Exception as exc:  # the panel is optional: the dashboard renders without it
        log.warning("population panel unavailable: %s", type(exc).__name__)
        return {"state": "unavailable"}
    return panel_view(report)


def panel_view(report: dict[str, Any]) -> dict[str, Any]:
    """Display strings of a :func:`shiren.eval.population.population_report` result."""
    view: dict[str, Any] = {
        "state": "ok",
        "network": report["network"],
        "n_subjects": report["n_subjects"],
        "min_subjects": report["min_subjects"],
    }
    rep = report["report"]
    if not report["enough"] or rep is None:
        return {**view, "state": "too_few"}
    cur = rep["current"]
    conf = f"{rep['confidence']:.0%}"
    return {
        **view,
        "confidence": conf,
        "pairs_used": f"{rep['n_pairs_used']:,}",
        "sampled": rep["sampled"],
        "duplicates": f"{rep['n_probable_duplicates_excluded']:,}",
        "threshold": _num(cur["threshold"]),
        "fmr": _rate(cur["fmr"]),
        "fmr_counts": f"{cur['n_false_matches']:,} / {cur['n_pairs']:,}",
        "fmr_ci": _ci(cur["fmr_ci"], _rate),
        "proposals": [
            {
                "target": f"{p['target_fmr']:g}",
                "threshold": _num(p["threshold"]),
                "ci": _ci(p["threshold_ci"], _num),
                "insufficient": p["insufficient"],
                "min_pairs": f"{p['min_pairs']:,}",
            }
            for p in rep["proposals"]
        ],
    }


def _rate(value: float) -> str:
    return f"{value:.2e}"


def _num(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _ci(bounds: list[float | None], fmt: Any) -> str:
    low, high = bounds
    return f"[{'−∞' if low is None else fmt(low)}, {'+∞' if high is None else fmt(high)}]"


__all__ = ["panel_view", "population_panel"]

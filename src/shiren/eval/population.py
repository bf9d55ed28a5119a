"""``shiren calibrate --gallery`` and the console's "Threshold on your population" panel: the
impostor statistics of :mod:`shiren.eval.gallery` on a tenant's enrolled gallery, as read by
:mod:`shiren.service.gallery_calibration`.

This module joins the two because the layers say so: the service layer may not import the
evaluation layer, the evaluation layer may import the service.  The console's numbers are cached
in the process for :data:`CACHE_TTL_S` (decrypting a large gallery takes seconds).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from shiren.eval.gallery import DEFAULT_MAX_PAIRS, DEFAULT_TARGETS, gallery_report, report_dict
from shiren.service.app import ShirenService
from shiren.service.gallery_calibration import EnrolledGallery, read_gallery

MIN_SUBJECTS = 50
"""Below this many enrolled subjects the console shows "not enough enrolled faces yet": 49
subjects give 1,176 pairs, under the 3,000 that even a 1e-3 target needs."""
CACHE_TTL_S = 300.0


def population_report(
    service: ShirenService,
    tenant_id: str,
    *,
    targets: Sequence[float] = DEFAULT_TARGETS,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
) -> dict[str, Any]:
    """The tenant's gallery report as plain JSON types (counts, rates and thresholds only).

    ``report`` is ``None`` when fewer than 2 subjects are enrolled (no pair at all);
    ``enough`` says whether the gallery reaches :data:`MIN_SUBJECTS`."""
    gallery = read_gallery(service, tenant_id)
    return summarise(gallery, targets=targets, max_pairs=max_pairs, seed=seed)


def summarise(
    gallery: EnrolledGallery,
    *,
    targets: Sequence[float] = DEFAULT_TARGETS,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`population_report` of an already read gallery."""
    out: dict[str, Any] = {
        "tenant_id": gallery.tenant_id,
        "network": gallery.network,
        "n_subjects": gallery.n_subjects,
        "n_other_network": gallery.n_other_network,
        "n_other_shape": gallery.n_other_shape,
        "threshold": gallery.threshold,
        "enough": gallery.n_subjects >= MIN_SUBJECTS,
        "min_subjects": MIN_SUBJECTS,
        "report": None,
    }
    if gallery.n_subjects >= 2:
        report = gallery_report(
            gallery.templates,
            "cosine" if gallery.metric == "cosine" else "euclidean",
            threshold=gallery.threshold,
            duplicate_cutoff=gallery.duplicate_cutoff,
            targets=targets,
            max_pairs=max_pairs,
            seed=seed,
        )
        out["report"] = report_dict(report)
    return out


class ReportCache:
    """Reports per (service, tenant), kept ``ttl_s`` seconds; one computation at a time."""

    def __init__(
        self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[
            ShirenService, dict[str, tuple[float, dict[str, Any]]]
        ] = weakref.WeakKeyDictionary()

    def get(self, service: ShirenService, tenant_id: str) -> dict[str, Any]:
        """The cached report, or a fresh one when none is younger than ``ttl_s``."""
        with self._lock:
            per_tenant = self._entries.setdefault(service, {})
            hit = per_tenant.get(tenant_id)
            if hit is not None and self._clock() - hit[0] < self.ttl_s:
                return hit[1]
            report = population_report(service, tenant_id)
            per_tenant[tenant_id] = (self._clock(), report)
            return report

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = ReportCache()
"""The process's cache (the console's panel)."""


def cached_population_report(service: ShirenService, tenant_id: str) -> dict[str, Any]:
    """:func:`population_report` with the default targets, cached for :data:`CACHE_TTL_S`."""
    return CACHE.get(service, tenant_id)


__all__ = [
    "CACHE",
    "CACHE_TTL_S",
    "MIN_SUBJECTS",
    "ReportCache",
    "cached_population_report",
    "population_report",
    "summarise",
]

"""Read a tenant's enrolled gallery for calibration on the lender's own population.

:func:`read_gallery` decrypts, for one tenant, the latest live template of every subject made by
the service's *current* network (``Template.embedder`` is ``"<name>@sha256:<hex>"``; the name
before ``@`` is compared with ``service.verifier.embedder.info.name``): live = not expired (the
retention sweep deletes ``expires_at < now``) and the subject not erased.  Older networks'
templates (dlib's, after the switch to MobileFaceNet) are counted, never mixed in: scores across
networks mean nothing.

The statistics live in :mod:`shiren.eval.gallery` (the layer above this one), which
:mod:`shiren.eval.population` feeds with what this module returns.  Only counts are logged,
never a template.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from shiren.domain.entities import SubjectStatus, Template, Tenant
from shiren.errors import ConfigError
from shiren.service.app import ShirenService
from shiren.service.matching import network_of
from shiren.storage.ports import UnitOfWork, not_found
from shiren.thresholds import default_threshold
from shiren.verifier import PROFILES

log = logging.getLogger("shiren.service.gallery")

PAGE = 1000
"""Templates read per query (the repository pages by id)."""


@dataclass(frozen=True, slots=True)
class EnrolledGallery:
    """One tenant's enrolled faces, one row per subject, ready for the impostor statistics.

    ``templates`` is ``(N, D)`` float32 in subject-id order; ``n_other_network``: subjects whose
    live templates were all made by another network (left out); ``n_other_shape``: current-network
    templates of another length than the first (left out; none expected).  ``threshold`` is the
    similarity threshold the enrolment match uses today (higher = more alike);
    ``duplicate_cutoff`` the fraud policy's duplicate threshold (cosine)."""

    tenant_id: str
    network: str
    metric: str
    templates: npt.NDArray[np.float32]
    n_other_network: int
    n_other_shape: int
    threshold: float
    duplicate_cutoff: float

    @property
    def n_subjects(self) -> int:
        return int(self.templates.shape[0])


def current_threshold(service: ShirenService) -> float:
    """The threshold the service's enrolment match applies (the policy's match profile), or the
    verifier's own when no calibrated value ships for its network (a custom embedder)."""
    views = PROFILES.get(service.policy.match_profile, PROFILES["standard"]).views
    try:
        return default_threshold(service.verifier.embedder.info.name, views=views)
    except ConfigError:
        return float(service.verifier.threshold)


def read_gallery(service: ShirenService, tenant_id: str) -> EnrolledGallery:
    """Decrypt ``tenant_id``'s live enrolled templates of the current network, one per subject
    (the latest by ``created_at``).  ``record.not_found`` for an unknown tenant."""
    network = service.verifier.embedder.info.name
    now = service.clock()
    with service.store() as uow:
        tenant = uow.tenants.get(tenant_id)
        if tenant is None:
            raise not_found("tenant")
        latest, others = _latest_per_subject(uow, tenant_id, network, now)
        vectors = _open_all(service, uow, tenant, latest)
    rows, other_shape = _stack(vectors)
    log.info(
        "gallery calibration read: tenant=%s subjects=%d other_network=%d other_shape=%d",
        tenant_id,
        rows.shape[0],
        len(others - set(latest)),
        other_shape,
    )
    return EnrolledGallery(
        tenant_id=tenant_id,
        network=network,
        metric=str(service.verifier.embedder.metric),
        templates=rows,
        n_other_network=len(others - set(latest)),
        n_other_shape=other_shape,
        threshold=current_threshold(service),
        duplicate_cutoff=float(service.fraud.policy.duplicate_threshold),
    )


def _latest_per_subject(
    uow: UnitOfWork, tenant_id: str, network: str, now: datetime
) -> tuple[dict[str, Template], set[str]]:
    """Subject id → its latest live current-network template; the ids of subjects with a live
    template of another network."""
    latest: dict[str, Template] = {}
    others: set[str] = set()
    after = ""
    while page := uow.templates.list_for_tenant(tenant_id, after_id=after, limit=PAGE):
        after = page[-1].id
        for row in page:
            if row.expires_at is not None and row.expires_at < now:
                continue  # expired: the next retention sweep deletes it
            if network_of(row.embedder) != network:
                others.add(row.subject_id)
                continue
            best = latest.get(row.subject_id)
            if best is None or (row.created_at, row.id) > (best.created_at, best.id):
                latest[row.subject_id] = row
    return latest, others


def _open_all(
    service: ShirenService, uow: UnitOfWork, tenant: Tenant, latest: dict[str, Template]
) -> list[npt.NDArray[np.float32]]:
    """The opened templates of the subjects still there and not erased, in subject-id order."""
    out = []
    for subject_id in sorted(latest):
        subject = uow.subjects.get(tenant.id, subject_id)
        if subject is None or subject.status is SubjectStatus.ERASED or subject.erased_at:
            continue
        row = latest[subject_id]
        raw = service.vault.open_field(
            tenant, subject, "templates", "template_enc", row.id, row.template_enc
        )
        out.append(np.frombuffer(raw, dtype=np.float32))
    return out


def _stack(vectors: list[npt.NDArray[np.float32]]) -> tuple[npt.NDArray[np.float32], int]:
    """``(N, D)`` of the vectors as long as the first one; how many were of another length."""
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32), 0
    dim = vectors[0].shape[0]
    same = [v for v in vectors if v.shape == (dim,)]
    return np.stack(same).astype(np.float32), len(vectors) - len(same)


__all__ = ["EnrolledGallery", "current_threshold", "read_gallery"]

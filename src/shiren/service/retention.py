"""Retention: deleting what the consent no longer covers, and watching the stored-face count.

* :func:`sweep` — templates and evidence past their ``expires_at``, open sessions past their
  TTL, and captured faces of reviews nobody worked on; each tenant's chain records what was
  deleted from *its* data.  Needs no models, so a cron job (``shiren retention sweep``) runs it
  against the database directly.
* :class:`StoredFaces` — the regulator's filing threshold: an operator storing at least
  100,000 faces must file the processing, so the service warns (``/readyz``) when the deployment
  reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shiren.domain.entities import Tenant
from shiren.service.journal import append_audit
from shiren.service.views import SweepResult
from shiren.storage.ports import UnitOfWorkFactory, sweep_retention

log = logging.getLogger("shiren.service")

DEFAULT_REVIEW_CANDIDATE_TTL_DAYS = 30
STORED_FACES_FILING_THRESHOLD = 100_000
"""Stored faces (bound templates, all tenants) at which an operator must file with the
regulator; the service warns when the deployment reaches it (``Settings.stored_faces_warning``)."""
STORED_FACES_WARNING = "stored_faces.filing_threshold"


def sweep(
    store: UnitOfWorkFactory,
    audit_key: bytes,
    now: datetime,
    *,
    review_candidate_ttl_days: int = DEFAULT_REVIEW_CANDIDATE_TTL_DAYS,
    on_faces_deleted: Callable[[str, set[str]], None] | None = None,
) -> SweepResult:
    """The retention sweep.

    Why tenant by tenant, one transaction each: every tenant's audit chain records exactly what
    was deleted from *its* data (a regulator asks a lender, not the operator), and a failure for
    one tenant neither rolls back nor blocks the others' deletions.  Tenants with nothing to
    sweep get no audit event, so a frequent cron does not bloat every chain.  Idempotent: a
    second run with the same ``now`` finds nothing.

    Pending enrolment reviews older than ``review_candidate_ttl_days`` (from their
    ``created_at``) lose their captured face: a review nobody works on must not keep a
    biometric template forever; approving it later binds nothing (``review.candidate_expired``).

    ``on_faces_deleted(tenant_id, subject_ids)`` runs after each tenant's commit with the
    subjects whose templates were deleted: the 1:N galleries are a second copy of the faces and
    must follow the retention (:meth:`shiren.service.fraud.FraudGuard.swept`,
    :func:`~shiren.service.fraud.gallery_sweeper`).
    """
    with store() as uow:
        tenant_ids = [t.id for t in uow.tenants.list_all()]
    templates = evidence = sessions = swept = candidates = 0
    cutoff = now - timedelta(days=review_candidate_ttl_days)
    for tenant_id in tenant_ids:
        with store() as uow:
            gone = uow.templates.expired_subject_ids(now, tenant_id=tenant_id)
            counts = sweep_retention(uow, now, tenant_id=tenant_id, candidates_before=cutoff)
            expired = uow.sessions.expire_due(now, tenant_id=tenant_id)
            if counts.templates or counts.evidence or counts.review_candidates or expired:
                payload = {  # "template" is a forbidden audit key: name counts by what they were
                    "face_rows": counts.templates,
                    "evidence_rows": counts.evidence,
                    "review_candidate_rows": counts.review_candidates,
                    "sessions_expired": expired,
                    "as_of": now.isoformat(),
                }
                append_audit(uow, audit_key, tenant_id, "retention.swept", None, payload, now)
                swept += 1
            uow.commit()
        if gone and on_faces_deleted is not None:
            try:
                on_faces_deleted(tenant_id, gone)
            except Exception as exc:  # the rows are gone; the gallery heals when reconciled
                log.warning("retention sweep: face gallery not updated (%s)", type(exc).__name__)
        templates += counts.templates
        evidence += counts.evidence
        candidates += counts.review_candidates
        sessions += expired
    if swept:
        log.info(
            "retention sweep: %d face rows, %d evidence rows deleted, %d sessions expired "
            "(%d tenants)",
            templates,
            evidence,
            sessions,
            swept,
        )
    return SweepResult(templates, evidence, sessions, swept, candidates)


class StoredFaces:
    """The deployment's stored-face count against the regulator's filing threshold."""

    def __init__(
        self, store: UnitOfWorkFactory, threshold: int = STORED_FACES_FILING_THRESHOLD
    ) -> None:
        self._store = store
        self.threshold = threshold
        self._over = False
        """Whether the last count was at/over the threshold: the log warning fires on the
        transition only, not on every readiness probe."""

    def note(self, total: int) -> bool:
        """Remember whether ``total`` reached the threshold; log a warning on the transition."""
        over = total >= self.threshold
        if over and not self._over:
            log.warning(
                "stored faces reached the filing threshold: %d bound templates >= %d "
                "(file with the regulator)",
                total,
                self.threshold,
            )
        self._over = over
        return over

    def of_tenant(self, tenant: Tenant) -> dict[str, int]:
        """The tenant's own numbers: how many faces (bound templates) it stores.  Never the
        deployment's total: that would tell one lender about the others' business."""
        with self._store() as uow:
            return {"stored_faces": uow.templates.count(tenant.id)}

    def warnings(self) -> list[dict[str, Any]]:
        """Operator warnings for ``/readyz`` (they never make the service unready)."""
        with self._store() as uow:
            total = uow.templates.count_all()
        if not self.note(total):
            return []
        return [
            {
                "code": STORED_FACES_WARNING,
                "stored_faces": total,
                "threshold": self.threshold,
                "message": "The deployment stores at least the regulator's filing threshold of "
                "face templates: file the face-recognition processing with the regulator.",
            }
        ]


__all__ = [
    "DEFAULT_REVIEW_CANDIDATE_TTL_DAYS",
    "STORED_FACES_FILING_THRESHOLD",
    "STORED_FACES_WARNING",
    "StoredFaces",
    "sweep",
]

"""Repository Protocols of what follows a check that cannot decide alone: the manual review
queue, the non-face fallback cases and the payout-ownership verdicts (migration 0006).

They share one shape: a queue worked oldest first, and state changes that are conditional
(``open`` → ``in_review`` → ``closed``, or a version number) so that two reviewers racing on one
item never both win.  Same rules as every port (:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shiren.domain.entities import ReviewItem, ReviewOutcome, ReviewStatus
from shiren.domain.fallback import FallbackFlow, FallbackStatus, PayoutCheck


class ReviewRepository(Protocol):
    def add(self, item: ReviewItem) -> None: ...
    def get(self, tenant_id: str, item_id: str) -> ReviewItem | None: ...
    def list_by_status(
        self, tenant_id: str, status: ReviewStatus, *, limit: int = 100
    ) -> list[ReviewItem]:
        """Oldest first, so a review queue is worked in arrival order."""
        ...

    def assign(self, tenant_id: str, item_id: str, reviewer: str) -> ReviewItem:
        """``open`` → ``in_review`` by ``reviewer``; two reviewers racing: one wins, the other gets
        ``record.conflict``."""
        ...

    def close(
        self, tenant_id: str, item_id: str, *, reviewer: str, outcome: ReviewOutcome, at: datetime
    ) -> ReviewItem:
        """``open``/``in_review`` → ``closed`` once (``record.conflict`` when already closed);
        the candidate template is cleared, whatever the outcome."""
        ...

    def clear_candidates_for_subject(self, tenant_id: str, subject_id: str) -> int:
        """Null ``candidate_enc`` of the reviews of every check of the subject (erasure)."""
        ...

    def clear_candidates_before(self, cutoff: datetime, *, tenant_id: str | None = None) -> int:
        """Retention sweep (all tenants, or ``tenant_id`` only): null ``candidate_enc`` of the
        reviews still pending (``open``/``in_review``) that were created before ``cutoff``."""
        ...


class FallbackRepository(Protocol):
    """Fallback cases (the non-face path, migration 0006)."""

    def add(self, flow: FallbackFlow) -> None:
        """``record.not_found`` when the subject is not this tenant's."""
        ...

    def get(self, tenant_id: str, flow_id: str) -> FallbackFlow | None: ...
    def list_for_event(self, tenant_id: str, event_id: str) -> list[FallbackFlow]:
        """Oldest first."""
        ...

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FallbackFlow]:
        """Oldest first (the subject's access request)."""
        ...

    def list_by_status(
        self, tenant_id: str, status: FallbackStatus, *, limit: int = 100
    ) -> list[FallbackFlow]:
        """Oldest first (a review queue is worked in arrival order)."""
        ...

    def update(self, flow: FallbackFlow, *, expected_version: int) -> FallbackFlow:
        """Store ``flow``'s mutable fields with ``version = expected_version + 1`` if the stored
        version is still ``expected_version``: of two concurrent updates one wins, the other
        gets ``record.conflict``.  Identity fields (subject, event, cause, steps, created_at)
        never change."""
        ...


class PayoutCheckRepository(Protocol):
    """Payout-ownership verdicts (append only, migration 0006)."""

    def add(self, check: PayoutCheck) -> None: ...
    def get(self, tenant_id: str, check_id: str) -> PayoutCheck | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[PayoutCheck]: ...


__all__ = ["FallbackRepository", "PayoutCheckRepository", "ReviewRepository"]

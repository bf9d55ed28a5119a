"""Card captures: enrolment started on the borrower's phone with the ID card (migration 0008).

Same rules as every port (:mod:`shiren.storage.ports`): tenant-scoped reads, typed errors, and
one conditional update (optimistic concurrency on ``version``) so that of two card submissions
racing on one capture exactly one enrols.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shiren.domain.card_capture import CardCapture


class CardCaptureRepository(Protocol):
    def add(self, capture: CardCapture) -> None:
        """``record.duplicate`` when the id exists."""
        ...

    def get(self, tenant_id: str, capture_id: str) -> CardCapture | None: ...

    def update(self, capture: CardCapture, *, expected_version: int) -> CardCapture:
        """Store ``capture``'s mutable fields (status, card_reads, subject_id, session_id,
        enrolled_at) with ``version = expected_version + 1`` if the stored version is still
        ``expected_version`` (else ``record.conflict``; ``record.not_found`` when missing).
        What the lender sent (reference, consent, digests, expiry) never changes."""
        ...

    def delete_ended(self, before: datetime, *, tenant_id: str | None = None) -> int:
        """Delete captures that expired before ``before`` (all tenants, or ``tenant_id``) and
        were never used to enrol: the retention sweep's share; the count."""
        ...

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        """Delete the capture that enrolled ``subject_id`` (erasure); the count."""
        ...


__all__ = ["CardCaptureRepository"]

"""In-memory repositories of what follows a check that cannot decide alone: the manual review
queue, fallback cases and payout checks (the ports in :mod:`shiren.storage.review_ports`).

State changes are conditional (``open`` → ``in_review`` → ``closed``; a fallback's version) and
raise ``record.conflict`` from any other state, as the SQL twins' ``UPDATE … WHERE`` do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from shiren.domain.entities import ReviewItem, ReviewOutcome, ReviewStatus
from shiren.domain.fallback import FallbackFlow, FallbackStatus, PayoutCheck
from shiren.storage.errors import conflict, duplicate, not_found
from shiren.storage.memory_tables import _Repo, _scoped


class MemoryReviewRepository(_Repo):
    def add(self, item: ReviewItem) -> None:
        self._parent(self._t.checks, item.tenant_id, item.check_id, "check")
        if item.id in self._t.reviews:
            raise duplicate("review item")
        self._t.reviews[item.id] = item

    def get(self, tenant_id: str, item_id: str) -> ReviewItem | None:
        return _scoped(self._t.reviews, tenant_id, item_id)

    def list_by_status(
        self, tenant_id: str, status: ReviewStatus, *, limit: int = 100
    ) -> list[ReviewItem]:
        rows = (
            x for x in self._t.reviews.values() if x.tenant_id == tenant_id and x.status == status
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))[:limit]

    def assign(self, tenant_id: str, item_id: str, reviewer: str) -> ReviewItem:
        current = self.get(tenant_id, item_id)
        if current is None:
            raise not_found("review item")
        if current.status is not ReviewStatus.OPEN:
            raise conflict("review item", str(ReviewStatus.OPEN), str(current.status))
        new = replace(current, status=ReviewStatus.IN_REVIEW, reviewer=reviewer)
        self._t.reviews[item_id] = new
        return new

    def close(
        self, tenant_id: str, item_id: str, *, reviewer: str, outcome: ReviewOutcome, at: datetime
    ) -> ReviewItem:
        current = self.get(tenant_id, item_id)
        if current is None:
            raise not_found("review item")
        if current.status is ReviewStatus.CLOSED:
            raise conflict("review item", "open or in_review", str(current.status))
        new = replace(
            current,
            status=ReviewStatus.CLOSED,
            reviewer=reviewer,
            outcome=outcome,
            closed_at=at,
            candidate_enc=None,
        )
        self._t.reviews[item_id] = new
        return new

    def clear_candidates_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = {
            c.id
            for c in self._t.checks.values()
            if c.tenant_id == tenant_id and c.subject_id == subject_id
        }
        n = 0
        for item in list(self._t.reviews.values()):
            if item.tenant_id == tenant_id and item.check_id in checks and item.candidate_enc:
                self._t.reviews[item.id] = replace(item, candidate_enc=None)
                n += 1
        return n

    def clear_candidates_before(self, cutoff: datetime, *, tenant_id: str | None = None) -> int:
        n = 0
        for item in list(self._t.reviews.values()):
            if (
                (tenant_id is None or item.tenant_id == tenant_id)
                and item.status is not ReviewStatus.CLOSED
                and item.created_at < cutoff
                and item.candidate_enc is not None
            ):
                self._t.reviews[item.id] = replace(item, candidate_enc=None)
                n += 1
        return n


class MemoryFallbackRepository(_Repo):
    def add(self, flow: FallbackFlow) -> None:
        self._parent(self._t.subjects, flow.tenant_id, flow.subject_id, "subject")
        if flow.id in self._t.fallbacks:
            raise duplicate("fallback")
        self._t.fallbacks[flow.id] = flow

    def get(self, tenant_id: str, flow_id: str) -> FallbackFlow | None:
        return _scoped(self._t.fallbacks, tenant_id, flow_id)

    def _where(self, tenant_id: str, keep: Callable[[FallbackFlow], bool]) -> list[FallbackFlow]:
        rows = (x for x in self._t.fallbacks.values() if x.tenant_id == tenant_id and keep(x))
        return sorted(rows, key=lambda x: (x.created_at, x.id))

    def list_for_event(self, tenant_id: str, event_id: str) -> list[FallbackFlow]:
        return self._where(tenant_id, lambda x: x.event_id == event_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FallbackFlow]:
        return self._where(tenant_id, lambda x: x.subject_id == subject_id)

    def list_by_status(
        self, tenant_id: str, status: FallbackStatus, *, limit: int = 100
    ) -> list[FallbackFlow]:
        return self._where(tenant_id, lambda x: x.status is status)[:limit]

    def update(self, flow: FallbackFlow, *, expected_version: int) -> FallbackFlow:
        current = self.get(flow.tenant_id, flow.id)
        if current is None:
            raise not_found("fallback")
        if current.version != expected_version:
            raise conflict("fallback", f"version {expected_version}", f"version {current.version}")
        new = replace(
            flow,
            subject_id=current.subject_id,
            event_id=current.event_id,
            cause=current.cause,
            steps=current.steps,
            policy_version=current.policy_version,
            created_at=current.created_at,
            version=expected_version + 1,
        )
        self._t.fallbacks[flow.id] = new
        return new


class MemoryPayoutCheckRepository(_Repo):
    def add(self, check: PayoutCheck) -> None:
        self._parent(self._t.subjects, check.tenant_id, check.subject_id, "subject")
        if check.id in self._t.payouts:
            raise duplicate("payout check")
        self._t.payouts[check.id] = check

    def get(self, tenant_id: str, check_id: str) -> PayoutCheck | None:
        return _scoped(self._t.payouts, tenant_id, check_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[PayoutCheck]:
        rows = (
            x
            for x in self._t.payouts.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))


__all__ = ["MemoryFallbackRepository", "MemoryPayoutCheckRepository", "MemoryReviewRepository"]

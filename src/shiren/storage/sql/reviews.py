"""SQL repositories of what follows a check that cannot decide alone: the manual review queue,
fallback cases and payout checks (the twins of :mod:`shiren.storage.memory_reviews`).

Reviews move ``open`` → ``in_review`` → ``closed`` by conditional ``UPDATE``s, so two reviewers
racing on one item never both win; a fallback case carries a version number for the same
reason, and its identity columns (:data:`_FALLBACK_FIXED`) are never rewritten by an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from shiren.domain.entities import ReviewItem, ReviewOutcome, ReviewStatus
from shiren.domain.fallback import (
    FallbackFlow,
    FallbackStatus,
    FallbackTrigger,
    PayoutCheck,
    PayoutOutcome,
)
from shiren.errors import StateError
from shiren.storage.errors import conflict, not_found
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _loader, _SqlRepo, _values

_review = _loader(ReviewItem, status=ReviewStatus, outcome=ReviewOutcome)
_fallback = _loader(
    FallbackFlow, status=FallbackStatus, cause=FallbackTrigger, steps=tuple, reasons=tuple
)
_payout = _loader(PayoutCheck, outcome=PayoutOutcome, reasons=tuple, mismatched=tuple)


class SqlReviewRepository(_SqlRepo):
    t = s.review_items

    def add(self, item: ReviewItem) -> None:
        self._insert(self.t, _values(item), "review item")

    def get(self, tenant_id: str, item_id: str) -> ReviewItem | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == item_id)
        return self._one(stmt, _review)

    def list_by_status(
        self, tenant_id: str, status: ReviewStatus, *, limit: int = 100
    ) -> list[ReviewItem]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.status == status.value)
            .order_by(self.t.c.created_at, self.t.c.id)
            .limit(limit)
        )
        return self._all(stmt, _review)

    def _update(
        self, tenant_id: str, item_id: str, allowed: Sequence[ReviewStatus], **values: Any
    ) -> ReviewItem | None:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == item_id,
                self.t.c.status.in_([x.value for x in allowed]),
            )
            .values(**values)
            .returning(*self.t.c)
        )
        return self._one(stmt, _review)

    def _why(self, tenant_id: str, item_id: str, expected: str) -> StateError:
        current = self.get(tenant_id, item_id)
        if current is None:
            return not_found("review item")
        return conflict("review item", expected, str(current.status))

    def assign(self, tenant_id: str, item_id: str, reviewer: str) -> ReviewItem:
        new = self._update(
            tenant_id,
            item_id,
            [ReviewStatus.OPEN],
            status=ReviewStatus.IN_REVIEW.value,
            reviewer=reviewer,
        )
        if new is None:
            raise self._why(tenant_id, item_id, str(ReviewStatus.OPEN))
        return new

    def close(
        self, tenant_id: str, item_id: str, *, reviewer: str, outcome: ReviewOutcome, at: datetime
    ) -> ReviewItem:
        new = self._update(
            tenant_id,
            item_id,
            [ReviewStatus.OPEN, ReviewStatus.IN_REVIEW],
            status=ReviewStatus.CLOSED.value,
            reviewer=reviewer,
            outcome=outcome.value,
            closed_at=at,
            candidate_enc=None,
        )
        if new is None:
            raise self._why(tenant_id, item_id, "open or in_review")
        return new

    def clear_candidates_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = select(s.checks.c.id).where(
            s.checks.c.tenant_id == tenant_id, s.checks.c.subject_id == subject_id
        )
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.check_id.in_(checks),
                self.t.c.candidate_enc.is_not(None),
            )
            .values(candidate_enc=None)
        )
        return self._rowcount(stmt)

    def clear_candidates_before(self, cutoff: datetime, *, tenant_id: str | None = None) -> int:
        stmt = (
            update(self.t)
            .where(
                self.t.c.status != ReviewStatus.CLOSED.value,
                self.t.c.created_at < cutoff,
                self.t.c.candidate_enc.is_not(None),
            )
            .values(candidate_enc=None)
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


# -- migration 0006: the non-face path and payout ownership ------------------------------------

_FALLBACK_FIXED = frozenset(
    {"id", "tenant_id", "subject_id", "event_id", "cause", "steps", "policy_version", "created_at"}
)


class SqlFallbackRepository(_SqlRepo):
    t = s.fallback_flows

    def add(self, flow: FallbackFlow) -> None:
        self._insert(self.t, _values(flow), "fallback")

    def get(self, tenant_id: str, flow_id: str) -> FallbackFlow | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == flow_id)
        return self._one(stmt, _fallback)

    def _list(self, tenant_id: str, column: str, value: str) -> list[FallbackFlow]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c[column] == value)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _fallback)

    def list_for_event(self, tenant_id: str, event_id: str) -> list[FallbackFlow]:
        return self._list(tenant_id, "event_id", event_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FallbackFlow]:
        return self._list(tenant_id, "subject_id", subject_id)

    def list_by_status(
        self, tenant_id: str, status: FallbackStatus, *, limit: int = 100
    ) -> list[FallbackFlow]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.status == status.value)
            .order_by(self.t.c.created_at, self.t.c.id)
            .limit(limit)
        )
        return self._all(stmt, _fallback)

    def update(self, flow: FallbackFlow, *, expected_version: int) -> FallbackFlow:
        values = {
            k: v
            for k, v in _values(flow, version=expected_version + 1).items()
            if k not in _FALLBACK_FIXED
        }
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == flow.tenant_id,
                self.t.c.id == flow.id,
                self.t.c.version == expected_version,
            )
            .values(**values)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _fallback)
        if new is None:
            current = self.get(flow.tenant_id, flow.id)
            if current is None:
                raise not_found("fallback")
            raise conflict("fallback", f"version {expected_version}", f"version {current.version}")
        return new


class SqlPayoutCheckRepository(_SqlRepo):
    t = s.payout_checks

    def add(self, check: PayoutCheck) -> None:
        self._insert(self.t, _values(check), "payout check")

    def get(self, tenant_id: str, check_id: str) -> PayoutCheck | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == check_id)
        return self._one(stmt, _payout)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[PayoutCheck]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _payout)


__all__ = [
    "SqlFallbackRepository",
    "SqlPayoutCheckRepository",
    "SqlReviewRepository",
]

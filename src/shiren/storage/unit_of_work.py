"""The unit of work: one transaction over every repository, and the two multi-repository
operations built on it (erasing a subject's biometrics, the retention sweep).

The service is handed a :class:`UnitOfWorkFactory` and opens one unit of work per use case, so
a use case either happens entirely or not at all.  The erasure and the sweep live here, not in
any one repository, because they span several aggregates (templates, references, evidence,
review candidates, fraud signals) and must stay one transaction; their counts are value types
so they can be written to the audit log and reported to the subject.  Same rules as every port
(:mod:`shiren.storage.ports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from shiren.storage.card_ports import CardCaptureRepository
from shiren.storage.check_ports import (
    CheckRepository,
    EvidenceRepository,
    LendingEventRepository,
    SessionRepository,
)
from shiren.storage.console_ports import ConsoleQueries, ConsoleUserRepository
from shiren.storage.event_ports import AuditLog, WebhookOutbox
from shiren.storage.fraud_ports import BlacklistRepository, EnrolSignalRepository, FindingRepository
from shiren.storage.review_ports import FallbackRepository, PayoutCheckRepository, ReviewRepository
from shiren.storage.sealed_ports import SealedFieldRepository
from shiren.storage.subject_ports import (
    ConsentRepository,
    ReferenceRepository,
    SubjectRepository,
    TemplateRepository,
    TenantRepository,
)

CARD_CAPTURE_GRACE = timedelta(days=1)
"""How long an unused, expired card capture is kept (so the lender can still read why)."""


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """Rows deleted by erasing one subject's biometrics."""

    templates: int = 0
    references: int = 0
    evidence: int = 0
    review_candidates: int = 0
    fraud_signals: int = 0
    """Enrolment signals (sealed background descriptors) and fraud findings (issue 6)."""

    @property
    def total(self) -> int:
        return (
            self.templates
            + self.references
            + self.evidence
            + self.review_candidates
            + self.fraud_signals
        )


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    """Rows deleted by one retention sweep."""

    templates: int = 0
    evidence: int = 0
    review_candidates: int = 0
    card_captures: int = 0
    """Card captures that expired unused (they hold keyed digests only; issue 16)."""


class UnitOfWork(Protocol):
    """One transaction over every repository.

    Use as ``with uow_factory() as uow: ...; uow.commit()``; leaving the block without
    :meth:`commit` (or by an exception) rolls back.  After a commit the same unit of work may
    continue with a fresh transaction.
    """

    @property
    def tenants(self) -> TenantRepository: ...
    @property
    def subjects(self) -> SubjectRepository: ...
    @property
    def consents(self) -> ConsentRepository: ...
    @property
    def templates(self) -> TemplateRepository: ...
    @property
    def references(self) -> ReferenceRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def checks(self) -> CheckRepository: ...
    @property
    def evidence(self) -> EvidenceRepository: ...
    @property
    def lending_events(self) -> LendingEventRepository: ...
    @property
    def reviews(self) -> ReviewRepository: ...
    @property
    def webhooks(self) -> WebhookOutbox: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def console_users(self) -> ConsoleUserRepository: ...
    @property
    def console(self) -> ConsoleQueries: ...
    @property
    def sealed(self) -> SealedFieldRepository: ...
    @property
    def fallbacks(self) -> FallbackRepository: ...
    @property
    def payouts(self) -> PayoutCheckRepository: ...
    # anti-fraud (issue 6, migration 0005)
    @property
    def blacklist(self) -> BlacklistRepository: ...
    @property
    def enrol_signals(self) -> EnrolSignalRepository: ...
    @property
    def findings(self) -> FindingRepository: ...
    @property
    def card_captures(self) -> CardCaptureRepository: ...  # migration 0008

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """What the service is given: a way to open a fresh unit of work per use case."""

    def __call__(self) -> UnitOfWork: ...


def erase_subject_biometrics(uow: UnitOfWork, tenant_id: str, subject_id: str) -> ErasureCounts:
    """Delete every biometric row of one subject (templates, references, evidence) in ``uow``.

    Counts are returned so the erasure can be recorded in the audit log and reported to the
    subject ("we deleted 2 templates and 1 image").  The subject row itself is erased separately
    (:meth:`SubjectRepository.erase`) because it carries non-biometric state the lender keeps.
    """
    uow.card_captures.delete_for_subject(tenant_id, subject_id)  # digests only; no count
    return ErasureCounts(
        evidence=uow.evidence.delete_for_subject(tenant_id, subject_id),
        templates=uow.templates.delete_for_subject(tenant_id, subject_id),
        references=uow.references.delete_for_subject(tenant_id, subject_id),
        review_candidates=uow.reviews.clear_candidates_for_subject(tenant_id, subject_id),
        fraud_signals=uow.enrol_signals.delete_for_subject(tenant_id, subject_id)
        + uow.findings.delete_for_subject(tenant_id, subject_id),
    )


def sweep_retention(
    uow: UnitOfWork,
    now: datetime,
    *,
    tenant_id: str | None = None,
    candidates_before: datetime | None = None,
) -> RetentionCounts:
    """Delete every template and evidence row past its ``expires_at`` (all tenants, or
    ``tenant_id`` only) and, with ``candidates_before``, clear the captured faces of pending
    reviews created before it."""
    return RetentionCounts(
        templates=uow.templates.delete_expired(now, tenant_id=tenant_id),
        evidence=uow.evidence.delete_expired(now, tenant_id=tenant_id),
        review_candidates=0
        if candidates_before is None
        else uow.reviews.clear_candidates_before(candidates_before, tenant_id=tenant_id),
        card_captures=uow.card_captures.delete_ended(now - CARD_CAPTURE_GRACE, tenant_id=tenant_id),
    )


__all__ = [
    "ErasureCounts",
    "RetentionCounts",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "erase_subject_biometrics",
    "sweep_retention",
]

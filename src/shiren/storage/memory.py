"""In-memory storage: the reference implementation of :mod:`shiren.storage.ports`.

Why it exists: unit tests of the service run against it in microseconds, and the contract tests
hold SQLite and PostgreSQL to *its* behaviour, so it must enforce everything the databases do —
unique keys, same-tenant parents, conditional updates — not just store dicts.

Concurrency model: one re-entrant lock per :class:`MemoryStore`, held by a unit of work from
``__enter__`` to ``__exit__``.  Units of work are therefore serialised (like SQLite's single
writer), which makes every operation trivially atomic and isolated.  Rollback restores a
snapshot taken at the start (and after each commit); snapshots are shallow copies of the tables,
cheap because every row is an immutable dataclass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from shiren.domain.console import ConsoleUser
from shiren.domain.entities import (
    AUDIT_GENESIS_HASH,
    AuditDraft,
    AuditEvent,
    Check,
    Consent,
    DeliveryStatus,
    Evidence,
    LendingEvent,
    Reference,
    ReviewItem,
    ReviewOutcome,
    ReviewStatus,
    Session,
    SessionStatus,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
    WebhookDelivery,
)
from shiren.domain.fallback import FallbackFlow, FallbackStatus, PayoutCheck
from shiren.domain.fraud import BlacklistEntry, EnrolSignal, FraudFinding
from shiren.storage.memory_console import MemoryConsoleQueries, MemoryConsoleUserRepository
from shiren.storage.memory_fraud import (
    MemoryBlacklistRepository,
    MemoryEnrolSignalRepository,
    MemoryFindingRepository,
)
from shiren.storage.ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    ChainHasher,
    already_used,
    check_sealed_column,
    conflict,
    duplicate,
    nonce_mismatch,
    not_found,
    retry_delay,
)


class _TenantRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tenant_id(self) -> str: ...


R = TypeVar("R", bound=_TenantRow)


@dataclass(slots=True)
class _Tables:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    subjects: dict[str, Subject] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    references: dict[str, Reference] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    lending_events: dict[str, LendingEvent] = field(default_factory=dict)
    reviews: dict[str, ReviewItem] = field(default_factory=dict)
    webhooks: dict[str, WebhookDelivery] = field(default_factory=dict)
    audit: dict[tuple[str, int], AuditEvent] = field(default_factory=dict)
    console_users: dict[str, ConsoleUser] = field(default_factory=dict)
    fallbacks: dict[str, FallbackFlow] = field(default_factory=dict)  # migration 0006
    payouts: dict[str, PayoutCheck] = field(default_factory=dict)
    # anti-fraud (issue 6): see shiren.storage.memory_fraud
    blacklist: dict[str, BlacklistEntry] = field(default_factory=dict)
    enrol_signals: dict[str, EnrolSignal] = field(default_factory=dict)
    findings: dict[str, FraudFinding] = field(default_factory=dict)

    def copy(self) -> _Tables:
        return _Tables(
            tenants=dict(self.tenants),
            subjects=dict(self.subjects),
            consents=dict(self.consents),
            templates=dict(self.templates),
            references=dict(self.references),
            sessions=dict(self.sessions),
            checks=dict(self.checks),
            evidence=dict(self.evidence),
            lending_events=dict(self.lending_events),
            reviews=dict(self.reviews),
            webhooks=dict(self.webhooks),
            audit=dict(self.audit),
            console_users=dict(self.console_users),
            fallbacks=dict(self.fallbacks),
            payouts=dict(self.payouts),
            blacklist=dict(self.blacklist),
            enrol_signals=dict(self.enrol_signals),
            findings=dict(self.findings),
        )


class MemoryStore:
    """The shared state of in-memory storage; calling it opens a unit of work (it is a
    :class:`~shiren.storage.ports.UnitOfWorkFactory`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables = _Tables()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class _Repo:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def _t(self) -> _Tables:
        return self._uow.tables()

    def _parent(self, table: dict[str, R], tenant_id: str, row_id: str, what: str) -> R:
        """The parent row in the same tenant; the in-memory twin of a composite foreign key."""
        if tenant_id not in self._t.tenants:
            raise not_found("tenant")
        row = table.get(row_id)
        if row is None or row.tenant_id != tenant_id:
            raise not_found(what)
        return row


def _scoped(table: dict[str, R], tenant_id: str, row_id: str) -> R | None:
    row = table.get(row_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def _sorted(rows: Iterable[R], key: Callable[[R], tuple[datetime, str]]) -> list[R]:
    return sorted(rows, key=key)


def _by_created(row: Template | Reference | Session | Check | LendingEvent) -> tuple[datetime, str]:
    return (row.created_at, row.id)


class MemoryTenantRepository(_Repo):
    def add(self, tenant: Tenant) -> None:
        t = self._t
        if tenant.id in t.tenants:
            raise duplicate("tenant")
        if any(x.api_key_hash == tenant.api_key_hash for x in t.tenants.values()):
            raise duplicate("tenant api key")
        t.tenants[tenant.id] = tenant

    def get(self, tenant_id: str) -> Tenant | None:
        return self._t.tenants.get(tenant_id)

    def get_by_api_key_hash(self, api_key_hash: str) -> Tenant | None:
        return next((x for x in self._t.tenants.values() if x.api_key_hash == api_key_hash), None)

    def list_all(self) -> list[Tenant]:
        return sorted(self._t.tenants.values(), key=lambda x: (x.created_at, x.id))

    def _require(self, tenant_id: str) -> Tenant:
        tenant = self._t.tenants.get(tenant_id)
        if tenant is None:
            raise not_found("tenant")
        return tenant

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        new = replace(self._require(tenant_id), status=status)
        self._t.tenants[tenant_id] = new
        return new

    def set_api_key_hash(self, tenant_id: str, api_key_hash: str) -> Tenant:
        current = self._require(tenant_id)
        other = self.get_by_api_key_hash(api_key_hash)
        if other is not None and other.id != tenant_id:
            raise duplicate("tenant api key")
        new = replace(current, api_key_hash=api_key_hash)
        self._t.tenants[tenant_id] = new
        return new

    def set_webhook(self, tenant_id: str, *, url: str | None, secret_enc: bytes | None) -> Tenant:
        new = replace(self._require(tenant_id), webhook_url=url, webhook_secret_enc=secret_enc)
        self._t.tenants[tenant_id] = new
        return new

    def rotate_dek(
        self, tenant_id: str, *, wrapped_dek: bytes, dek_version: int, expected_version: int
    ) -> Tenant:
        current = self._require(tenant_id)
        if current.dek_version != expected_version:
            raise conflict("tenant dek", str(expected_version), str(current.dek_version))
        new = replace(current, wrapped_dek=wrapped_dek, dek_version=dek_version)
        self._t.tenants[tenant_id] = new
        return new


class MemorySubjectRepository(_Repo):
    def add(self, subject: Subject) -> None:
        t = self._t
        if subject.tenant_id not in t.tenants:
            raise not_found("tenant")
        if subject.id in t.subjects:
            raise duplicate("subject")
        if self.get_by_external_ref(subject.tenant_id, subject.external_ref) is not None:
            raise duplicate("subject external_ref")
        t.subjects[subject.id] = subject

    def get(self, tenant_id: str, subject_id: str) -> Subject | None:
        return _scoped(self._t.subjects, tenant_id, subject_id)

    def get_by_external_ref(self, tenant_id: str, external_ref: str) -> Subject | None:
        return next(
            (
                s
                for s in self._t.subjects.values()
                if s.tenant_id == tenant_id and s.external_ref == external_ref
            ),
            None,
        )

    def list_by_pseudonym(self, tenant_id: str, id_pseudonym: str) -> list[Subject]:
        rows = (
            s
            for s in self._t.subjects.values()
            if s.tenant_id == tenant_id and s.id_pseudonym == id_pseudonym
        )
        return sorted(rows, key=lambda s: (s.created_at, s.id))

    def _require(self, tenant_id: str, subject_id: str) -> Subject:
        subject = self.get(tenant_id, subject_id)
        if subject is None:
            raise not_found("subject")
        return subject

    def set_status(
        self,
        tenant_id: str,
        subject_id: str,
        status: SubjectStatus,
        *,
        expected: SubjectStatus | None = None,
    ) -> Subject:
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            raise conflict("subject", str(expected or "not erased"), str(current.status))
        if expected is not None and current.status != expected:
            raise conflict("subject", str(expected), str(current.status))
        new = replace(current, status=status)
        self._t.subjects[subject_id] = new
        return new

    def update_identity(
        self,
        tenant_id: str,
        subject_id: str,
        *,
        id_pseudonym: str | None,
        id_number_enc: bytes | None,
        name_enc: bytes | None,
    ) -> Subject:
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            raise conflict("subject", "not erased", str(current.status))
        new = replace(
            current, id_pseudonym=id_pseudonym, id_number_enc=id_number_enc, name_enc=name_enc
        )
        self._t.subjects[subject_id] = new
        return new

    def erase(self, tenant_id: str, subject_id: str, at: datetime) -> Subject:
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            return current
        new = replace(
            current,
            status=SubjectStatus.ERASED,
            erased_at=at,
            id_pseudonym=None,
            id_number_enc=None,
            name_enc=None,
            wrapped_key=None,  # crypto-shredding: the subject key is gone for good
        )
        self._t.subjects[subject_id] = new
        return new


class MemoryConsentRepository(_Repo):
    def add(self, consent: Consent) -> None:
        self._parent(self._t.subjects, consent.tenant_id, consent.subject_id, "subject")
        if consent.id in self._t.consents:
            raise duplicate("consent")
        self._t.consents[consent.id] = consent

    def get(self, tenant_id: str, consent_id: str) -> Consent | None:
        return _scoped(self._t.consents, tenant_id, consent_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Consent]:
        rows = (
            c
            for c in self._t.consents.values()
            if c.tenant_id == tenant_id and c.subject_id == subject_id
        )
        return sorted(rows, key=lambda c: (c.granted_at, c.id))

    def withdraw(self, tenant_id: str, consent_id: str, at: datetime) -> Consent:
        current = self.get(tenant_id, consent_id)
        if current is None:
            raise not_found("consent")
        if current.withdrawn_at is not None:
            raise conflict("consent", "granted", "withdrawn")
        new = replace(current, withdrawn_at=at)
        self._t.consents[consent_id] = new
        return new


class MemoryTemplateRepository(_Repo):
    def add(self, template: Template) -> None:
        self._parent(self._t.subjects, template.tenant_id, template.subject_id, "subject")
        if template.id in self._t.templates:
            raise duplicate("template")
        self._t.templates[template.id] = template

    def get(self, tenant_id: str, template_id: str) -> Template | None:
        return _scoped(self._t.templates, tenant_id, template_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Template]:
        rows = (
            x
            for x in self._t.templates.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def delete(self, tenant_id: str, template_id: str) -> bool:
        if self.get(tenant_id, template_id) is None:
            return False
        del self._t.templates[template_id]
        return True

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [x.id for x in self.list_for_subject(tenant_id, subject_id)]
        for template_id in doomed:
            del self._t.templates[template_id]
        return len(doomed)

    def count(self, tenant_id: str) -> int:
        return sum(1 for x in self._t.templates.values() if x.tenant_id == tenant_id)

    def list_for_tenant(
        self, tenant_id: str, *, after_id: str = "", limit: int = 1000
    ) -> list[Template]:
        rows = (x for x in self._t.templates.values() if x.tenant_id == tenant_id)
        return sorted((x for x in rows if x.id > after_id), key=lambda x: x.id)[: max(0, limit)]

    def count_all(self) -> int:
        return len(self._t.templates)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        doomed = [
            x.id
            for x in self._t.templates.values()
            if x.expires_at is not None
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for template_id in doomed:
            del self._t.templates[template_id]
        return len(doomed)

    def enrolled_subject_ids(self, tenant_id: str, *, network: str | None = None) -> set[str]:
        return {
            x.subject_id
            for x in self._t.templates.values()
            if x.tenant_id == tenant_id
            and (network is None or x.embedder.split("@", 1)[0] == network)
            and (subj := self._t.subjects.get(x.subject_id)) is not None
            and subj.status is SubjectStatus.ENROLLED
        }

    def expired_subject_ids(self, now: datetime, *, tenant_id: str | None = None) -> set[str]:
        return {
            x.subject_id
            for x in self._t.templates.values()
            if x.expires_at is not None
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        }


class MemoryReferenceRepository(_Repo):
    def add(self, reference: Reference) -> None:
        self._parent(self._t.subjects, reference.tenant_id, reference.subject_id, "subject")
        if reference.id in self._t.references:
            raise duplicate("reference")
        self._t.references[reference.id] = reference

    def get(self, tenant_id: str, reference_id: str) -> Reference | None:
        return _scoped(self._t.references, tenant_id, reference_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Reference]:
        rows = (
            x
            for x in self._t.references.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [x.id for x in self.list_for_subject(tenant_id, subject_id)]
        for reference_id in doomed:
            del self._t.references[reference_id]
        return len(doomed)

    def pending_subject_ids(self, tenant_id: str) -> set[str]:
        return {
            x.subject_id
            for x in self._t.references.values()
            if x.tenant_id == tenant_id
            and (subj := self._t.subjects.get(x.subject_id)) is not None
            and subj.status is SubjectStatus.PENDING
        }


class MemorySessionRepository(_Repo):
    def add(self, session: Session) -> None:
        self._parent(self._t.subjects, session.tenant_id, session.subject_id, "subject")
        if session.id in self._t.sessions:
            raise duplicate("session")
        if any(x.nonce == session.nonce for x in self._t.sessions.values()):
            raise duplicate("session nonce")
        self._t.sessions[session.id] = session

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        return _scoped(self._t.sessions, tenant_id, session_id)

    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None:
        return next(
            (x for x in self._t.sessions.values() if x.tenant_id == tenant_id and x.nonce == nonce),
            None,
        )

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]:
        rows = (
            x
            for x in self._t.sessions.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.nonce != nonce:
            raise nonce_mismatch()
        if current.status is SessionStatus.USED:
            raise already_used()
        if current.status is not SessionStatus.OPEN:
            raise conflict("session", str(SessionStatus.OPEN), str(current.status))
        new = replace(current, status=SessionStatus.USED)
        self._t.sessions[session_id] = new
        return new

    def expire(self, tenant_id: str, session_id: str) -> Session:
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.status is not SessionStatus.OPEN:
            raise conflict("session", str(SessionStatus.OPEN), str(current.status))
        new = replace(current, status=SessionStatus.EXPIRED)
        self._t.sessions[session_id] = new
        return new

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        due = [
            x
            for x in self._t.sessions.values()
            if x.status is SessionStatus.OPEN
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for x in due:
            self._t.sessions[x.id] = replace(x, status=SessionStatus.EXPIRED)
        return len(due)


class MemoryCheckRepository(_Repo):
    def add(self, check: Check) -> None:
        self._parent(self._t.sessions, check.tenant_id, check.session_id, "session")
        self._parent(self._t.subjects, check.tenant_id, check.subject_id, "subject")
        if check.id in self._t.checks:
            raise duplicate("check")
        self._t.checks[check.id] = check

    def get(self, tenant_id: str, check_id: str) -> Check | None:
        return _scoped(self._t.checks, tenant_id, check_id)

    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]:
        rows = (
            x
            for x in self._t.checks.values()
            if x.tenant_id == tenant_id and x.session_id == session_id
        )
        return _sorted(rows, _by_created)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]:
        rows = (
            x
            for x in self._t.checks.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)


class MemoryEvidenceRepository(_Repo):
    def add(self, evidence: Evidence) -> None:
        self._parent(self._t.checks, evidence.tenant_id, evidence.check_id, "check")
        if evidence.id in self._t.evidence:
            raise duplicate("evidence")
        self._t.evidence[evidence.id] = evidence

    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None:
        return _scoped(self._t.evidence, tenant_id, evidence_id)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]:
        rows = (
            x
            for x in self._t.evidence.values()
            if x.tenant_id == tenant_id and x.check_id == check_id
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = {
            c.id
            for c in self._t.checks.values()
            if c.tenant_id == tenant_id and c.subject_id == subject_id
        }
        doomed = [
            x.id
            for x in self._t.evidence.values()
            if x.tenant_id == tenant_id and x.check_id in checks
        ]
        for evidence_id in doomed:
            del self._t.evidence[evidence_id]
        return len(doomed)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        doomed = [
            x.id
            for x in self._t.evidence.values()
            if x.expires_at < now and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for evidence_id in doomed:
            del self._t.evidence[evidence_id]
        return len(doomed)


class MemoryLendingEventRepository(_Repo):
    def add(self, event: LendingEvent) -> None:
        self._parent(self._t.subjects, event.tenant_id, event.subject_id, "subject")
        if event.id in self._t.lending_events:
            raise duplicate("lending event")
        self._t.lending_events[event.id] = event

    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None:
        return _scoped(self._t.lending_events, tenant_id, event_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]:
        rows = (
            x
            for x in self._t.lending_events.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)


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


class MemoryWebhookOutbox(_Repo):
    def enqueue(self, delivery: WebhookDelivery) -> None:
        if delivery.tenant_id not in self._t.tenants:
            raise not_found("tenant")
        if delivery.id in self._t.webhooks:
            raise duplicate("webhook delivery")
        self._t.webhooks[delivery.id] = delivery

    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
        return _scoped(self._t.webhooks, tenant_id, delivery_id)

    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        rows = (
            x
            for x in self._t.webhooks.values()
            if x.tenant_id == tenant_id and (status is None or x.status == status)
        )
        return sorted(rows, key=lambda x: (x.created_at, x.id))[:limit]

    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        due = sorted(
            (
                x
                for x in self._t.webhooks.values()
                if x.status in (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT)
                and x.next_attempt_at <= now
            ),
            key=lambda x: (x.next_attempt_at, x.id),
        )[:limit]
        claimed = [
            replace(
                x,
                status=DeliveryStatus.IN_FLIGHT,
                attempts=x.attempts + 1,
                next_attempt_at=now + lease,
            )
            for x in due
        ]
        for x in claimed:
            self._t.webhooks[x.id] = x
        return claimed

    def _in_flight(self, tenant_id: str, delivery_id: str) -> WebhookDelivery:
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        if current.status is not DeliveryStatus.IN_FLIGHT:
            raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))
        return current

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        current = self._in_flight(tenant_id, delivery_id)
        new = replace(current, status=DeliveryStatus.DELIVERED, delivered_at=at, last_error=None)
        self._t.webhooks[delivery_id] = new
        return new

    def mark_failed(
        self,
        tenant_id: str,
        delivery_id: str,
        *,
        now: datetime,
        error: str,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: timedelta = DEFAULT_RETRY_BASE,
        max_delay: timedelta = DEFAULT_RETRY_CAP,
    ) -> WebhookDelivery:
        current = self._in_flight(tenant_id, delivery_id)
        if current.attempts >= max_attempts:
            new = replace(current, status=DeliveryStatus.FAILED, last_error=error)
        else:
            new = replace(
                current,
                status=DeliveryStatus.PENDING,
                last_error=error,
                next_attempt_at=now + retry_delay(current.attempts, base_delay, max_delay),
            )
        self._t.webhooks[delivery_id] = new
        return new


class MemoryAuditLog(_Repo):
    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        if draft.tenant_id not in self._t.tenants:
            raise not_found("tenant")
        head = self.head(draft.tenant_id)
        seq = 1 if head is None else head.seq + 1
        prev_hash = AUDIT_GENESIS_HASH if head is None else head.hash
        link = hasher(seq=seq, prev_hash=prev_hash, draft=draft)
        event = AuditEvent(
            seq=seq,
            tenant_id=draft.tenant_id,
            kind=draft.kind,
            payload=draft.payload,
            created_at=draft.created_at,
            prev_hash=prev_hash,
            hash=link.hash,
            subject_id=draft.subject_id,
            mac=link.mac,
        )
        self._t.audit[(draft.tenant_id, seq)] = event
        return event

    def head(self, tenant_id: str) -> AuditEvent | None:
        seqs = [seq for (tid, seq) in self._t.audit if tid == tenant_id]
        return self._t.audit[(tenant_id, max(seqs))] if seqs else None

    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        rows = [
            e
            for (tid, seq), e in self._t.audit.items()
            if tid == tenant_id and seq >= start_seq and (end_seq is None or seq <= end_seq)
        ]
        return sorted(rows, key=lambda e: e.seq)[:limit]


_SEALED_TABLES = {
    "tenants": "tenants",
    "subjects": "subjects",
    "templates": "templates",
    "references": "references",
    "review_items": "reviews",
    "evidence": "evidence",
    "blacklist_entries": "blacklist",
    "enrol_signals": "enrol_signals",
}


class MemorySealedFields(_Repo):
    def _rows(self, tenant_id: str, table: str, column: str) -> dict[str, Any]:
        check_sealed_column(table, column)
        rows: dict[str, Any] = getattr(self._t, _SEALED_TABLES[table])
        return {
            k: r
            for k, r in rows.items()
            if (r.id if table == "tenants" else r.tenant_id) == tenant_id
            and getattr(r, column) is not None
        }

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        rows = self._rows(tenant_id, table, column)
        ids = sorted(k for k in rows if k > after_id)[:limit]
        return [(k, getattr(rows[k], column)) for k in ids]

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        row = self._rows(tenant_id, table, column).get(row_id)
        if row is None or getattr(row, column) != expected:
            return False
        getattr(self._t, _SEALED_TABLES[table])[row_id] = replace(row, **{column: new})
        return True


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


class MemoryUnitOfWork:
    """A serialised transaction over a :class:`MemoryStore` (see the module docstring)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._snapshot: _Tables | None = None
        self.tenants = MemoryTenantRepository(self)
        self.subjects = MemorySubjectRepository(self)
        self.consents = MemoryConsentRepository(self)
        self.templates = MemoryTemplateRepository(self)
        self.references = MemoryReferenceRepository(self)
        self.sessions = MemorySessionRepository(self)
        self.checks = MemoryCheckRepository(self)
        self.evidence = MemoryEvidenceRepository(self)
        self.lending_events = MemoryLendingEventRepository(self)
        self.reviews = MemoryReviewRepository(self)
        self.webhooks = MemoryWebhookOutbox(self)
        self.audit = MemoryAuditLog(self)
        self.console_users = MemoryConsoleUserRepository(self)
        self.console = MemoryConsoleQueries(self)
        self.sealed = MemorySealedFields(self)
        self.fallbacks = MemoryFallbackRepository(self)
        self.payouts = MemoryPayoutCheckRepository(self)
        # anti-fraud (issue 6)
        self.blacklist = MemoryBlacklistRepository(self)
        self.enrol_signals = MemoryEnrolSignalRepository(self)
        self.findings = MemoryFindingRepository(self)

    def tables(self) -> _Tables:
        if self._snapshot is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._store.tables

    def __enter__(self) -> Self:
        if self._snapshot is not None:
            raise RuntimeError("unit of work is already open")
        self._store.lock.acquire()
        self._snapshot = self._store.tables.copy()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._snapshot = None
            self._store.lock.release()

    def commit(self) -> None:
        self._snapshot = self.tables().copy()

    def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.tables = self._snapshot.copy()


__all__ = ["MemoryStore", "MemoryUnitOfWork"]

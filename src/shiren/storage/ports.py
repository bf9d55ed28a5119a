"""What the service may ask of storage: one repository Protocol per aggregate and a unit of work.

The service depends on these Protocols only, never on SQLAlchemy, so that use cases run unchanged
on the in-memory reference (:mod:`shiren.storage.memory`), SQLite or PostgreSQL
(:mod:`shiren.storage.sql`); one contract test suite holds all three to the same behaviour.

Rules every implementation keeps:

* **Tenant isolation.**  Every read, update and delete takes ``tenant_id`` and acts only on that
  tenant's rows.  Another tenant's row is indistinguishable from a missing one (``None`` from a
  read, :data:`~shiren.errors.ErrorCode.RECORD_NOT_FOUND` from an update), so ids leak nothing.
  Children reference their parent *within the same tenant* (composite foreign keys in SQL).  The
  only cross-tenant operations are the ones workers need and say so: tenant lookup by API key,
  retention sweeps, session expiry sweeps, the outbox claim and the global template count.
* **Errors** are :class:`~shiren.errors.StateError` with a stable code:
  ``record.duplicate`` (a unique key exists), ``record.not_found`` (no such row for this tenant,
  or a parent row is missing), ``record.conflict`` (the row is not in the state the update
  expects: optimistic concurrency) and ``session.already_used``.  A failed operation leaves the
  unit of work usable, as if it had not been called.
* **Atomic state changes** are single conditional updates (``… WHERE status = 'open'``) so that
  of N concurrent callers exactly one succeeds, whatever the isolation level.
* Storage never sees plaintext biometrics or ID numbers (``*_enc`` are bytes it only stores), and
  it never decides policy (expiry, retention periods, back-off limits are given by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from shiren.domain.console import ConsoleRole, ConsoleUser, ConsoleUserStatus, DailyCount
from shiren.domain.entities import (
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
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
    WebhookDelivery,
)
from shiren.domain.fallback import FallbackFlow, FallbackStatus, PayoutCheck
from shiren.errors import ErrorCode, StateError
from shiren.storage.fraud_ports import (
    BlacklistRepository,
    EnrolSignalRepository,
    FindingRepository,
)

DEFAULT_RETRY_BASE = timedelta(seconds=10)
DEFAULT_RETRY_CAP = timedelta(hours=6)
DEFAULT_MAX_ATTEMPTS = 10


def retry_delay(
    attempts: int, base: timedelta = DEFAULT_RETRY_BASE, cap: timedelta = DEFAULT_RETRY_CAP
) -> timedelta:
    """Exponential back-off after ``attempts`` failed attempts: ``base·2^(attempts-1)``, capped.

    Deterministic (no jitter) so that the outbox's behaviour is reproducible in tests; the claim
    lease and the natural spread of failure times already de-synchronise workers.
    """
    exponent = max(0, attempts - 1)
    if exponent >= 32:  # 2**32·base overflows timedelta long before it matters
        return cap
    return min(cap, base * (1 << exponent))


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What a :class:`ChainHasher` returns: the event's hash and, for a keyed chain, its MAC."""

    hash: str
    mac: str | None = None


class ChainHasher(Protocol):
    """Computes an audit event's hash (and MAC) from its predecessor's; the service adapts
    ``shiren.audit.canonical_bytes`` / ``compute_hash`` / ``compute_mac`` to this shape.

    Storage calls it while it holds the tenant's chain lock, so ``seq`` and ``prev_hash`` are
    those of the event it is about to insert; storage itself knows nothing of the hash format.
    """

    def __call__(self, *, seq: int, prev_hash: str, draft: AuditDraft) -> ChainLink: ...


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


def not_found(what: str) -> StateError:
    """The one error for a row that does not exist *for this tenant* (never says which)."""
    return StateError(f"{what} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": what})


def conflict(what: str, expected: str, actual: str) -> StateError:
    """An optimistic-concurrency failure: the row is not in the state the caller expected."""
    return StateError(
        f"{what} is {actual}, expected {expected}",
        code=ErrorCode.RECORD_CONFLICT,
        detail={"entity": what, "expected": expected, "actual": actual},
    )


def duplicate(what: str) -> StateError:
    """A unique key (id, nonce, external_ref, API key hash, audit seq) already exists."""
    return StateError(
        f"{what} already exists", code=ErrorCode.RECORD_DUPLICATE, detail={"entity": what}
    )


def already_used() -> StateError:
    """The error of every ``SessionRepository.mark_used`` after the first."""
    return StateError("session already used", code=ErrorCode.SESSION_ALREADY_USED)


def nonce_mismatch() -> StateError:
    """The presented nonce is not the session's: a forged or mixed-up challenge."""
    return StateError("session nonce does not match", code=ErrorCode.CHALLENGE_INVALID)


class TenantRepository(Protocol):
    def add(self, tenant: Tenant) -> None: ...
    def get(self, tenant_id: str) -> Tenant | None: ...
    def get_by_api_key_hash(self, api_key_hash: str) -> Tenant | None:
        """Authentication lookup: the one tenant read that cannot be tenant-scoped."""
        ...

    def list_all(self) -> list[Tenant]:
        """All tenants (operators and key-rotation jobs only), ordered by ``created_at``."""
        ...

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant: ...
    def set_api_key_hash(self, tenant_id: str, api_key_hash: str) -> Tenant: ...
    def set_webhook(self, tenant_id: str, *, url: str | None, secret_enc: bytes | None) -> Tenant:
        """Set (or, with ``None``, clear) the tenant's webhook URL and sealed secret."""
        ...

    def rotate_dek(
        self, tenant_id: str, *, wrapped_dek: bytes, dek_version: int, expected_version: int
    ) -> Tenant:
        """Store a re-wrapped data key if the stored version is still ``expected_version``
        (``record.conflict`` otherwise: two concurrent rotations must not both win)."""
        ...


class SubjectRepository(Protocol):
    def add(self, subject: Subject) -> None:
        """``record.duplicate`` when the tenant already has this ``external_ref``."""
        ...

    def get(self, tenant_id: str, subject_id: str) -> Subject | None: ...
    def get_by_external_ref(self, tenant_id: str, external_ref: str) -> Subject | None: ...
    def list_by_pseudonym(self, tenant_id: str, id_pseudonym: str) -> list[Subject]:
        """Subjects of this tenant with this ID pseudonym (one person, several accounts)."""
        ...

    def set_status(
        self,
        tenant_id: str,
        subject_id: str,
        status: SubjectStatus,
        *,
        expected: SubjectStatus | None = None,
    ) -> Subject:
        """Change the status; with ``expected``, only from that status.  An erased subject never
        changes status again (``record.conflict``)."""
        ...

    def update_identity(
        self,
        tenant_id: str,
        subject_id: str,
        *,
        id_pseudonym: str | None,
        id_number_enc: bytes | None,
        name_enc: bytes | None,
    ) -> Subject: ...
    def erase(self, tenant_id: str, subject_id: str, at: datetime) -> Subject:
        """Null the pseudonym and ciphertexts, set ``erased`` and ``erased_at``; idempotent (an
        already erased subject is returned unchanged, with its first ``erased_at``)."""
        ...


class ConsentRepository(Protocol):
    def add(self, consent: Consent) -> None: ...
    def get(self, tenant_id: str, consent_id: str) -> Consent | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Consent]: ...
    def withdraw(self, tenant_id: str, consent_id: str, at: datetime) -> Consent:
        """Withdraw once; a second withdrawal is ``record.conflict``."""
        ...


class TemplateRepository(Protocol):
    def add(self, template: Template) -> None: ...
    def get(self, tenant_id: str, template_id: str) -> Template | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Template]: ...
    def delete(self, tenant_id: str, template_id: str) -> bool: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...
    def count(self, tenant_id: str) -> int: ...
    def list_for_tenant(
        self, tenant_id: str, *, after_id: str = "", limit: int = 1000
    ) -> list[Template]:
        """A page of the tenant's templates in id order, after ``after_id`` (rebuilding the 1:N
        index, issue 6)."""
        ...

    def count_all(self) -> int:
        """Templates stored for all tenants: the regulator's 100,000 threshold is per operator."""
        ...

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Retention sweep: delete templates whose ``expires_at < now`` (of every tenant, or of
        ``tenant_id`` only, so the sweep can record per-tenant counts in each tenant's chain)."""
        ...

    def enrolled_subject_ids(self, tenant_id: str, *, network: str | None = None) -> set[str]:
        """Ids of the tenant's *enrolled* subjects that have a template: what the enrolled 1:N
        gallery must hold (issue 6; ids only, no ciphertext is read).  ``network``: only
        templates made by that network (the name part of ``Template.embedder``, before ``@``),
        the galleries being kept per network."""
        ...

    def expired_subject_ids(self, now: datetime, *, tenant_id: str | None = None) -> set[str]:
        """Subjects with a template that :meth:`delete_expired` would delete at ``now`` (the
        sweep takes them out of the 1:N galleries, issue 6)."""
        ...


class ReferenceRepository(Protocol):
    def add(self, reference: Reference) -> None: ...
    def get(self, tenant_id: str, reference_id: str) -> Reference | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Reference]: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...
    def pending_subject_ids(self, tenant_id: str) -> set[str]:
        """Ids of the tenant's *pending* subjects that have a reference photo: what the
        references 1:N gallery must hold (issue 6)."""
        ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None:
        """``record.duplicate`` when the nonce was ever used before (by any tenant)."""
        ...

    def get(self, tenant_id: str, session_id: str) -> Session | None: ...
    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]: ...
    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        """Consume the session's nonce: succeeds exactly once among any number of concurrent
        callers.  ``session.already_used`` for the losers and every later call;
        ``input.challenge_invalid`` when ``nonce`` is not the session's; ``record.conflict``
        when the session is expired.  Whether it *should* have expired is the service's call."""
        ...

    def expire(self, tenant_id: str, session_id: str) -> Session:
        """``open`` → ``expired`` (``record.conflict`` from any other status)."""
        ...

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Sweep (all tenants, or ``tenant_id`` only): mark ``open`` sessions with
        ``expires_at < now`` expired."""
        ...


class CheckRepository(Protocol):
    def add(self, check: Check) -> None: ...
    def get(self, tenant_id: str, check_id: str) -> Check | None: ...
    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]: ...


class EvidenceRepository(Protocol):
    def add(self, evidence: Evidence) -> None: ...
    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None: ...
    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        """Delete the evidence of every check of the subject."""
        ...

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Retention sweep (all tenants, or ``tenant_id`` only): delete evidence whose
        ``expires_at < now``."""
        ...


class LendingEventRepository(Protocol):
    def add(self, event: LendingEvent) -> None: ...
    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]: ...


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


class WebhookOutbox(Protocol):
    def enqueue(self, delivery: WebhookDelivery) -> None: ...
    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None: ...
    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]: ...
    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        """Claim up to ``limit`` due deliveries of any tenant, oldest due first: they become
        ``in_flight`` with ``attempts + 1`` and ``next_attempt_at = now + lease``.

        Concurrent workers get disjoint rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
        single writer lock on SQLite).  An ``in_flight`` row whose lease ran out is due again:
        its worker died.  Commit the unit of work before delivering, so the claim is visible.
        """
        ...

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        """``in_flight`` → ``delivered`` (``record.conflict`` otherwise)."""
        ...

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
        """``in_flight`` → ``pending`` due at ``now + retry_delay(attempts)``, or ``failed`` for
        good once ``attempts >= max_attempts`` (``record.conflict`` when not in flight)."""
        ...


SEALED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenants", "webhook_secret_enc"),
    ("subjects", "wrapped_key"),
    ("subjects", "name_enc"),
    ("subjects", "id_number_enc"),
    ("templates", "template_enc"),
    ("references", "template_enc"),
    ("review_items", "candidate_enc"),
    ("evidence", "image_enc"),
    ("blacklist_entries", "template_enc"),
    ("enrol_signals", "background_enc"),
)
"""Every column holding ciphertext made with a tenant's keys, named as the service names them in
a ``CipherContext`` (table, column): what a tenant-key rotation has to re-seal."""


class SealedFieldRepository(Protocol):
    """Generic access to the ciphertext columns of :data:`SEALED_COLUMNS`, for key rotation.

    ``table``/``column`` must be one of :data:`SEALED_COLUMNS` (``ValueError`` otherwise); for
    ``tenants`` the row id is the tenant id itself."""

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        """``(row id, blob)`` of the tenant's rows with a non-NULL ``column``, ids greater than
        ``after_id``, in id order (a resumable cursor)."""
        ...

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        """Set ``column`` to ``new`` if it still holds ``expected`` (compare-and-set, so a
        concurrent change — an erasure, a new value — is never overwritten); whether it did."""
        ...


def check_sealed_column(table: str, column: str) -> None:
    if (table, column) not in SEALED_COLUMNS:
        raise ValueError(f"not a sealed column: {table}.{column}")


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


class AuditLog(Protocol):
    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        """Place ``draft`` after the tenant's head: ``seq = head.seq + 1`` and ``prev_hash =
        head.hash`` (or 1 and the genesis hash), read under the tenant's chain lock held until
        the unit of work ends, so concurrent appends serialise and the chain never forks."""
        ...

    def head(self, tenant_id: str) -> AuditEvent | None: ...
    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        """Events with ``start_seq <= seq <= end_seq`` in ``seq`` order."""
        ...


class ConsoleUserRepository(Protocol):
    """Staff users of the review console (migration 0004)."""

    def add(self, user: ConsoleUser) -> None:
        """``record.duplicate`` when the username exists (in any tenant)."""
        ...

    def get(self, tenant_id: str, user_id: str) -> ConsoleUser | None: ...
    def get_by_username(self, username: str) -> ConsoleUser | None:
        """Sign-in lookup: like the API-key lookup, the one user read that cannot be
        tenant-scoped (the form has no tenant field)."""
        ...

    def list_for_tenant(self, tenant_id: str) -> list[ConsoleUser]:
        """The tenant's users, ordered by ``username``."""
        ...

    def record_failure(
        self, tenant_id: str, user_id: str, *, at: datetime, max_failures: int, lock_for: timedelta
    ) -> ConsoleUser:
        """One more failed sign-in; at ``max_failures`` consecutive failures the user is locked
        until ``at + lock_for`` and the counter restarts.  Atomic per row."""
        ...

    def record_success(self, tenant_id: str, user_id: str, at: datetime) -> ConsoleUser:
        """Reset the failure counter and lock, set ``last_login_at``."""
        ...

    def update(
        self,
        tenant_id: str,
        user_id: str,
        *,
        role: ConsoleRole | None = None,
        status: ConsoleUserStatus | None = None,
        password_hash: str | None = None,
        sessions_valid_after: datetime | None = None,
    ) -> ConsoleUser:
        """Change the given fields (``None``: unchanged); ``record.not_found`` otherwise."""
        ...


class ConsoleQueries(Protocol):
    """Read-only, tenant-scoped queries of the console: dashboard aggregates (computed by the
    database, ``GROUP BY`` UTC day), subject search and a subject's audit events."""

    def daily_decisions(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        """Checks with ``since <= created_at < until`` counted per UTC day and decision."""
        ...

    def daily_reasons(self, tenant_id: str, since: datetime, until: datetime) -> list[DailyCount]:
        """Reason codes of those checks counted per UTC day and code (a check with two reasons
        counts once under each)."""
        ...

    def find_subjects(self, tenant_id: str, ref_prefix: str, *, limit: int = 50) -> list[Subject]:
        """Subjects whose ``external_ref`` starts with ``ref_prefix`` (literally: ``%`` and
        ``_`` are not wildcards), ordered by ``external_ref``."""
        ...

    def audit_for_subject(
        self, tenant_id: str, subject_id: str, *, limit: int = 200
    ) -> list[AuditEvent]:
        """The subject's audit events in ``seq`` order."""
        ...


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
    )

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

This module is the contract's front door: it re-exports what the modules below define, so that
the service imports every port from one place.  The definitions are split by aggregate, each
module importing only lower ones (never this one), so the package has no import cycle:

* :mod:`shiren.storage.errors` — the typed errors above (``not_found``, ``conflict``, …);
* :mod:`shiren.storage.subject_ports` — tenants, subjects, consents, templates, references;
* :mod:`shiren.storage.check_ports` — sessions, checks, evidence, lending events;
* :mod:`shiren.storage.review_ports` — manual review, fallback cases, payout checks;
* :mod:`shiren.storage.event_ports` — the audit chain and the webhook outbox (with its back-off);
* :mod:`shiren.storage.sealed_ports` — the sealed columns, for tenant-key rotation;
* :mod:`shiren.storage.console_ports` — the review console's users and dashboard queries;
* :mod:`shiren.storage.fraud_ports` — the anti-fraud tables (issue 6);
* :mod:`shiren.storage.card_ports` — card captures (enrolment from the ID card on the phone);
* :mod:`shiren.storage.unit_of_work` — the unit of work over all of them, erasure and retention.
"""

from __future__ import annotations

from shiren.storage.card_ports import CardCaptureRepository
from shiren.storage.check_ports import (
    CheckRepository,
    EvidenceRepository,
    LendingEventRepository,
    SessionRepository,
)
from shiren.storage.console_ports import ConsoleQueries, ConsoleUserRepository
from shiren.storage.errors import already_used, conflict, duplicate, nonce_mismatch, not_found
from shiren.storage.event_ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    AuditLog,
    ChainHasher,
    ChainLink,
    WebhookOutbox,
    retry_delay,
)
from shiren.storage.fraud_ports import BlacklistRepository, EnrolSignalRepository, FindingRepository
from shiren.storage.review_ports import FallbackRepository, PayoutCheckRepository, ReviewRepository
from shiren.storage.sealed_ports import SEALED_COLUMNS, SealedFieldRepository, check_sealed_column
from shiren.storage.subject_ports import (
    ConsentRepository,
    ReferenceRepository,
    SubjectRepository,
    TemplateRepository,
    TenantRepository,
)
from shiren.storage.unit_of_work import (
    ErasureCounts,
    RetentionCounts,
    UnitOfWork,
    UnitOfWorkFactory,
    erase_subject_biometrics,
    sweep_retention,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RETRY_BASE",
    "DEFAULT_RETRY_CAP",
    "SEALED_COLUMNS",
    "AuditLog",
    "BlacklistRepository",
    "CardCaptureRepository",
    "ChainHasher",
    "ChainLink",
    "CheckRepository",
    "ConsentRepository",
    "ConsoleQueries",
    "ConsoleUserRepository",
    "EnrolSignalRepository",
    "ErasureCounts",
    "EvidenceRepository",
    "FallbackRepository",
    "FindingRepository",
    "LendingEventRepository",
    "PayoutCheckRepository",
    "ReferenceRepository",
    "RetentionCounts",
    "ReviewRepository",
    "SealedFieldRepository",
    "SessionRepository",
    "SubjectRepository",
    "TemplateRepository",
    "TenantRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "WebhookOutbox",
    "already_used",
    "check_sealed_column",
    "conflict",
    "duplicate",
    "erase_subject_biometrics",
    "nonce_mismatch",
    "not_found",
    "retry_delay",
    "sweep_retention",
]

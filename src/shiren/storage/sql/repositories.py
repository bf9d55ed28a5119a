"""SQLAlchemy Core repositories: the SQL twins of :mod:`shiren.storage.memory`.

Every state change is one conditional ``UPDATE … WHERE <expected state> RETURNING``: of N
concurrent callers exactly one sees a row come back, under READ COMMITTED on PostgreSQL as under
SQLite's single writer.  Only when no row comes back do we read again, to tell the caller *why*
(missing, wrong nonce, already used, wrong state).

Inserts run inside a SAVEPOINT so that a unique or foreign-key violation becomes a typed
:class:`~shiren.errors.StateError` and leaves the unit of work usable (PostgreSQL would otherwise
abort the whole transaction), matching the in-memory reference.

This module only re-exports, so that ``shiren.storage.sql.repositories`` stays the one import for
every core repository and for :func:`unavailable`.  The code is split by aggregate, each module
importing only :mod:`.base` below it (never this module, nor the unit of work):

* :mod:`.base` — driver errors → typed errors, :func:`unavailable`, row ↔ entity, ``_SqlRepo``;
* :mod:`.subjects` — tenants, subjects, consents, templates, references;
* :mod:`.checks` — sessions, checks, evidence, lending events;
* :mod:`.reviews` — manual review, fallback cases, payout checks;
* :mod:`.events` — the audit chain and the webhook outbox;
* :mod:`.sealed` — the sealed columns, for tenant-key rotation.

The review console's and the anti-fraud repositories are in :mod:`.console` and
:mod:`.fraud_repositories`.
"""

from __future__ import annotations

from shiren.storage.sql.base import unavailable
from shiren.storage.sql.checks import (
    SqlCheckRepository,
    SqlEvidenceRepository,
    SqlLendingEventRepository,
    SqlSessionRepository,
)
from shiren.storage.sql.events import SqlAuditLog, SqlWebhookOutbox
from shiren.storage.sql.reviews import (
    SqlFallbackRepository,
    SqlPayoutCheckRepository,
    SqlReviewRepository,
)
from shiren.storage.sql.sealed import SqlSealedFields
from shiren.storage.sql.subjects import (
    SqlConsentRepository,
    SqlReferenceRepository,
    SqlSubjectRepository,
    SqlTemplateRepository,
    SqlTenantRepository,
)

__all__ = [
    "SqlAuditLog",
    "SqlCheckRepository",
    "SqlConsentRepository",
    "SqlEvidenceRepository",
    "SqlFallbackRepository",
    "SqlLendingEventRepository",
    "SqlPayoutCheckRepository",
    "SqlReferenceRepository",
    "SqlReviewRepository",
    "SqlSealedFields",
    "SqlSessionRepository",
    "SqlSubjectRepository",
    "SqlTemplateRepository",
    "SqlTenantRepository",
    "SqlWebhookOutbox",
    "unavailable",
]

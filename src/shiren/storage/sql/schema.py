"""The relational schema (SQLAlchemy Core), the single source the migrations are checked against.

Design choices, and why:

* **Composite foreign keys** ``(tenant_id, parent_id) → parent(tenant_id, id)``: a child row can
  only point at a parent *of the same tenant*, so a bug in the service cannot attach tenant A's
  template to tenant B's subject.  Parents carry a ``UNIQUE (tenant_id, id)`` for this.
* **Strings, not native enums**, for statuses, guarded by named ``CHECK`` constraints: adding a
  status is a one-line migration on both SQLite and PostgreSQL instead of an ``ALTER TYPE``.
* **``LargeBinary``** for every ``*_enc`` column (``BLOB`` / ``bytea``): ciphertext is never
  text-encoded, so nothing downstream is tempted to decode it.
* **:class:`UTCDateTime`** for every timestamp: aware UTC in and out on both backends.
* A **naming convention** so constraint names are deterministic: migrations can drop or alter
  them by name, and the schema comparison test sees identical names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

from shiren.domain.card_capture import CardCaptureStatus
from shiren.domain.console import ConsoleRole, ConsoleUserStatus
from shiren.domain.entities import (
    Decision,
    DeliveryStatus,
    ReferenceKind,
    ReviewOutcome,
    ReviewStatus,
    SessionPurpose,
    SessionStatus,
    StepUpDecided,
    SubjectStatus,
    TenantStatus,
)
from shiren.domain.fallback import FallbackStatus, FallbackTrigger, PayoutOutcome

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 32
"""Width of an id column: :func:`shiren.domain.entities.new_id` is 32 hex digits."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz`` and returns aware values (in the session's zone, hence the
    conversion); SQLite has no time zones, so values are stored as naive UTC text, which still
    sorts and compares correctly, and made aware again on the way out.  Naive input is refused:
    it would be silently read as UTC even when it was meant as local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetime
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _one_of(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or column)


def _id(name: str = "id") -> Column[str]:
    return Column(name, String(ID), nullable=False)


def _tenant_fk() -> Column[str]:
    return Column("tenant_id", String(ID), ForeignKey("tenants.id"), nullable=False)


def _ts(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


tenants = Table(
    "tenants",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("api_key_hash", String(200), nullable=False),
    _ts("created_at"),
    Column("status", String(16), nullable=False),
    Column("wrapped_dek", LargeBinary(), nullable=False),
    Column("dek_version", Integer(), nullable=False),
    Column("webhook_url", Text(), nullable=True),  # migration 0003: webhooks
    Column("webhook_secret_enc", LargeBinary(), nullable=True),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("api_key_hash"),
    _one_of("status", TenantStatus),
)

subjects = Table(
    "subjects",
    metadata,
    _id(),
    _tenant_fk(),
    Column("external_ref", String(200), nullable=False),
    Column("id_pseudonym", String(128), nullable=True),
    Column("id_number_enc", LargeBinary(), nullable=True),
    Column("name_enc", LargeBinary(), nullable=True),
    Column("status", String(16), nullable=False),
    _ts("created_at"),
    _ts("erased_at", nullable=True),
    Column("wrapped_key", LargeBinary(), nullable=True),  # migration 0002: crypto-shredding
    PrimaryKeyConstraint("id"),
    UniqueConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "external_ref"),
    Index(None, "tenant_id", "id_pseudonym"),
    _one_of("status", SubjectStatus),
)


def _subject_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.id"])


consents = Table(
    "consents",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("purpose", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("retention_days", Integer(), nullable=False),
    _ts("granted_at"),
    _ts("withdrawn_at", nullable=True),
    Column("client", String(200), nullable=False),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
)

templates = Table(
    "templates",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("template_enc", LargeBinary(), nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("template_version", Integer(), nullable=False),
    _ts("created_at"),
    _ts("expires_at", nullable=True),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
    Index(None, "expires_at"),
)

subject_references = Table(
    "subject_references",  # "references" is an SQL keyword
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("kind", String(16), nullable=False),
    Column("template_enc", LargeBinary(), nullable=False),
    _ts("created_at"),
    Column("embedder", String(200), nullable=True),  # 0007; NULL: dlib's ResNet (before 0007)
    Column("card_checks", Text(), nullable=True),  # 0008: the ID card's check codes (JSON)
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
    _one_of("kind", ReferenceKind),
)

sessions = Table(
    "sessions",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("purpose", String(16), nullable=False),
    Column("event_id", String(ID), nullable=True),
    Column("challenge_json", Text(), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("level", String(32), nullable=False),
    Column("threshold", Float(), nullable=False),
    Column("status", String(16), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("challenge_sent_at", nullable=True),  # 0009: the capture page's first fetch
    PrimaryKeyConstraint("id"),
    UniqueConstraint("tenant_id", "id"),
    UniqueConstraint("nonce"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
    Index(None, "status", "expires_at"),
    _one_of("purpose", SessionPurpose),
    _one_of("status", SessionStatus),
)

checks = Table(
    "checks",
    metadata,
    _id(),
    _tenant_fk(),
    _id("session_id"),
    _id("subject_id"),
    Column("decision", String(16), nullable=False),
    Column("reasons", JSON(), nullable=False),
    Column("liveness_score", Float(), nullable=True),
    Column("match_score", Float(), nullable=True),
    Column("policy_version", String(64), nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("tenant_id", "id"),
    ForeignKeyConstraint(["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"]),
    _subject_fk(),
    Index(None, "tenant_id", "session_id"),
    Index(None, "tenant_id", "subject_id"),
    _one_of("decision", Decision),
)


def _check_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "check_id"], ["checks.tenant_id", "checks.id"])


evidence = Table(
    "evidence",
    metadata,
    _id(),
    _tenant_fk(),
    _id("check_id"),
    Column("image_enc", LargeBinary(), nullable=False),
    _ts("expires_at"),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    _check_fk(),
    Index(None, "tenant_id", "check_id"),
    Index(None, "expires_at"),
)

lending_events = Table(
    "lending_events",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("type", String(64), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("device_id", String(200), nullable=True),
    Column("decided", String(16), nullable=False),
    Column("policy_version", String(64), nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
    _one_of("decided", StepUpDecided),
)

review_items = Table(
    "review_items",
    metadata,
    _id(),
    _tenant_fk(),
    _id("check_id"),
    Column("status", String(16), nullable=False),
    Column("reviewer", String(200), nullable=True),
    Column("outcome", String(16), nullable=True),
    _ts("created_at"),
    _ts("closed_at", nullable=True),
    Column("candidate_enc", LargeBinary(), nullable=True),  # migration 0003: review queue
    Column("liveness_passed", Boolean(), nullable=False, server_default=false()),
    PrimaryKeyConstraint("id"),
    _check_fk(),
    Index(None, "tenant_id", "status", "created_at"),
    _one_of("status", ReviewStatus),
    CheckConstraint(
        "outcome IS NULL OR outcome IN (" + ", ".join(f"'{m.value}'" for m in ReviewOutcome) + ")",
        name="outcome",
    ),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _tenant_fk(),
    Column("url", Text(), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("signature", String(512), nullable=False),
    Column("attempts", Integer(), nullable=False),
    _ts("next_attempt_at"),
    Column("status", String(16), nullable=False),
    Column("last_error", Text(), nullable=True),
    _ts("created_at"),
    _ts("delivered_at", nullable=True),
    PrimaryKeyConstraint("id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "tenant_id", "created_at"),
    _one_of("status", DeliveryStatus),
)

audit_events = Table(
    "audit_events",
    metadata,
    _tenant_fk(),
    Column("seq", BigInteger(), nullable=False),
    Column("kind", String(64), nullable=False),
    # no foreign key: the audit trail must outlive whatever it mentions
    Column("subject_id", String(ID), nullable=True),
    Column("payload", Text(), nullable=False),
    _ts("created_at"),
    Column("prev_hash", String(128), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("mac", String(128), nullable=True),
    PrimaryKeyConstraint("tenant_id", "seq"),
    Index(None, "tenant_id", "subject_id"),
)

console_users = Table(  # migration 0004: the review console's staff users
    "console_users",
    metadata,
    _id(),
    _tenant_fk(),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failed_logins", Integer(), nullable=False),
    _ts("locked_until", nullable=True),
    _ts("last_login_at", nullable=True),
    _ts("sessions_valid_after", nullable=True),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("username"),
    Index(None, "tenant_id", "username"),
    _one_of("role", ConsoleRole),
    _one_of("status", ConsoleUserStatus),
)

# -- migration 0006: the non-face path and payout ownership (issue 6) -------------------------

fallback_flows = Table(
    "fallback_flows",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    _id("event_id"),  # no foreign key: lending_events has no (tenant_id, id) key to point at
    Column("cause", String(16), nullable=False),
    Column("steps", JSON(), nullable=False),
    Column("policy_version", String(64), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    Column("status", String(16), nullable=False),
    Column("step_index", Integer(), nullable=False),
    Column("step_failures", Integer(), nullable=False),
    Column("phone_enc", LargeBinary(), nullable=True),
    Column("phone_last4", String(4), nullable=False),
    Column("otp_hash", String(128), nullable=True),
    _ts("otp_expires_at", nullable=True),
    _ts("otp_sent_at", nullable=True),
    Column("otp_attempts", Integer(), nullable=False),
    Column("otp_sends", Integer(), nullable=False),
    Column("reasons", JSON(), nullable=False),
    Column("reviewer", String(200), nullable=True),
    _ts("closed_at", nullable=True),
    Column("version", Integer(), nullable=False),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "event_id"),
    Index(None, "tenant_id", "status", "created_at"),
    _one_of("status", FallbackStatus),
    _one_of("cause", FallbackTrigger),
)

payout_checks = Table(
    "payout_checks",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("event_id", String(ID), nullable=True),
    Column("card_pseudonym", String(128), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reasons", JSON(), nullable=False),
    Column("mismatched", JSON(), nullable=False),
    Column("provider_ref", String(128), nullable=False),
    Column("sandbox", Boolean(), nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id"),
    _one_of("outcome", PayoutOutcome),
)

# -- anti-fraud (issue 6, migration 0005) ---------------------------------------------------

blacklist_entries = Table(
    "blacklist_entries",
    metadata,
    _id(),
    _tenant_fk(),
    Column("list_name", String(64), nullable=False),
    Column("template_enc", LargeBinary(), nullable=False),  # sealed with the tenant key
    Column("reason", String(64), nullable=False),
    Column("evidence_ref", String(200), nullable=False),
    Column("added_by", String(200), nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    Index(None, "tenant_id", "list_name", "created_at"),
)

enrol_signals = Table(
    "enrol_signals",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    Column("device_hash", String(64), nullable=True),
    Column("ip_hash", String(64), nullable=True),
    Column("background_enc", LargeBinary(), nullable=True),  # sealed with the tenant key
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "device_hash", "created_at"),
    Index(None, "tenant_id", "created_at"),
    Index(None, "tenant_id", "subject_id"),
)

fraud_findings = Table(
    "fraud_findings",
    metadata,
    _id(),
    _tenant_fk(),
    _id("subject_id"),
    # no foreign key to checks: a finding may precede its check (found at enrolment)
    Column("check_id", String(ID), nullable=True),
    Column("code", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("evidence", JSON(), nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("id"),
    _subject_fk(),
    Index(None, "tenant_id", "subject_id", "created_at"),
    Index(None, "tenant_id", "check_id"),
    CheckConstraint("action IN ('review', 'reject')", name="action"),
)

# -- migration 0008: card captures (issue 16) ------------------------------------------------

card_captures = Table(
    "card_captures",
    metadata,
    _id(),
    _tenant_fk(),
    Column("external_ref", String(128), nullable=False),
    Column("consent_purpose", String(64), nullable=False),
    Column("consent_version", String(64), nullable=False),
    Column("consent_text_sha256", String(64), nullable=False),
    Column("consent_retention_days", Integer(), nullable=False),
    Column("consent_client", String(256), nullable=False),
    Column("back_required", Boolean(), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    Column("id_pseudonym", String(128), nullable=True),  # keyed digests only, never values
    Column("name_digest", String(128), nullable=True),
    Column("device_id", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("card_reads", Integer(), nullable=False),
    Column("subject_id", String(ID), nullable=True),  # no FK: set once the subject exists
    Column("session_id", String(ID), nullable=True),
    _ts("enrolled_at", nullable=True),
    Column("version", Integer(), nullable=False),
    PrimaryKeyConstraint("id"),
    Index(None, "tenant_id", "subject_id"),
    Index(None, "status", "expires_at"),
    _one_of("status", CardCaptureStatus),
)


__all__ = [
    "NAMING_CONVENTION",
    "UTCDateTime",
    "audit_events",
    "blacklist_entries",
    "card_captures",
    "checks",
    "consents",
    "console_users",
    "enrol_signals",
    "evidence",
    "fallback_flows",
    "fraud_findings",
    "lending_events",
    "metadata",
    "payout_checks",
    "review_items",
    "sessions",
    "subject_references",
    "subjects",
    "templates",
    "tenants",
    "webhook_deliveries",
]

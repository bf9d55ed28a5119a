"""The service's stored entities: frozen dataclasses, one per row kind, and their status enums.

Why frozen dataclasses and not ORM objects: the service reasons about *values* (a session as it
was when read), every change goes through an explicit repository operation (``mark_used``,
``close``) that can be made atomic, and the same objects serve the in-memory reference storage,
SQLite and PostgreSQL alike.  Changing a field means :func:`dataclasses.replace` plus a
repository call, never a silent attribute write that some backend might or might not persist.

Conventions shared by every entity:

* **ids** are ``str``: 32 lower-case hex digits of a random UUID4 (:func:`new_id`).  Random
  rather than sequential so that ids reveal neither volume nor order to a client and can be made
  on any node without coordination.  The audit log is the one exception: its ``seq`` is a gap-free
  per-tenant counter because the hash chain needs an order.
* **``*_enc`` fields** are ``bytes`` of ciphertext produced by ``shiren.privacy``.  Storage never
  encrypts or decrypts, so a database dump never contains a plaintext template, image, name or ID
  number.
* **time** is a timezone-aware UTC :class:`~datetime.datetime` (:func:`utcnow`); naive
  datetimes are rejected at construction because a naive time silently shifts by the server's
  offset when compared with an aware one.
* **statuses** are :class:`~enum.StrEnum` so they store and serialise as their stable string.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

AUDIT_GENESIS_HASH: Final = "0" * 64
"""``prev_hash`` of a tenant's first audit event: the chain must start from a fixed, known
value so a verifier can tell a truncated log from a complete one."""


def new_id() -> str:
    """A fresh random id: 32 lower-case hex digits (UUID4)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def _check_aware(obj: DataclassInstance) -> None:
    """Reject naive datetimes in any field of a frozen dataclass, and store aware ones in UTC.

    Called from ``__post_init__``: an entity with a naive timestamp would compare wrongly with
    aware ones (or raise) deep inside a retention sweep, far from the code that built it; and
    normalising to UTC here makes an entity equal to itself after a round trip through any
    backend (databases hand back UTC whatever offset went in).
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(f"{type(obj).__name__}.{f.name} must be timezone-aware (UTC)")
            if value.tzinfo is not UTC:
                object.__setattr__(obj, f.name, value.astimezone(UTC))


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class SubjectStatus(StrEnum):
    PENDING = "pending"
    ENROLLED = "enrolled"
    LOCKED = "locked"
    ERASED = "erased"


class ReferenceKind(StrEnum):
    ID_CARD = "id_card"
    AUTHORITY = "authority"
    UPLOAD = "upload"


class SessionPurpose(StrEnum):
    ENROL = "enrol"
    STEP_UP = "step_up"


class SessionStatus(StrEnum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"


class Decision(StrEnum):
    PASS = "pass"
    RETRY = "retry"
    REVIEW = "review"
    FALLBACK = "fallback"


class StepUpDecided(StrEnum):
    """What the step-up policy decided for a lending event."""

    NEEDED = "needed"
    NOT_NEEDED = "not_needed"


class ReviewStatus(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    CLOSED = "closed"


class ReviewOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class DeliveryStatus(StrEnum):
    """Webhook outbox states.

    ``in_flight`` rows are claimed by a worker until ``next_attempt_at`` (the lease); a worker
    that dies mid-delivery leaves a row that becomes due again when its lease runs out.
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A lender.  ``api_key_hash`` is ``sha256`` of the key with a per-key salt, formatted by the
    service (storage only compares it); ``wrapped_dek`` is the tenant's data key wrapped by the
    master key, ``dek_version`` counts rotations."""

    id: str
    name: str
    api_key_hash: str
    created_at: datetime
    wrapped_dek: bytes
    dek_version: int = 1
    status: TenantStatus = TenantStatus.ACTIVE
    webhook_url: str | None = None
    """Where decisions, erasures and review outcomes are POSTed (``None``: no webhooks)."""
    webhook_secret_enc: bytes | None = None
    """The HMAC signing secret, sealed with the tenant's data key (the lender got it once)."""

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Subject:
    """A lender's end user.  ``id_pseudonym`` is a keyed HMAC of the ID number (lookup without
    decryption); ``*_enc`` are ciphertexts.  ``wrapped_key`` is the subject's own data key wrapped
    by the tenant key (crypto-shredding: deleting it makes every copy of the subject's ciphertext
    unreadable, backups included); ``None`` for subjects enrolled before subject keys existed,
    whose fields are sealed with the tenant key.  Erasure nulls all four and keeps the row, so
    the lender can still see *that* the subject was erased and when."""

    id: str
    tenant_id: str
    external_ref: str
    created_at: datetime
    status: SubjectStatus = SubjectStatus.PENDING
    id_pseudonym: str | None = None
    id_number_enc: bytes | None = None
    name_enc: bytes | None = None
    erased_at: datetime | None = None
    wrapped_key: bytes | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Consent:
    """A subject's consent to one purpose under one text version; ``client`` is a hash of the
    ip/device it was given from (evidence of who consented, without storing the ip)."""

    id: str
    tenant_id: str
    subject_id: str
    purpose: str
    version: str
    text_sha256: str
    retention_days: int
    granted_at: datetime
    client: str = ""
    withdrawn_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Template:
    """An enrolled face template (encrypted embedding).  ``embedder`` names the model that made it
    as ``"<name>@sha256:<hex>"`` so a model change can be detected and the subject re-enrolled;
    ``expires_at`` is set from the consent's retention (``None``: kept until erasure)."""

    id: str
    tenant_id: str
    subject_id: str
    template_enc: bytes
    embedder: str
    template_version: int
    created_at: datetime
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Reference:
    """The template of a reference photo (ID card chip, authority source, upload) — never the
    image itself."""

    id: str
    tenant_id: str
    subject_id: str
    kind: ReferenceKind
    template_enc: bytes
    created_at: datetime
    embedder: str | None = None
    """The network that made the template ("<name>@sha256:<hex>"); ``None`` for a reference
    stored before references recorded it (dlib's ResNet, the only network until 2026-12)."""
    card_checks: str | None = None
    """For a reference cut from the ID card: its checks' codes and outcomes as JSON
    (``[{"code", "passed"}]``, no value read; migration 0008) — what the console shows."""

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Session:
    """One verification attempt.  ``challenge_json`` is the signed liveness challenge; ``nonce``
    is unique across all tenants and is consumed exactly once (``SessionRepository.mark_used``).
    ``level`` is the step-up policy's level name (``"normal"``, ``"high"``).
    ``challenge_sent_at``: when the capture page first fetched the challenge (written once,
    ``SessionRepository.mark_challenge_sent``; None until then, and for sessions older than
    migration 0009)."""

    id: str
    tenant_id: str
    subject_id: str
    purpose: SessionPurpose
    challenge_json: str
    nonce: str
    level: str
    threshold: float
    created_at: datetime
    expires_at: datetime
    event_id: str | None = None
    status: SessionStatus = SessionStatus.OPEN
    challenge_sent_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Check:
    """The decision of one session.  ``reasons`` are :class:`shiren.reasons.ReasonCode` values
    (kept as plain strings so stored rows never fail to load after a code is added)."""

    id: str
    tenant_id: str
    session_id: str
    subject_id: str
    decision: Decision
    policy_version: str
    created_at: datetime
    reasons: tuple[str, ...] = ()
    liveness_score: float | None = None
    match_score: float | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A raw image kept (encrypted) only when a policy requires it, always with an expiry."""

    id: str
    tenant_id: str
    check_id: str
    image_enc: bytes
    expires_at: datetime
    created_at: datetime

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class LendingEvent:
    """A lender's business event (``type`` is a ``shiren.domain.policy.EventType`` value) and
    whether the step-up policy required a check for it."""

    id: str
    tenant_id: str
    subject_id: str
    type: str
    decided: StepUpDecided
    policy_version: str
    created_at: datetime
    amount_minor: int = 0
    """Minor currency units (fen for CNY): integers, so sums and comparisons are exact."""
    currency: str = "CNY"
    device_id: str | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A check sent to manual review."""

    id: str
    tenant_id: str
    check_id: str
    created_at: datetime
    status: ReviewStatus = ReviewStatus.OPEN
    reviewer: str | None = None
    outcome: ReviewOutcome | None = None
    closed_at: datetime | None = None
    candidate_enc: bytes | None = None
    """For an enrolment review: the captured face template, sealed with the subject key, bound
    only if a reviewer approves *and* liveness passed; cleared on close and on erasure."""
    liveness_passed: bool = False
    """Whether the check's liveness passed: a face that failed liveness is never bound."""

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One outbox row.  ``payload`` is the exact JSON text that ``signature`` signs (stored
    verbatim: re-serialising would break the signature).  ``attempts`` counts claims, so a worker
    that crashed mid-delivery still counts towards the back-off."""

    id: str
    tenant_id: str
    url: str
    payload: str
    signature: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    status: DeliveryStatus = DeliveryStatus.PENDING
    last_error: str | None = None
    delivered_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An audit event before storage gives it its place in the chain (``seq``, hashes)."""

    tenant_id: str
    kind: str
    payload: str
    """JSON text; never biometrics or ID numbers (the service's responsibility)."""
    created_at: datetime
    subject_id: str | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One link of a tenant's hash chain: ``hash`` covers ``prev_hash`` and the event, computed
    by ``shiren.audit`` (storage only places the event and stores hashes and MAC verbatim)."""

    seq: int
    tenant_id: str
    kind: str
    payload: str
    created_at: datetime
    prev_hash: str
    hash: str
    subject_id: str | None = None
    mac: str | None = None
    """HMAC of ``hash`` under the audit key, when the chain is keyed (``shiren.audit``)."""

    def __post_init__(self) -> None:
        _check_aware(self)


__all__ = [
    "AUDIT_GENESIS_HASH",
    "AuditDraft",
    "AuditEvent",
    "Check",
    "Consent",
    "Decision",
    "DeliveryStatus",
    "Evidence",
    "LendingEvent",
    "Reference",
    "ReferenceKind",
    "ReviewItem",
    "ReviewOutcome",
    "ReviewStatus",
    "Session",
    "SessionPurpose",
    "SessionStatus",
    "StepUpDecided",
    "Subject",
    "SubjectStatus",
    "Template",
    "Tenant",
    "TenantStatus",
    "WebhookDelivery",
    "new_id",
    "utcnow",
]

"""Anti-fraud entities (issue 6): blacklist entries, enrolment signals and findings.

No plaintext biometrics here either: a blacklisted face is ``template_enc`` (sealed with the
tenant key), an enrolment's background descriptor is ``background_enc``; devices and IP addresses
are keyed hashes computed by the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shiren.domain.entities import _check_aware


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """A face on one of a tenant's blacklists (``list_name``), with why and on what evidence."""

    id: str
    tenant_id: str
    list_name: str
    template_enc: bytes
    reason: str
    """A short code chosen by the lender (``confirmed_fraud``, ``identity_theft``, …)."""
    evidence_ref: str
    """Where the evidence lives on the lender's side (a case number): never the evidence."""
    added_by: str
    created_at: datetime

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class EnrolSignal:
    """What an enrolment attempt leaves for the identity-graph checks: who, from which device
    and address (keyed hashes), and the sealed background descriptor of its capture."""

    id: str
    tenant_id: str
    subject_id: str
    created_at: datetime
    device_hash: str | None = None
    ip_hash: str | None = None
    background_enc: bytes | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class FraudFinding:
    """One anti-fraud reason code raised for a subject, with its evidence (ids and scores only)
    and what the policy made of it (``review`` or ``reject``)."""

    id: str
    tenant_id: str
    subject_id: str
    code: str
    action: str
    policy_version: str
    created_at: datetime
    check_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_aware(self)


__all__ = ["BlacklistEntry", "EnrolSignal", "FraudFinding"]

"""The review console's entities: staff users and their roles, and the dashboard's daily counts.

Console users are *staff* of a tenant (risk and compliance), not lenders' API clients: they sign
in with a password through a browser and act on exactly one tenant's data.  Their credentials are
separate from the tenant's API key on purpose — a leaked integration key must not open the
console, and a departing reviewer is disabled without rotating the lender's key.

What each role may do is a pure table here (:data:`PERMISSIONS`), so the rule is testable without
HTTP and every route asks the same question.  Looking at the keyframes a review keeps
(:data:`Permission.EVIDENCE_VIEW`) is the reviewer's alone: an auditor checks the record, an
admin manages people, and neither needs to see a borrower's face to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shiren.domain.entities import _check_aware


class ConsoleRole(StrEnum):
    REVIEWER = "reviewer"
    """Works the manual-review queue: sees the evidence (the kept keyframes too), approves or
    rejects."""
    AUDITOR = "auditor"
    """Read-only: audit log (and its verification), consent and erasure records, dashboard."""
    ADMIN = "admin"
    """Everything but looking at kept keyframes, plus managing the tenant's console users."""


class ConsoleUserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Permission(StrEnum):
    QUEUE_VIEW = "queue.view"
    QUEUE_DECIDE = "queue.decide"
    SUBJECTS_VIEW = "subjects.view"
    AUDIT_VIEW = "audit.view"
    DASHBOARD_VIEW = "dashboard.view"
    USERS_MANAGE = "users.manage"
    DEMO_START = "demo.start"
    EVIDENCE_VIEW = "evidence.view"
    """Look at the keyframes a review keeps and a case's injection evidence (issue 17):
    reviewers only, each view audited."""


PERMISSIONS: dict[ConsoleRole, frozenset[Permission]] = {
    ConsoleRole.REVIEWER: frozenset(
        {Permission.QUEUE_VIEW, Permission.QUEUE_DECIDE, Permission.EVIDENCE_VIEW}
    ),
    ConsoleRole.AUDITOR: frozenset(
        {
            Permission.QUEUE_VIEW,  # read-only: an auditor may look at a case, never decide it
            Permission.SUBJECTS_VIEW,
            Permission.AUDIT_VIEW,
            Permission.DASHBOARD_VIEW,
        }
    ),
    ConsoleRole.ADMIN: frozenset(Permission) - {Permission.EVIDENCE_VIEW},
}


def allowed(role: ConsoleRole, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission`` (the one rule every console route applies)."""
    return permission in PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A staff member of one tenant.

    ``password_hash`` is ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (formatted by the service;
    storage only stores it).  ``failed_logins`` counts consecutive failures since the last
    success; ``locked_until`` is set when they reach the limit.  ``sessions_valid_after``: a
    session cookie issued before it is refused (sign-out, password change, disabling).
    ``username`` is unique across the deployment so the sign-in form needs no tenant field.
    """

    id: str
    tenant_id: str
    username: str
    role: ConsoleRole
    password_hash: str
    created_at: datetime
    status: ConsoleUserStatus = ConsoleUserStatus.ACTIVE
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    sessions_valid_after: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True, slots=True)
class DailyCount:
    """One cell of a dashboard series: ``count`` rows with ``key`` on UTC ``day``
    (``YYYY-MM-DD``).  ``key`` is a decision (``pass``…) or a reason code."""

    day: str
    key: str
    count: int


__all__ = [
    "PERMISSIONS",
    "ConsoleRole",
    "ConsoleUser",
    "ConsoleUserStatus",
    "DailyCount",
    "Permission",
    "allowed",
]

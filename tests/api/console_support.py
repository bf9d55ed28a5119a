"""Helpers of the console tests: a signed-in HTTP client per staff user, and review cases
written straight into storage (a check sent to review with its session and subject, and the
keyframes a review may keep for its reviewers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from shiren.domain.entities import Decision, ReviewItem, Tenant
from shiren.service.app import ShirenService
from shiren.service.console import ConsoleService
from shiren.service.review_evidence import encode_keyframe, keep_keyframes
from tests.storage import builders as b

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


@dataclass
class Staff:
    """A console user with their own cookie jar."""

    client: TestClient
    user_id: str
    username: str
    password: str

    def sign_in(self, password: str | None = None) -> Any:
        form = self.client.get("/console/login")
        return self.client.post(
            "/console/login",
            data={
                "username": self.username,
                "password": self.password if password is None else password,
                "csrf": csrf_of(form.text),
                "next": "",
            },
            follow_redirects=False,
        )

    def page_csrf(self, path: str = "/console/queue") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text[:300]
        return csrf_of(page.text)

    def post(self, path: str, data: dict[str, str], *, csrf_from: str | None = None) -> Any:
        token = self.page_csrf(csrf_from or path_for_csrf(path))
        return self.client.post(path, data={**data, "csrf": token}, follow_redirects=False)


def path_for_csrf(path: str) -> str:
    if path.startswith(("/console/reviews/", "/console/fallbacks/")):
        return path.rsplit("/", 1)[0]
    if path.startswith("/console/audit"):
        return "/console/audit"
    if path.startswith("/console/users"):
        return "/console/users"
    return "/console/queue"


def staff(app: Any, console: ConsoleService, tenant: Tenant, name: str, role: str) -> Staff:
    user, password = console.auth.create_user(tenant.id, name, role)
    client = TestClient(app, base_url="http://testserver")
    return Staff(client, user.id, user.username, password)


def add_case(
    service: ShirenService,
    tenant: Tenant,
    *,
    ref: str,
    when: datetime,
    reasons: tuple[str, ...] = ("match.below_threshold",),
    decision: Decision = Decision.REVIEW,
    liveness_passed: bool = True,
) -> dict[str, str]:
    """A subject (with its own key, as enrolment makes it) with one check (and, for ``review``,
    an open review item) at ``when``."""
    subject_id = b.new_id()
    _, wrapped = service.vault.new_subject_key(tenant, subject_id)
    subject = b.subject(
        tenant.id, id=subject_id, external_ref=ref, created_at=when, wrapped_key=wrapped
    )
    session = b.session(tenant.id, subject.id, created_at=when, expires_at=when)
    check = b.check(
        tenant.id,
        session.id,
        subject.id,
        created_at=when,
        decision=decision,
        reasons=reasons,
        liveness_score=0.91,
        match_score=0.38,
    )
    review = ReviewItem(
        id=b.new_id(),
        tenant_id=tenant.id,
        check_id=check.id,
        created_at=when,
        liveness_passed=liveness_passed,
    )
    with service.store() as uow:
        uow.subjects.add(subject)
        uow.sessions.add(session)
        uow.checks.add(check)
        if decision is Decision.REVIEW:
            uow.reviews.add(review)
        uow.commit()
    return {"subject": subject.id, "check": check.id, "review": review.id}


def picture(n: int) -> Any:
    """A 480×640 RGB test picture (not a face: the console only shows what was kept)."""
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, :, 0] = np.linspace(0, 255, 640, dtype=np.uint8)
    frame[:, :, 1] = 40 * n
    frame[100:380, 220:420, 2] = 200
    return frame


def add_keyframes(
    service: ShirenService, tenant: Tenant, ids: dict[str, str], *, count: int = 3, days: int = 7
) -> list[str]:
    """``count`` keyframes kept for the case's review, sealed as the recorder seals them
    (expiring ``days`` after the check); their evidence ids, oldest first."""
    with service.store() as uow:
        subject = uow.subjects.get(tenant.id, ids["subject"])
        check = uow.checks.get(tenant.id, ids["check"])
        assert subject is not None
        assert check is not None
        jpegs = [encode_keyframe(picture(n)) for n in range(count)]
        keep_keyframes(uow, service.vault, tenant, subject, check, jpegs, days)
        uow.commit()
        return [e.id for e in uow.evidence.list_for_check(tenant.id, check.id)]


def audit_kinds(service: ShirenService, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    with service.store() as uow:
        return [(e.kind, json.loads(e.payload)) for e in uow.audit.read(tenant_id)]


def add_fallback_case(
    service: ShirenService, tenant: Tenant, *, ref: str, when: datetime
) -> dict[str, str]:
    """A subject whose lending event fell back to the non-face path and ended in manual review
    (two failed bank-card checks), as the fallback use case leaves it."""
    from datetime import timedelta

    from shiren.domain.entities import LendingEvent, StepUpDecided
    from shiren.domain.fallback import FallbackFlow, FallbackStatus, FallbackTrigger

    subject = b.subject(tenant.id, external_ref=ref, created_at=when)
    event = LendingEvent(
        id=b.new_id(),
        tenant_id=tenant.id,
        subject_id=subject.id,
        type="disbursement",
        decided=StepUpDecided.NEEDED,
        policy_version="p",
        created_at=when,
    )
    flow = FallbackFlow(
        id=b.new_id(),
        tenant_id=tenant.id,
        subject_id=subject.id,
        event_id=event.id,
        cause=FallbackTrigger.FACE_REFUSED,
        steps=("sms_otp", "bank_card_4"),
        policy_version="fallback-test",
        created_at=when,
        expires_at=when + timedelta(hours=1),
        status=FallbackStatus.REVIEW,
        step_index=1,
        step_failures=2,
        phone_last4="5678",
        reasons=(
            "fallback.face_refused",
            "fallback.sms_verified",
            "fallback.bank_card_mismatch",
            "fallback.exhausted",
        ),
    )
    with service.store() as uow:
        uow.subjects.add(subject)
        uow.lending_events.add(event)
        uow.fallbacks.add(flow)
        uow.commit()
    return {"subject": subject.id, "event": event.id, "fallback": flow.id}

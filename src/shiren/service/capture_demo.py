"""Demo sessions: a tenant and subject enrolled from a real photo, and a session at any level.

``shiren demo capture`` and the browser tests use these; the review console can too.  Nothing is
simulated: the subject's reference is the photo given, and the capture is judged against it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shiren.domain.entities import SessionPurpose, Tenant, new_id
from shiren.liveness.config import Level
from shiren.service.app import ConsentIn, SessionView, ShirenService


@dataclass(frozen=True, slots=True)
class DemoSession:
    tenant_id: str
    api_key: str
    subject_id: str
    session_id: str
    level: str
    capture_token: str

    def capture_path(self) -> str:
        return f"/capture/{self.capture_token}"


DEMO_CONSENT = ConsentIn(
    purpose="identity_verification",
    version="demo-1",
    text_sha256=hashlib.sha256(b"shiren demo: a person trying the capture page").hexdigest(),
    retention_days=1,
)
DEMO_ID_NUMBER = "11010519491231002X"
"""GB 11643's own example number (valid check digit; nobody's real ID)."""


def open_session(
    service: ShirenService, tenant: Tenant, subject_id: str, level: str
) -> SessionView:
    """A new enrolment session at ``level`` for an existing subject (demos and tests)."""
    Level(level)  # a typed config error for an unknown level
    now = service.clock()
    with service.store() as uow:
        view = service.sessions.open(
            uow,
            tenant,
            subject_id,
            SessionPurpose.ENROL,
            level,
            service.policy.match_profile,
            now,
        )
        uow.commit()
    return view


def start_demo_session(
    service: ShirenService,
    *,
    reference_image: bytes,
    level: str = "normal",
    tenant: Tenant | None = None,
    api_key: str = "",
    name: str = "演示用户",
) -> DemoSession:
    """A demo tenant (new unless given) and subject enrolled from ``reference_image`` (a photo
    of the person who will face the camera), and an open session at ``level``.  The person's
    capture is matched against that photo: nothing is faked.  Demo consents keep data 1 day."""
    if tenant is None:
        tenant, api_key = service.create_tenant("shiren demo")
    ref = f"demo-{new_id()[:12]}"
    subject, view = service.enrol(
        tenant,
        external_ref=ref,
        name=name,
        id_number=DEMO_ID_NUMBER,
        consent=DEMO_CONSENT,
        reference_image=reference_image,
        reference_kind="upload",
    )
    if level != view.session.level:
        view = open_session(service, tenant, subject.id, level)
    assert view.capture_token is not None
    return DemoSession(
        tenant_id=tenant.id,
        api_key=api_key,
        subject_id=subject.id,
        session_id=view.session.id,
        level=view.session.level,
        capture_token=view.capture_token,
    )


__all__ = ["DEMO_CONSENT", "DemoSession", "open_session", "start_demo_session"]

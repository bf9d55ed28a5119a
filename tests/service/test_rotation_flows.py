"""Issue 15's regression: in the middle of a tenant-key rotation, every flow that opens a
subject's data still works — step-up (the bound template), fallback (identity and phone),
payout (identity), export (name and ID number) and erasure.

The state that broke them: the rotation has started (the tenant row holds the new key as current
and the previous one) but nothing is re-sealed yet, so the subject's own key is still wrapped by
the *previous* tenant key.  A reader that unwraps it with the current key only fails with
``crypto.decrypt_failed``; before the key vault, the fallback and payout use cases did exactly
that (``service/identity.py`` had its own copy of the key rule).  Run on memory, SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiren.connectors.sandbox import SandboxAuthority, SandboxBankCard, SandboxSms
from shiren.connectors.types import Connectors
from shiren.domain.entities import Tenant
from shiren.privacy import split_tenant_keys
from shiren.service import rotation
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.fallback import FallbackService
from shiren.service.keys import ServiceKeys
from shiren.service.payout import PayoutService
from shiren.service.rotation import rotate_tenant_key
from tests.service.fallback_support import PHONE, card
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording
from tests.storage.conftest import open_backend


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> Iterator[ShirenService]:
    with open_backend(request.param, tmp_path) as backend:
        yield ShirenService(
            store=backend.factory,
            keys=ServiceKeys.generate(),
            engine=engine,
            clock=clock,
            draw=recording.drawer(),
            detect_replays=False,
        )


def _tenant(svc: ShirenService, tenant_id: str) -> Tenant:
    with svc.store() as uow:
        tenant = uow.tenants.get(tenant_id)
    assert tenant is not None
    return tenant


def _capture(svc: ShirenService, tenant: Tenant, view: Any, recording: Recording) -> str:
    frames, times = recording.answer(view.challenge)
    check = svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    return str(check.check.decision.value)


def _interrupted_rotation(
    svc: ShirenService, tenant: Tenant, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    """Start a tenant-key rotation and kill it before it re-seals anything."""

    def killed(*_args: Any) -> Any:
        raise RuntimeError("killed before the first re-seal")

    with monkeypatch.context() as patch:
        patch.setattr(rotation, "reseal", killed)
        with pytest.raises(RuntimeError):
            rotate_tenant_key(svc.store, svc.keys, tenant.id, clock=clock, grace_s=0)
    mid = _tenant(svc, tenant.id)
    wrapped, started = split_tenant_keys(mid.wrapped_dek)
    assert (len(wrapped), mid.dek_version, started is not None) == (2, 2, True)
    return mid


def test_every_flow_that_opens_a_subject_works_mid_rotation(
    service: ShirenService,
    recording: Recording,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, _ = service.create_tenant("lender")
    subject, view = service.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    assert _capture(service, tenant, view, recording) == "pass"
    clock.advance(60)
    mid = _interrupted_rotation(service, tenant, clock, monkeypatch)

    # step-up: the bound template opens with the subject key, wrapped by the previous key
    step = service.start_step_up(mid, subject.id, event_type="password_reset")
    assert step.session is not None
    assert _capture(service, mid, step.session, recording) == "pass"

    # fallback: the phone is sealed and opened with the subject key; the bank-card step opens
    # the name and the ID number
    sms = SandboxSms()
    connectors = Connectors(sms, SandboxBankCard(), SandboxAuthority())
    fallbacks = FallbackService(
        store=service.store, keys=service.keys, connectors=connectors, clock=clock
    )
    refused = service.start_step_up(mid, subject.id, event_type="large_transaction")
    flow = fallbacks.start(mid, refused.event.id, phone=PHONE, refuse_face=True)
    code = fallbacks.send_code(mid, flow["id"])["sandbox_code"]
    assert fallbacks.verify_code(mid, flow["id"], code)["verified"] is True
    done = fallbacks.submit_bank_card(mid, flow["id"], card())
    assert (done["status"], done["decision"]) == ("passed", "pass")

    # payout: the account must belong to the verified person (name and ID number opened)
    payouts = PayoutService(
        store=service.store, keys=service.keys, connectors=connectors, clock=clock
    )
    paid = payouts.check(mid, subject.id, card_number=card(), phone=PHONE)
    assert (paid["decision"], paid["reasons"]) == ("allowed", ["payout.card_owner_verified"])

    # export: name and masked ID number
    exported = service.export_subject(mid, subject.id)["subject"]
    assert exported["name"] == NAME
    assert exported["id_number_masked"] == ID_NUMBER[:3] + "*" * 14 + ID_NUMBER[-1]

    # erasure
    erased = service.erase_subject(mid, subject.id)
    assert erased["status"] == "erased"
    assert erased["deleted"]["templates"] >= 1

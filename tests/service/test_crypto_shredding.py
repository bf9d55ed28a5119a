"""Crypto-shredding: each subject's fields are sealed with the subject's own key, stored only
wrapped by the tenant key; erasure deletes it, so a copy of the ciphertext taken before the
erasure (a backup) cannot be opened afterwards — not even with the tenant and master keys.

Subjects written before subject keys existed (``wrapped_key`` NULL, sealed with the tenant key)
keep working, including on a SQLite database upgraded from migration 0001.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert

from shiren.domain.entities import (
    Consent,
    Reference,
    ReferenceKind,
    Subject,
    SubjectStatus,
    Tenant,
    new_id,
)
from shiren.privacy import (
    CipherContext,
    DataKey,
    DecryptError,
    new_data_key,
    open_,
    seal,
    unwrap_subject_key,
)
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from shiren.storage.sql import SqlStore, checkpoint_sqlite, make_engine, migrate
from shiren.storage.sql import schema as tables
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording


def _service(store: Any, engine: Engine, recording: Recording, clock: FakeClock) -> ShirenService:
    return ShirenService(
        store=store,
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,  # every session here is assembled from one recording
    )


def _answer(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> Any:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def _tenant_key(svc: ShirenService, tenant: Any) -> DataKey:
    return svc.keys.ring.unwrap_tenant_key(tenant.id, tenant.wrapped_dek)


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_erased_subjects_ciphertext_cannot_be_opened_from_a_backup(
    backend: str, tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    if backend == "memory":
        store: Any = MemoryStore()
    else:
        sql = make_engine(f"sqlite:///{tmp_path / 'shred.db'}")
        migrate(sql)
        store = SqlStore(sql)
    svc = _service(store, engine, recording, clock)
    tenant, _ = svc.create_tenant("lender")
    subject, view = svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    assert _answer(svc, tenant, view, recording).check.decision.value == "pass"

    # the "backup": every ciphertext of the subject, and where it belongs (its AAD)
    with store() as uow:
        stored = uow.subjects.get(tenant.id, subject.id)
        templates = uow.templates.list_for_subject(tenant.id, subject.id)
        references = uow.references.list_for_subject(tenant.id, subject.id)
    assert stored is not None
    assert stored.wrapped_key is not None
    assert stored.name_enc is not None
    assert stored.id_number_enc is not None
    assert len(templates) == 1
    assert len(references) == 1
    backup = [
        (
            CipherContext(tenant.id, "templates", "template_enc", templates[0].id),
            bytes(templates[0].template_enc),
        ),
        (
            CipherContext(tenant.id, "references", "template_enc", references[0].id),
            bytes(references[0].template_enc),
        ),
        (CipherContext(tenant.id, "subjects", "name_enc", subject.id), bytes(stored.name_enc)),
        (
            CipherContext(tenant.id, "subjects", "id_number_enc", subject.id),
            bytes(stored.id_number_enc),
        ),
    ]
    tenant_key = _tenant_key(svc, tenant)
    subject_key = unwrap_subject_key(tenant_key, tenant.id, subject.id, stored.wrapped_key)
    for context, blob in backup:  # before erasure: the subject key opens them, the tenant key not
        open_(subject_key, blob, context)
        with pytest.raises(DecryptError):
            open_(tenant_key, blob, context)
    template = np.frombuffer(open_(subject_key, backup[0][1], backup[0][0]), dtype=np.float32)
    assert template.size > 0
    assert np.isfinite(template).all()
    del subject_key  # the test keeps no key the service would not still have

    svc.erase_subject(tenant, subject.id)

    with store() as uow:
        after = uow.subjects.get(tenant.id, subject.id)
        assert after is not None
        assert after.status is SubjectStatus.ERASED
        assert after.wrapped_key is None  # the subject key is gone from the live store
        assert uow.templates.list_for_subject(tenant.id, subject.id) == []
    # every key the operator still holds: the tenant key (via the master key ring) and the
    # master key itself used as a data key — none opens the backed-up ciphertext
    master = svc.keys.ring.current
    candidates = [_tenant_key(svc, tenant), DataKey(master.key, tenant_key.version)]
    for context, blob in backup:
        for key in candidates:
            with pytest.raises(DecryptError):
                open_(key, blob, context)
    if backend == "sqlite":  # not even the file's free pages or WAL keep the wrapped key
        checkpoint_sqlite(sql)
        sql.dispose()
        raw = (tmp_path / "shred.db").read_bytes()
        assert bytes(stored.wrapped_key) not in raw
        assert backup[0][1] not in raw
    assert svc.audit_verify(tenant.id).ok


def _legacy_rows(
    svc: ShirenService, tenant: Any, template: bytes, now: Any
) -> tuple[Subject, Consent, Reference]:
    """A subject as enrolment wrote it before subject keys: sealed with the tenant key."""
    key = _tenant_key(svc, tenant)
    sid, rid = new_id(), new_id()
    subject = Subject(
        id=sid,
        tenant_id=tenant.id,
        external_ref="legacy-1",
        created_at=now,
        id_pseudonym="p" * 64,
        id_number_enc=seal(
            key,
            ID_NUMBER.encode("ascii"),
            CipherContext(tenant.id, "subjects", "id_number_enc", sid),
        ),
        name_enc=seal(key, NAME.encode(), CipherContext(tenant.id, "subjects", "name_enc", sid)),
    )
    consent = Consent(
        id=new_id(),
        tenant_id=tenant.id,
        subject_id=sid,
        purpose=CONSENT["purpose"],  # type: ignore[arg-type]
        version=CONSENT["version"],  # type: ignore[arg-type]
        text_sha256=CONSENT["text_sha256"],  # type: ignore[arg-type]
        retention_days=365,
        granted_at=now,
    )
    reference = Reference(
        id=rid,
        tenant_id=tenant.id,
        subject_id=sid,
        kind=ReferenceKind.ID_CARD,
        template_enc=seal(
            key, template, CipherContext(tenant.id, "references", "template_enc", rid)
        ),
        created_at=now,
    )
    return subject, consent, reference


def _row(entity: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        name: (v.value if hasattr(v, "value") else v)
        for name in entity.__slots__
        if name not in drop
        for v in [getattr(entity, name)]
    }


@pytest.mark.parametrize("backend", ["memory", "sqlite-upgraded-from-0001"])
def test_subjects_enrolled_before_subject_keys_keep_working(
    backend: str, tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    template = engine.verifier.analyze(recording.still_frame()).template
    template_bytes = template.astype(np.float32).tobytes()
    if backend == "memory":
        store: Any = MemoryStore()
        svc = _service(store, engine, recording, clock)
        tenant, _ = svc.create_tenant("lender")
        subject, consent, reference = _legacy_rows(svc, tenant, template_bytes, clock())
        with store() as uow:
            uow.subjects.add(subject)
            uow.consents.add(consent)
            uow.references.add(reference)
            uow.commit()
    else:
        sql = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
        migrate(sql, "0001")  # the schema as it was: no subjects.wrapped_key
        store = SqlStore(sql)
        svc = _service(store, engine, recording, clock)
        tenant_id = new_id()
        tenant = Tenant(  # inserted by hand: 0001 has no tenants.webhook_* (0003)
            id=tenant_id,
            name="lender",
            api_key_hash="sha256$legacy$" + "0" * 64,
            created_at=clock(),
            wrapped_dek=svc.keys.ring.wrap_tenant_key(tenant_id, new_data_key()),
        )
        subject, consent, reference = _legacy_rows(svc, tenant, template_bytes, clock())
        with sql.begin() as conn:
            conn.execute(
                insert(tables.tenants).values(
                    **_row(tenant, drop=("webhook_url", "webhook_secret_enc"))
                )
            )
            conn.execute(insert(tables.subjects).values(**_row(subject, drop=("wrapped_key",))))
            conn.execute(insert(tables.consents).values(**_row(consent)))
            conn.execute(
                insert(tables.subject_references).values(
                    **_row(reference, drop=("embedder", "card_checks"))
                )
            )
        migrate(sql)  # 0001 → head, with the legacy rows in place
    with store() as uow:
        loaded = uow.subjects.get(tenant.id, subject.id)
    assert loaded is not None
    assert loaded.wrapped_key is None

    # the legacy subject enrols (its reference opens with the tenant key) ...
    step = svc.start_step_up(tenant, subject.id, event_type="disbursement", amount_minor=100)
    assert step.session is not None
    assert step.session.session.purpose.value == "enrol"
    check = _answer(svc, tenant, step.session, recording)
    assert check.check.decision.value == "pass", (check.check.reasons, check.check.match_score)
    # ... its bound template is sealed with the tenant key too (it has no subject key) ...
    with store() as uow:
        bound = uow.templates.list_for_subject(tenant.id, subject.id)
    assert len(bound) == 1
    ctx = CipherContext(tenant.id, "templates", "template_enc", bound[0].id)
    open_(_tenant_key(svc, tenant), bound[0].template_enc, ctx)
    # ... step-up matches against it, export decrypts its identity, erasure works
    clock.advance(60)
    step = svc.start_step_up(
        tenant, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.session is not None
    assert step.session.session.purpose.value == "step_up"
    again = _answer(svc, tenant, step.session, recording)
    assert again.check.decision.value == "pass", (again.check.reasons, again.check.match_score)
    exported = svc.export_subject(tenant, subject.id)
    assert exported["subject"]["name"] == NAME
    assert exported["subject"]["id_number_masked"].startswith("110")
    assert svc.erase_subject(tenant, subject.id)["deleted"]["templates"] == 1
    assert svc.audit_verify(tenant.id).ok

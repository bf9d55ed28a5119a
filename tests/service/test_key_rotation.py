"""Master-key rotation: every tenant key is re-wrapped under the new master key, one transaction
per tenant, audited; data sealed before the rotation opens afterwards with the new key alone,
servers keep working during it, and the audit chains still verify."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiren.errors import ConfigError, ErrorCode
from shiren.privacy import KeyRing, MasterKey, UnknownKeyError, wrapped_kek_id
from shiren.service.app import ConsentIn, Engine, RotationResult, ShirenService, rotate_master_key
from shiren.service.keys import ServiceKeys, resolve_keys
from shiren.service.settings import Settings
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _keys(old: ServiceKeys, ring: KeyRing) -> ServiceKeys:
    return ServiceKeys(
        ring=ring,
        audit_key=old.audit_key,
        challenge_key=old.challenge_key,
        pseudonym_root_id=old.pseudonym_root_id,
    )


def _service(
    store: Any, keys: ServiceKeys, engine: Engine, recording: Recording, clock: Any
) -> Any:
    return ShirenService(
        store=store,
        keys=keys,
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
    )


def _answer(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> Any:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def test_data_sealed_before_rotation_opens_after_it_with_the_new_key_alone(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    sql = make_engine(f"sqlite:///{tmp_path / 'rot.db'}")
    migrate(sql)
    store = SqlStore(sql)
    # master key "m1"; pseudonyms (ID numbers, device hashes) derive from a key of their own,
    # "p1", pinned for ever (SHIREN_PSEUDONYM_KEY_ID): a master-key rotation must not change them
    generated = ServiceKeys.generate()
    p1 = MasterKey.generate("p1")
    old = ServiceKeys(
        ring=KeyRing(generated.ring.current, [p1]),
        audit_key=generated.audit_key,
        challenge_key=generated.challenge_key,
        pseudonym_root_id="p1",
    )
    svc = _service(store, old, engine, recording, clock)
    tenant, _ = svc.create_tenant("lender")
    other, _ = svc.create_tenant("other lender")
    subject, view = svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    assert _answer(svc, tenant, view, recording).check.decision.value == "pass"

    # step 1: servers get the new key as current, the old one retired — no downtime: they open
    # keys wrapped either way before any re-wrap happened
    m2 = MasterKey.generate("m2")
    during = _keys(old, KeyRing(m2, [old.ring.current, p1]))
    svc_during = _service(store, during, engine, recording, clock)
    assert svc_during.export_subject(tenant, subject.id)["subject"]["name"] == NAME

    # step 2: re-wrap
    assert rotate_master_key(store, during, clock()) == RotationResult("m2", rewrapped=2)
    with store() as uow:
        for t in uow.tenants.list_all():
            assert wrapped_kek_id(t.wrapped_dek) == "m2"
            assert t.dek_version == 1  # the same data key, only re-wrapped
        events = [e for e in uow.audit.read(tenant.id) if e.kind == "key.rewrapped"]
    assert [json.loads(e.payload) for e in events] == [
        {"from_key_id": "m1", "to_key_id": "m2", "dek_version": 1}
    ]
    assert rotate_master_key(store, during, clock()) == RotationResult(
        "m2", already_current=2
    )  # idempotent: nothing left to do, nothing audited twice

    # step 3: the old master key is gone; data sealed before the rotation still opens
    after = _keys(old, KeyRing(m2, [p1]))  # p1 stays: it only ever derives pseudonyms
    svc_after = _service(store, after, engine, recording, clock)
    with store() as uow:
        rotated = uow.tenants.get(tenant.id)
    assert rotated is not None
    exported = svc_after.export_subject(rotated, subject.id)
    assert exported["subject"]["name"] == NAME
    assert exported["subject"]["id_number_masked"].startswith("110")
    clock.advance(60)
    step = svc_after.start_step_up(
        rotated, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.session is not None
    check = _answer(svc_after, rotated, step.session, recording)  # opens the pre-rotation template
    assert check.check.decision.value == "pass", (check.check.reasons, check.check.match_score)
    # what still needs the old key is only the stale, pre-rotation copy of the tenant row
    with pytest.raises(UnknownKeyError):
        after.ring.unwrap_tenant_key(tenant.id, tenant.wrapped_dek)
    assert svc_after.audit_verify(tenant.id).ok
    assert svc_after.audit_verify(other.id).ok


def test_rotation_reports_tenants_whose_old_key_is_missing(tmp_path: Path) -> None:
    sql = make_engine(f"sqlite:///{tmp_path / 'miss.db'}")
    migrate(sql)
    store = SqlStore(sql)
    old = ServiceKeys.generate()
    from shiren.domain.entities import utcnow
    from shiren.service.app import create_tenant

    tenant, _ = create_tenant(store, old, "lender", utcnow())
    wrong = _keys(old, KeyRing(MasterKey.generate("m2")))  # "m1" not retired: cannot open
    result = rotate_master_key(store, wrong, utcnow())
    assert result == RotationResult("m2", failed=(tenant.id,))
    with store() as uow:
        stored = uow.tenants.get(tenant.id)
    assert stored is not None
    assert wrapped_kek_id(stored.wrapped_dek) == "m1"  # untouched


def test_pseudonym_root_survives_rotation() -> None:
    m1, m2 = (_b64(secrets.token_bytes(32)) for _ in range(2))
    common: dict[str, Any] = {
        "env": "production",
        "audit_key": _b64(secrets.token_bytes(32)),
        "challenge_key": _b64(secrets.token_bytes(32)),
    }
    before = resolve_keys(Settings(master_key=m1, master_key_id="m1", **common))
    after = resolve_keys(
        Settings(
            master_key=m2,  # type: ignore[arg-type]
            master_key_id="m2",
            retired_master_keys=f"m1:{m1}",  # type: ignore[arg-type]
            pseudonym_key_id="m1",
            **common,
        )
    )
    assert before.pseudonym_key("t").key == after.pseudonym_key("t").key
    with pytest.raises(ConfigError) as err:  # the root key dropped: refused at start
        resolve_keys(Settings(master_key=m2, master_key_id="m2", pseudonym_key_id="m1", **common))
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert err.value.detail["key"] == "pseudonym_key_id"


def test_keys_rotate_cli_then_audit_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shiren.cli.main import app

    m1, m2 = (_b64(secrets.token_bytes(32)) for _ in range(2))
    monkeypatch.setenv("SHIREN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SHIREN_ENV", "production")
    monkeypatch.setenv("SHIREN_AUDIT_KEY", _b64(secrets.token_bytes(32)))
    monkeypatch.setenv("SHIREN_CHALLENGE_KEY", _b64(secrets.token_bytes(32)))
    monkeypatch.setenv("SHIREN_MASTER_KEY", m1)
    monkeypatch.setenv("SHIREN_MASTER_KEY_ID", "m1")
    monkeypatch.delenv("SHIREN_RETIRED_MASTER_KEYS", raising=False)
    monkeypatch.delenv("SHIREN_PSEUDONYM_KEY_ID", raising=False)
    runner = CliRunner()
    for name in ("a", "b"):
        created = runner.invoke(app, ["tenant", "create", name, "--json"])
        assert created.exit_code == 0, created.output

    monkeypatch.setenv("SHIREN_MASTER_KEY", m2)
    monkeypatch.setenv("SHIREN_MASTER_KEY_ID", "m2")
    monkeypatch.setenv("SHIREN_RETIRED_MASTER_KEYS", f"m1:{m1}")
    monkeypatch.setenv("SHIREN_PSEUDONYM_KEY_ID", "m1")
    wrong = runner.invoke(app, ["keys", "rotate", "--new-key-id", "m3"])
    assert wrong.exit_code == 2, wrong.output
    done = runner.invoke(app, ["keys", "rotate", "--new-key-id", "m2", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {
        "key_id": "m2",
        "rewrapped": 2,
        "already_current": 0,
        "failed": [],
    }
    again = runner.invoke(app, ["keys", "rotate", "--new-key-id", "m2"])
    assert again.exit_code == 0, again.output
    assert "0 tenant keys re-wrapped, 2 already current" in again.stdout
    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.count("ok ") == 2

"""The retention sweeper: expired templates and evidence are deleted, open sessions past their
TTL are expired, each tenant's chain records the counts — driven by a fake clock, no sleeping."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiren.domain.entities import Evidence, SessionStatus, new_id
from shiren.service.app import ConsentIn, Engine, ShirenService, SweepResult
from shiren.storage.sql import SqlStore, make_engine
from tests.service.fixtures import FakeClock, make_service
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording
from tests.storage import builders as b


@pytest.fixture(params=["memory", "sqlite"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> ShirenService:
    return make_service(request.param, tmp_path / "sweep.db", engine, recording, clock)


def _enrol(svc: ShirenService, tenant: Any, image: bytes, ref: str, id_number: str) -> Any:
    return svc.enrol(
        tenant,
        external_ref=ref,
        name=NAME,
        id_number=id_number,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=image,
    )


def _swept_events(svc: ShirenService, tenant_id: str) -> list[dict[str, Any]]:
    with svc.store() as uow:
        events = uow.audit.read(tenant_id)
    return [json.loads(e.payload) for e in events if e.kind == "retention.swept"]


def test_sweep_deletes_expired_rows_expires_sessions_and_audits_counts(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    other, _ = service.create_tenant("other lender")
    subject, view = _enrol(service, tenant, recording.still_frame(), "u1", ID_NUMBER)
    frames, times = recording.answer(view.challenge)
    check = service.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert check.check.decision.value == "pass"
    # a raw-image evidence row kept for 7 days (the service writes one only under a policy
    # that keeps images; storage's sweep is what enforces its expiry)
    with service.store() as uow:
        uow.evidence.add(
            Evidence(
                id=new_id(),
                tenant_id=tenant.id,
                check_id=check.check.id,
                image_enc=b"\x01sealed",
                expires_at=clock() + timedelta(days=7),
                created_at=clock(),
            )
        )
        uow.commit()
    _, pending = _enrol(service, tenant, recording.still_frame(), "u2", OTHER_ID)

    assert service.sweep() == SweepResult()  # nothing due yet: no audit event either
    assert _swept_events(service, tenant.id) == []

    clock.advance(service.session_ttl.total_seconds() + 1)
    assert service.sweep() == SweepResult(sessions=1, tenants=1)
    assert service.get_session(tenant, pending.session.id).session.status is SessionStatus.EXPIRED
    used = service.get_session(tenant, view.session.id).session
    assert used.status is SessionStatus.USED  # a used session is not "expired" by the sweep

    clock.advance(8 * 86400)  # the evidence is past its 7 days, the template (365) is not
    assert service.sweep() == SweepResult(evidence=1, tenants=1)
    assert service.export_subject(tenant, subject.id)["templates"] != []

    clock.advance(366 * 86400)  # the consent's 365-day retention has run out
    assert service.sweep(clock()) == SweepResult(templates=1, tenants=1)
    assert service.export_subject(tenant, subject.id)["templates"] == []
    assert service.sweep() == SweepResult()  # idempotent

    events = _swept_events(service, tenant.id)
    assert [(e["face_rows"], e["evidence_rows"], e["sessions_expired"]) for e in events] == [
        (0, 0, 1),
        (0, 1, 0),
        (1, 0, 0),
    ]
    assert all(
        set(e)
        == {"face_rows", "evidence_rows", "review_candidate_rows", "sessions_expired", "as_of"}
        for e in events
    )
    assert _swept_events(service, other.id) == []  # the other tenant had nothing to sweep
    assert service.audit_verify(tenant.id).ok
    assert service.audit_verify(other.id).ok


def test_retention_sweep_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shiren.cli.main import app

    monkeypatch.setenv("SHIREN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SHIREN_ENV", "development")
    for name in ("MASTER_KEY", "AUDIT_KEY", "CHALLENGE_KEY", "KEYS_FILE"):
        monkeypatch.delenv(f"SHIREN_{name}", raising=False)
    runner = CliRunner()
    created = runner.invoke(app, ["tenant", "create", "lender", "--json"])
    assert created.exit_code == 0, created.output
    tenant_id = json.loads(created.stdout)["tenant_id"]
    sql = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    store = SqlStore(sql)
    subject = b.subject(tenant_id)
    with store() as uow:  # a stale open session (builders: created T0, expires T0 + 300 s)
        uow.subjects.add(subject)
        uow.sessions.add(b.session(tenant_id, subject.id))
        uow.commit()
    bad = runner.invoke(app, ["retention", "sweep", "--now", "yesterday", "--json"])
    assert bad.exit_code == 2, bad.output
    early = runner.invoke(app, ["retention", "sweep", "--now", b.at(10).isoformat(), "--json"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["sessions_expired"] == 0
    due = b.at(301).isoformat()
    result = runner.invoke(app, ["retention", "sweep", "--now", due, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "templates": 0,
        "evidence": 0,
        "sessions_expired": 1,
        "tenants": 1,
        "review_candidates": 0,
    }
    text = runner.invoke(app, ["retention", "sweep"])
    assert text.exit_code == 0, text.output
    assert "expired 0 sessions" in text.stdout
    verified = runner.invoke(app, ["audit", "verify", "--tenant", tenant_id])
    assert verified.exit_code == 0, verified.output
    sql.dispose()

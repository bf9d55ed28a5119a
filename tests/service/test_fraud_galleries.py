"""The 1:N galleries follow the database (issue 6), on SQLite (embedded index files, sealed) and
PostgreSQL (pgvector), with the real models of each face network: dlib's ResNet (128-d) and
MobileFaceNet (192-d, the shipped network; skipped while no calibrated threshold ships for it),
each in its own galleries (docs/FRAUD.md, "Galleries per network"):

* the retention sweep takes expired faces out of the enrolled gallery (in the service, and in
  the model-less ``shiren retention sweep`` path on PostgreSQL), a subject with a newer face
  keeps its entry;
* a stale index heals itself when it is next loaded: a crash between the commit and the index
  write (the bound face and a pending reference photo missing), an erasure whose index removal
  was lost (an entry the database no longer has).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shiren.domain import idnumber
from shiren.errors import ConfigError
from shiren.fraud.embedded import EmbeddedProvider
from shiren.fraud.index import IndexProvider
from shiren.fraud.pgvector import PgVectorProvider
from shiren.fraud.policy import load_fraud_policy
from shiren.service.app import ConsentIn, Engine, ShirenService, SweepResult, sweep
from shiren.service.fraud import (
    BLACKLIST,
    ENROLLED,
    REFERENCES,
    FraudGuard,
    gallery_sweeper,
    index_sealers,
)
from shiren.service.keys import ServiceKeys
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.network_support import (
    NETWORK_PROFILES,
    fraud_policy_for,
    network_engine,
    tracked_recording,
)
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording
from tests.storage.conftest import _unavailable, open_backend


def _id(n: int) -> str:
    first17 = f"11010519800101{n:03d}"
    return first17 + idnumber.check_character(first17)


class Deployment:
    """A service plus a way to 'restart' its index (a new process loading the files, a new
    worker on the same PostgreSQL database)."""

    def __init__(self, svc: ShirenService, reopen: Any) -> None:
        self.svc = svc
        self._reopen = reopen

    def restart(self) -> None:
        self.svc.fraud.indexes = self._reopen()


@pytest.fixture(scope="module")
def recording(real_mov_frames: Any, tracker: Any) -> Recording:
    return tracked_recording(real_mov_frames, tracker)


@pytest.fixture(
    params=[(b, n) for n in NETWORK_PROFILES for b in ("sqlite", "postgresql")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engines: dict[str, Engine | ConfigError],
    recording: Recording,
    clock: FakeClock,
) -> Iterator[Deployment]:
    backend_name, network = request.param
    engine = network_engine(engines, network)
    with open_backend(backend_name, tmp_path) as backend:
        svc = ShirenService(
            store=backend.factory,
            keys=ServiceKeys.generate(),
            engine=engine,
            clock=clock,
            draw=recording.drawer(),
            detect_replays=False,  # every capture here is assembled from one recording
            fraud_policy=fraud_policy_for(network, load_fraud_policy()),
        )
        assert backend.engine is not None
        sql = backend.engine
        if backend_name == "sqlite":
            seal_, open_ = index_sealers(svc.vault, svc.store)
            root = tmp_path / "shiren.db.faces"

            def reopen() -> IndexProvider:
                return EmbeddedProvider(root, seal=seal_, open_=open_)

        else:
            try:
                PgVectorProvider(sql).ensure()
            except Exception as exc:  # extension missing: scripts/install_pgvector.sh
                _unavailable(f"pgvector: {type(exc).__name__}")

            def reopen() -> IndexProvider:
                return PgVectorProvider(sql)

        svc.fraud.indexes = reopen()
        yield Deployment(svc, reopen)


def _enrol(svc: ShirenService, tenant: Any, image: bytes, ref: str, id_number: str) -> Any:
    return svc.enrol(
        tenant,
        external_ref=ref,
        name=NAME,
        id_number=id_number,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=image,
    )


def _pass(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> None:
    frames, times = recording.answer(view.challenge)
    check = svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert check.check.decision.value == "pass", check.check.reasons


def _findings(svc: ShirenService, tenant: Any, subject_id: str) -> list[Any]:
    with svc.store() as uow:
        return uow.findings.list_for_subject(tenant.id, subject_id)


def _in(svc: ShirenService, tenant: Any, gallery: str, entry_id: str) -> bool:
    return entry_id in svc.fraud.indexes.index(tenant.id, gallery)


def test_retention_sweep_removes_expired_faces_from_the_gallery(
    deployment: Deployment, recording: Recording, clock: FakeClock
) -> None:
    svc = deployment.svc
    tenant, _ = svc.create_tenant("lender")
    first, view = _enrol(svc, tenant, recording.still_frame(), "u1", ID_NUMBER)
    _pass(svc, tenant, view, recording)
    assert _in(svc, tenant, ENROLLED, first.id)
    assert not _in(svc, tenant, REFERENCES, first.id)
    # 200 days later a second account of the same person (same ID number: not a duplicate)
    clock.advance(200 * 86400)
    second, view = _enrol(svc, tenant, recording.still_frame(), "u2", ID_NUMBER)
    assert _findings(svc, tenant, second.id) == []
    _pass(svc, tenant, view, recording)
    assert _in(svc, tenant, ENROLLED, second.id)

    clock.advance(170 * 86400)  # the first face's 365 days have run out, the second's not
    assert svc.sweep() == SweepResult(templates=1, tenants=1)
    assert not _in(svc, tenant, ENROLLED, first.id)
    assert _in(svc, tenant, ENROLLED, second.id)
    assert len(svc.fraud.indexes.index(tenant.id, ENROLLED)) == 1

    # the same face under another ID number now names only the subject whose face is kept
    clock.advance(60)
    dup, _ = _enrol(svc, tenant, recording.still_frame(), "u3", OTHER_ID)
    named = [f.evidence["other_subject_id"] for f in _findings(svc, tenant, dup.id)]
    assert named == [second.id]

    clock.advance(200 * 86400)
    assert svc.sweep().templates == 1
    assert len(svc.fraud.indexes.index(tenant.id, ENROLLED)) == 0
    # a restart finds nothing to heal: the sweep kept the gallery in line
    deployment.restart()
    healed = svc.fraud.reconcile_all(tenant)
    assert [(h.added, h.removed, h.rebuilt) for h in healed] == [(0, 0, False)] * 3


def test_model_less_cron_sweep_updates_pgvector(
    deployment: Deployment, recording: Recording, clock: FakeClock
) -> None:
    svc = deployment.svc
    engine = svc.fraud.indexes.engine if isinstance(svc.fraud.indexes, PgVectorProvider) else None
    tenant, _ = svc.create_tenant("lender")
    subject, view = _enrol(svc, tenant, recording.still_frame(), "u1", ID_NUMBER)
    _pass(svc, tenant, view, recording)
    assert _in(svc, tenant, ENROLLED, subject.id)
    clock.advance(366 * 86400)
    if engine is None:  # SQLite: the embedded index belongs to the running server
        assert gallery_sweeper(svc.store.engine) is None  # type: ignore[attr-defined]
        return
    result = sweep(svc.store, svc.keys.audit_key, clock(), on_faces_deleted=gallery_sweeper(engine))
    assert result.templates == 1
    assert not _in(svc, tenant, ENROLLED, subject.id)


def test_a_stale_index_heals_itself_when_loaded(
    deployment: Deployment, recording: Recording, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = deployment.svc
    tenant, _ = svc.create_tenant("lender")
    # an erasure whose index removal was lost (the process died after the commit)
    doomed, _ = _enrol(svc, tenant, lfw("Jennifer_Reilly", 1).read_bytes(), "u3", _id(3))
    assert _in(svc, tenant, REFERENCES, doomed.id)
    with monkeypatch.context() as m:
        m.setattr(FraudGuard, "forget", lambda *a, **k: None)
        svc.erase_subject(tenant, doomed.id)
    # crash after the commits, before the index writes: a pending enrolment's reference photo
    # and a bound face are in the database, not in the galleries
    with monkeypatch.context() as m:
        m.setattr(FraudGuard, "bound", lambda *a, **k: None)
        m.setattr(FraudGuard, "enrolled", lambda *a, **k: None)
        pending, _ = _enrol(svc, tenant, lfw("Naoto_Kan", 1).read_bytes(), "u2", _id(2))
        bound, view = _enrol(svc, tenant, recording.still_frame(), "u1", ID_NUMBER)
        _pass(svc, tenant, view, recording)
    # this process already reconciled both galleries: the damage stays until a restart
    assert not _in(svc, tenant, ENROLLED, bound.id)
    assert not _in(svc, tenant, REFERENCES, pending.id)
    assert _in(svc, tenant, REFERENCES, doomed.id)

    deployment.restart()  # a new process loads the index: it is compared with the rows
    healed = {h.gallery: h for h in svc.fraud.reconcile_all(tenant)}
    assert healed[ENROLLED].added == 1
    assert healed[REFERENCES].added == 1
    assert (healed[REFERENCES].removed, healed[REFERENCES].rebuilt) == (1, False)  # pruned
    assert (healed[BLACKLIST].added, healed[BLACKLIST].removed) == (0, 0)
    assert _in(svc, tenant, ENROLLED, bound.id)
    assert _in(svc, tenant, REFERENCES, pending.id)
    assert not _in(svc, tenant, REFERENCES, doomed.id)
    # the healed entries are the real faces: both duplicates are found again
    clock.advance(60)
    dup, _ = _enrol(svc, tenant, recording.still_frame(), "u4", OTHER_ID)
    (flag,) = _findings(svc, tenant, dup.id)
    assert (flag.code, flag.evidence["gallery"]) == ("fraud.duplicate_face", "enrolled")
    assert flag.evidence["other_subject_id"] == bound.id
    dup2, _ = _enrol(svc, tenant, lfw("Naoto_Kan", 2).read_bytes(), "u5", _id(5))
    (flag2,) = _findings(svc, tenant, dup2.id)
    assert (flag2.evidence["gallery"], flag2.evidence["other_subject_id"]) == (
        "references",
        pending.id,
    )
    # healthy now: a second reconcile changes nothing
    assert [(h.added, h.removed) for h in svc.fraud.reconcile_all(tenant)] == [(0, 0)] * 3


def test_first_use_after_a_restart_heals_without_an_explicit_call(
    deployment: Deployment, recording: Recording, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No operator action: the first enrolment after the restart reconciles the gallery."""
    svc = deployment.svc
    tenant, _ = svc.create_tenant("lender")
    with monkeypatch.context() as m:
        m.setattr(FraudGuard, "bound", lambda *a, **k: None)
        bound, view = _enrol(svc, tenant, recording.still_frame(), "u1", ID_NUMBER)
        _pass(svc, tenant, view, recording)
    # a stray vector under an id the database does not know (a rolled-back transaction)
    stray = np.frombuffer(recording_template(svc, recording), dtype=np.float32)
    svc.fraud.indexes.index(tenant.id, ENROLLED).add("f" * 32, stray)
    svc.fraud.indexes.index(tenant.id, ENROLLED).persist()
    deployment.restart()
    clock.advance(60)
    dup, _ = _enrol(svc, tenant, recording.still_frame(), "u2", OTHER_ID)
    (flag,) = _findings(svc, tenant, dup.id)
    assert flag.evidence["other_subject_id"] == bound.id
    assert not _in(svc, tenant, ENROLLED, "f" * 32)


def recording_template(svc: ShirenService, recording: Recording) -> bytes:
    return bytes(svc.verifier.analyze(recording.still_frame()).template.astype(np.float32).data)


class _Flaky:
    """An index provider whose enrolled gallery refuses writes while ``down`` (an index store
    outage after the database committed)."""

    def __init__(self, inner: IndexProvider) -> None:
        self.inner = inner
        self.down = False

    def index(self, tenant_id: str, gallery: str) -> Any:
        real = self.inner.index(tenant_id, gallery)
        if not (self.down and gallery == ENROLLED):
            return real

        class Refusing:  # reads work, writes fail
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def __len__(self) -> int:
                return len(real)

            def __contains__(self, entry_id: object) -> bool:
                return entry_id in real

            def add(self, *_: Any) -> None:
                raise ConnectionError("index store down")

            remove = add

        return Refusing()

    def drop(self, tenant_id: str, gallery: str) -> None:
        self.inner.drop(tenant_id, gallery)


def test_an_index_outage_after_the_commit_is_healed_at_the_next_use(
    deployment: Deployment, recording: Recording, clock: FakeClock
) -> None:
    """The capture that binds the face still answers ``pass`` when the index write fails; the
    gallery is reconciled at its next use, so the face is found as a duplicate right after."""
    svc = deployment.svc
    flaky = _Flaky(svc.fraud.indexes)
    svc.fraud.indexes = flaky
    tenant, _ = svc.create_tenant("lender")
    first, view = _enrol(svc, tenant, recording.still_frame(), "u1", ID_NUMBER)
    _pass(svc, tenant, view, recording)
    clock.advance(60)
    second, view = _enrol(svc, tenant, recording.still_frame(), "u2", ID_NUMBER)  # 2nd account
    flaky.down = True
    _pass(svc, tenant, view, recording)  # no error although the gallery write failed
    flaky.down = False
    assert not _in(svc, tenant, ENROLLED, second.id)
    clock.advance(60)
    dup, _ = _enrol(svc, tenant, recording.still_frame(), "u3", OTHER_ID)
    named = {f.evidence["other_subject_id"] for f in _findings(svc, tenant, dup.id)}
    assert named == {first.id, second.id}
    assert _in(svc, tenant, ENROLLED, second.id)

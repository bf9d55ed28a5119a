"""Issue 14 acceptance: a database enrolled with dlib's ResNet keeps working after the upgrade to
MobileFaceNet.  A subject enrols on the old network; the service restarts on the new one (same
database, same keys); the subject's step-up is judged on the old network's template with that
network's threshold, passes, and the new network's template is added from the live frames; the
next step-up uses the new template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shiren.liveness.check import LivenessChecker
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.service.matching import network_of
from shiren.storage.sql import SqlStore, make_engine, migrate
from shiren.thresholds import default_threshold
from shiren.verifier import DLIB, MOBILEFACENET, PROFILES
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording


def _dlib_engine(engine: Engine) -> Engine:
    verifier = engine.verifier.sibling(PROFILES["dlib-standard"].config())
    checker = LivenessChecker(
        verifier=verifier,
        tracker=engine.checker.tracker,
        pad=engine.checker.pad,
        config=engine.checker.config,
    )
    return Engine(verifier, checker)


def _service(db: Path, keys: ServiceKeys, engine: Engine, rec: Recording, clock: FakeClock) -> Any:
    sql = make_engine(f"sqlite:///{db}")
    migrate(sql)
    return ShirenService(
        store=SqlStore(sql),
        keys=keys,
        engine=engine,
        clock=clock,
        draw=rec.drawer(),
        detect_replays=False,
    )


def _answer(svc: ShirenService, tenant: Any, view: Any, rec: Recording, seed: int) -> Any:
    frames, times = rec.answer(view.challenge, seed=seed)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def _networks(svc: ShirenService, tenant: Any, subject_id: str) -> list[str]:
    with svc.store() as uow:
        return [
            network_of(t.embedder) for t in uow.templates.list_for_subject(tenant.id, subject_id)
        ]


def _step_up(svc: ShirenService, tenant: Any, subject_id: str, rec: Recording, seed: int) -> Any:
    step = svc.start_step_up(
        tenant, subject_id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.session is not None
    return _answer(svc, tenant, step.session, rec, seed)


def test_enrolled_on_dlib_steps_up_after_the_upgrade_and_gains_the_new_template(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    assert engine.verifier.embedder.info.name == MOBILEFACENET
    db, keys = tmp_path / "upgrade.db", ServiceKeys.generate()
    old = _service(db, keys, _dlib_engine(engine), recording, clock)
    tenant, _ = old.create_tenant("lender")
    subject, view = old.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=recording.still_frame(),
    )
    enrolled = _answer(old, tenant, view, recording, 0)
    assert enrolled.check.decision.value == "pass", enrolled.check.reasons
    assert _networks(old, tenant, subject.id) == [DLIB]

    clock.advance(60)
    new = _service(db, keys, engine, recording, clock)  # the upgrade: same database and keys
    first = _step_up(new, tenant, subject.id, recording, 1)
    assert first.check.decision.value == "pass", (first.check.reasons, first.check.match_score)
    # judged on dlib's template with dlib's own threshold, not MobileFaceNet's
    assert first.check.match_score is not None
    assert first.check.match_score >= default_threshold(DLIB, views=PROFILES["dlib-standard"].views)
    assert sorted(_networks(new, tenant, subject.id)) == sorted([DLIB, MOBILEFACENET])

    clock.advance(60)
    second = _step_up(new, tenant, subject.id, recording, 2)
    assert second.check.decision.value == "pass", (second.check.reasons, second.check.match_score)
    assert second.check.match_score is not None
    assert second.check.match_score <= 1.0
    # no third template: the subject already has the shipped network's
    assert sorted(_networks(new, tenant, subject.id)) == sorted([DLIB, MOBILEFACENET])
    assert new.audit_verify(tenant.id).ok


def test_a_network_this_deployment_cannot_load_is_a_reason_not_a_crash(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> None:
    """A template of an unknown network (a lender's own model, since removed): the check says
    ``match.template_outdated`` and the decision offers the non-face routes."""
    from shiren.service.matching import FaceMatcher, StoredFace

    matcher = FaceMatcher(engine.verifier)
    stored = [StoredFace("t1", "templates", "someone-elses-net", np.ones(64, np.float32))]
    frames, times = recording.answer(recording.drawer()(engine.checker.config, _level(), 0.0))
    from shiren.liveness.frames import from_encoded

    sequence = from_encoded(frames, times, engine.checker.config.frames)
    challenge = recording.drawer()(engine.checker.config, _level(), 0.0)
    out = matcher.match(stored, sequence, challenge, None, enrolment=False, default_threshold=0.7)
    assert out.similarity is None
    assert out.reasons == ("match.template_outdated",)
    assert out.live_template is not None


def _level() -> Any:
    from shiren.liveness.config import Level

    return Level("normal")

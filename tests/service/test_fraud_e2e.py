"""Anti-fraud end to end with the real models (issue 6 acceptance), once per face network (dlib's
ResNet, MobileFaceNet; each searches its own galleries, see docs/FRAUD.md):

* the same face enrolled again under another ID number is flagged (``fraud.duplicate_face``)
  — the live recording's person after a passed enrolment, and an LFW person (Naoto Kan, two
  different press photos) before any enrolment passed — while another LFW person is not;
* a blacklisted face is caught at step-up: the capture is decided ``fallback`` with
  ``fraud.blacklist_hit`` (policy action ``reject``), the finding is stored with its evidence,
  blacklist changes are audited and served by ``/v1/blacklist``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.domain import idnumber
from shiren.errors import ConfigError
from shiren.fraud.policy import load_fraud_policy
from shiren.service.app import ConsentIn, Engine, ShirenService
from tests.conftest import lfw
from tests.service.fixtures import FakeClock, make_service
from tests.service.network_support import (
    NETWORK_PROFILES,
    fraud_policy_for,
    network_engine,
    tracked_recording,
)
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording


def _id(n: int) -> str:
    first17 = f"11010519800101{n:03d}"
    return first17 + idnumber.check_character(first17)


# the shipped policy, except that ONE earlier enrolment with the same background is enough
# (the live recording always shows the same room) and small velocity / device limits
POLICY = replace(
    load_fraud_policy(),
    version="test.1",
    background_min_matches=1,
    device_max_subjects=2,
    velocity_limits={"subject": 10, "device": 20, "ip": 30, "id_number": 2},
)


@pytest.fixture(scope="module")
def recording(real_mov_frames: Any, tracker: Any) -> Recording:
    return tracked_recording(real_mov_frames, tracker)


@pytest.fixture(
    params=[(k, n) for n in NETWORK_PROFILES for k in ("memory", "sqlite")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engines: dict[str, Engine | ConfigError],
    recording: Recording,
    clock: FakeClock,
) -> ShirenService:
    kind, network = request.param
    engine = network_engine(engines, network)
    policy = fraud_policy_for(network, POLICY)
    return make_service(kind, tmp_path / "svc.db", engine, recording, clock, fraud_policy=policy)


def _enrol(svc: ShirenService, tenant: Any, image: bytes, ref: str, id_number: str) -> Any:
    return svc.enrol(
        tenant,
        external_ref=ref,
        name=NAME,
        id_number=id_number,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=image,
    )


def _codes(svc: ShirenService, tenant: Any, subject_id: str) -> list[str]:
    with svc.store() as uow:
        return [f.code for f in uow.findings.list_for_subject(tenant.id, subject_id)]


def _answer(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> Any:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def test_lfw_person_enrolling_under_a_second_id_number_is_flagged(service: ShirenService) -> None:
    tenant, _ = service.create_tenant("lender")
    first, _ = _enrol(service, tenant, lfw("Naoto_Kan", 1).read_bytes(), "a", _id(1))
    assert _codes(service, tenant, first.id) == []
    second, _ = _enrol(service, tenant, lfw("Naoto_Kan", 2).read_bytes(), "b", _id(2))
    with service.store() as uow:
        found = uow.findings.list_for_subject(tenant.id, second.id)
    assert [f.code for f in found] == ["fraud.duplicate_face"]
    assert found[0].evidence["other_subject_id"] == first.id
    assert found[0].evidence["similarity"] >= service.fraud.policy.duplicate_threshold
    stranger, _ = _enrol(service, tenant, lfw("Jennifer_Reilly", 1).read_bytes(), "c", _id(3))
    assert _codes(service, tenant, stranger.id) == []
    # under the SAME ID number as `first` it is a second account of that identity: only the
    # other ID number (`second`) is named as a duplicate
    again, _ = _enrol(service, tenant, lfw("Naoto_Kan", 2).read_bytes(), "d", _id(1))
    with service.store() as uow:
        named = [
            f.evidence["other_subject_id"]
            for f in uow.findings.list_for_subject(tenant.id, again.id)
        ]
    assert named == [second.id]


def test_duplicate_enrolment_goes_to_review_and_blacklist_blocks_step_up(
    service: ShirenService, recording: Recording, clock: FakeClock
) -> None:
    tenant, api_key = service.create_tenant("lender")
    subject, view = _enrol(service, tenant, recording.still_frame(), "u1", ID_NUMBER)
    assert _answer(service, tenant, view, recording).check.decision.value == "pass"
    # the index is lost (a deleted file, a new worker): it is rebuilt from the sealed templates
    service.fraud.indexes.drop(tenant.id, "enrolled")
    # the same live person enrols again under another ID number: flagged, capture → review
    clock.advance(60)
    dup, view2 = _enrol(service, tenant, recording.still_frame(), "u2", OTHER_ID)
    with service.store() as uow:
        (flag,) = uow.findings.list_for_subject(tenant.id, dup.id)
    assert flag.code == "fraud.duplicate_face"
    assert flag.evidence["gallery"] == "enrolled"
    assert flag.evidence["other_subject_id"] == subject.id
    check = _answer(service, tenant, view2, recording)
    assert check.check.decision.value == "review"
    assert "fraud.duplicate_face" in check.check.reasons
    assert "fraud.batch_background" in check.check.reasons  # same room as the first capture
    assert service.export_subject(tenant, dup.id)["subject"]["status"] != "enrolled"
    # the first subject's ID number with somebody else's face
    imposter, _ = _enrol(service, tenant, lfw("Naoto_Kan", 1).read_bytes(), "u3", ID_NUMBER)
    with service.store() as uow:
        (other,) = uow.findings.list_for_subject(tenant.id, imposter.id)
    assert other.code == "fraud.id_number_other_face"
    assert other.evidence["other_subject_id"] == subject.id
    assert other.evidence["similarity"] < service.fraud.policy.same_id_threshold

    # the lender blacklists the first subject's face through the API
    client = TestClient(create_app(service))
    auth = {"Authorization": f"Bearer {api_key}"}
    added = client.post(
        "/v1/blacklist",
        headers=auth,
        json={
            "list_name": "confirmed",
            "reason": "confirmed_fraud",
            "evidence_ref": "CASE-2026-0001",
            "added_by": "analyst-7",
            "subject_id": subject.id,
        },
    )
    assert added.status_code == 201, added.text
    listed = client.get("/v1/blacklist", headers=auth).json()["entries"]
    assert [e["id"] for e in listed] == [added.json()["id"]]
    assert "template" not in str(listed)
    bad = client.post("/v1/blacklist", headers=auth, json={"reason": "x", "evidence_ref": "y"})
    assert bad.status_code == 422

    # ... and the next step-up capture of that face is caught
    clock.advance(60)
    step = service.start_step_up(
        tenant, subject.id, event_type="large_transaction", amount_minor=100, device_id="d1"
    )
    assert step.session is not None
    caught = _answer(service, tenant, step.session, recording)
    assert caught.check.decision.value == "fallback"
    assert "fraud.blacklist_hit" in caught.check.reasons
    findings = client.get(f"/v1/subjects/{subject.id}/fraud-findings", headers=auth).json()
    hit = [f for f in findings["findings"] if f["code"] == "fraud.blacklist_hit"]
    assert hit[0]["check_id"] == caught.check.id
    assert hit[0]["evidence"]["entry_id"] == added.json()["id"]
    assert hit[0]["action"] == "reject"

    # removing the entry is audited and the face is no longer caught
    gone = client.delete(
        f"/v1/blacklist/{added.json()['id']}", headers=auth, params={"removed_by": "lead"}
    )
    assert gone.status_code == 200
    assert client.get("/v1/blacklist", headers=auth).json()["entries"] == []
    missing = client.delete(
        f"/v1/blacklist/{added.json()['id']}", headers=auth, params={"removed_by": "lead"}
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "record.not_found"
    kinds = [e.kind for e in _audit(service, tenant.id)]
    assert "blacklist.added" in kinds
    assert "blacklist.removed" in kinds
    assert "fraud.findings" in kinds
    assert service.audit_verify(tenant.id).ok


def test_device_and_velocity(service: ShirenService) -> None:
    tenant, _ = service.create_tenant("lender")
    people = ["Naoto_Kan", "Jennifer_Reilly", "Marc-Andre_Fleury"]
    subjects = [
        service.enrol(
            tenant,
            external_ref=f"s{i}",
            name=NAME,
            id_number=_id(10 + i),
            consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
            reference_image=lfw(name, 1).read_bytes(),
            device_id="shared-phone",
        )[0]
        for i, name in enumerate(people)
    ]
    codes = [_codes(service, tenant, s.id) for s in subjects]
    assert codes[:2] == [[], []]
    assert codes[2] == ["fraud.device_many_faces"]  # a third face from one device
    # one ID number, many attempts in the window: the third is a velocity finding
    for n in range(3):
        again, _ = _enrol(service, tenant, lfw("Naoto_Kan", 1).read_bytes(), f"v{n}", _id(50))
    assert "fraud.velocity" in _codes(service, tenant, again.id)


def _audit(service: ShirenService, tenant_id: str) -> list[Any]:
    with service.store() as uow:
        return uow.audit.read(tenant_id, limit=10_000)


def test_device_id_in_the_enrolment_body(service: ShirenService) -> None:
    """``device_id`` in ``POST /v1/subjects`` reaches the device check (JSON and multipart)."""
    tenant, api_key = service.create_tenant("lender")
    client = TestClient(create_app(service))
    auth = {"Authorization": f"Bearer {api_key}"}
    people = ["Naoto_Kan", "Jennifer_Reilly", "Marc-Andre_Fleury", "Lleyton_Hewitt"]
    devices = ["shared-phone", "shared-phone", "shared-phone", "own-phone"]
    ids = []
    for i, (name, device) in enumerate(zip(people, devices, strict=True)):
        meta = {
            "external_ref": f"d{i}",
            "name": NAME,
            "id_number": _id(20 + i),
            "consent": CONSENT,
            "device_id": device,
        }
        image = lfw(name, 1).read_bytes()
        if i % 2:  # multipart: the JSON in the meta part
            r = client.post(
                "/v1/subjects",
                headers=auth,
                data={"meta": json.dumps(meta)},
                files=[("reference_image", ("r.jpg", image, "image/jpeg"))],
            )
        else:
            body = {**meta, "reference_image": base64.b64encode(image).decode()}
            r = client.post("/v1/subjects", headers=auth, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["subject"]["id"])
    codes = [
        [
            f["code"]
            for f in client.get(f"/v1/subjects/{sid}/fraud-findings", headers=auth).json()[
                "findings"
            ]
        ]
        for sid in ids
    ]
    assert codes == [[], [], ["fraud.device_many_faces"], []]  # the third face of one device
    # the device id is stored only as a keyed hash
    with service.store() as uow:
        stored = str(uow.enrol_signals.recent(tenant.id, _long_ago(), limit=10))
    assert "shared-phone" not in stored
    for bad in ("", "x" * 129):
        body = {**meta, "external_ref": "bad", "device_id": bad, "reference_image": "AA=="}
        r = client.post("/v1/subjects", headers=auth, json=body)
        assert r.status_code == 422
        assert r.json()["code"] == "input.invalid"


def _long_ago() -> Any:
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)

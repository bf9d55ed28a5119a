"""``POST /v1/subjects/{id}/consents/withdraw`` over HTTP (SQLite and PostgreSQL, via the ``api``
fixture of test_api): idempotent, tenant-isolated, validated; step-ups fall back afterwards and
the enrolment session is refused with ``subject.consent_withdrawn``."""

from __future__ import annotations

from tests.api.test_api import Api, _is_problem, api  # noqa: F401 - api is a fixture
from tests.service.support import CONSENT


def test_withdraw_consent_over_http(api: Api) -> None:  # noqa: F811
    _, auth = api.tenant()
    _, other = api.tenant("other")
    enrolled = api.enrol(auth, api.recording.still_frame())
    assert enrolled.status_code == 201, enrolled.text
    subject_id = enrolled.json()["subject"]["id"]
    url = f"/v1/subjects/{subject_id}/consents/withdraw"
    body = {"purpose": CONSENT["purpose"]}
    _is_problem(api.client.post(url, json=body, headers=other), 404, "record.not_found")
    _is_problem(api.client.post(url, json={"purpose": "x", "extra": 1}, headers=auth), 422)
    _is_problem(api.client.post(url, json={"purpose": "ads"}, headers=auth), 404)
    done = api.client.post(url, json=body, headers=auth)
    assert done.status_code == 200, done.text
    assert done.json()["already_withdrawn"] is False
    assert done.json()["deleted"]["reference_rows"] == 1
    again = api.client.post(url, json={**body, "version": CONSENT["version"]}, headers=auth)
    assert again.status_code == 200
    assert again.json()["already_withdrawn"] is True
    # the open enrolment session is refused with a typed error
    refused = api.submit(auth, enrolled.json()["session"])
    _is_problem(refused, 409, "subject.consent_withdrawn")
    event = {"subject_id": subject_id, "type": "disbursement", "amount_minor": 100}
    step = api.client.post("/v1/events", json=event, headers=auth)
    assert step.status_code == 200, step.text
    assert step.json()["session"] is None
    assert step.json()["requirement"]["reasons"] == ["consent.withdrawn"]
    assert step.json()["requirement"]["purpose"] == "fallback"
    exported = api.client.get(f"/v1/subjects/{subject_id}/export", headers=auth).json()
    assert exported["consents"][0]["withdrawn_at"] == done.json()["consents"][0]["withdrawn_at"]

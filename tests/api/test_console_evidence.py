"""Reviewer evidence in the console (issue 17), over HTTP on SQLite and PostgreSQL: the keyframes
a review keeps are shown to reviewers only, each view audited (ids only), served with no-store
and a strict CSP; they go when the review is decided or when they expire; a reason that claims
an inspection of the faces is offered and accepted only where there is something to inspect."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from shiren.api.app import create_app
from shiren.domain.entities import ReviewStatus
from shiren.domain.review_evidence import ReviewEvidencePolicy
from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.service.retention import sweep
from shiren.storage.leakscan import scan_database
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import (
    add_case,
    add_fallback_case,
    add_keyframes,
    audit_kinds,
)
from tests.api.test_api import _database
from tests.api.test_console import Console
from tests.service.fixtures import FakeClock
from tests.service.support import Recording

VIEWED = "console.evidence_viewed"


@pytest.fixture(params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
) -> Iterator[Console]:
    clock.now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with _database(request.param, tmp_path) as url:
        sql = make_engine(url)
        migrate(sql)
        service = ShirenService(
            store=SqlStore(sql),
            keys=ServiceKeys.generate(),
            engine=engine,
            clock=clock,
            draw=recording.drawer(),
            detect_replays=False,
        )
        try:
            yield Console(service, create_app(service), clock, sql)
        finally:
            sql.dispose()


def _img(review_id: str, evidence_id: str) -> str:
    return f"/console/reviews/{review_id}/evidence/{evidence_id}"


def _status(env: Console, review_id: str) -> ReviewStatus:
    with env.service.store() as uow:
        item = uow.reviews.get(env.tenant.id, review_id)
    assert item is not None
    return item.status


def test_a_case_without_kept_keyframes_offers_no_inspection_reason(env: Console) -> None:
    """The defect: "Same person: the faces match on inspection" was offered (and accepted) on a
    deployment that keeps no images to inspect."""
    ids = add_case(env.service, env.tenant, ref="loan-1", when=env.clock.now)
    flow = add_fallback_case(env.service, env.tenant, ref="loan-2", when=env.clock.now)
    rita = env.signed_in("rita", "reviewer")
    page = rita.client.get(f"/console/reviews/{ids['review']}").text
    assert 'value="documents_checked"' in page
    assert 'value="same_person"' not in page
    assert "keeps no capture images" in page
    url = f"/console/reviews/{ids['review']}/decision"
    form = {"outcome": "approve", "category": "same_person", "note": "looks like them"}
    refused = rita.post(url, form)
    assert refused.status_code == 400
    assert "no kept keyframes to inspect" in refused.text
    assert _status(env, ids["review"]) is ReviewStatus.OPEN
    fallback = rita.client.get(f"/console/fallbacks/{flow['fallback']}").text
    assert 'value="same_person"' not in fallback  # a non-face case has no face to look at
    refused = rita.post(f"/console/fallbacks/{flow['fallback']}/decision", form)
    assert refused.status_code == 400
    assert "console.review_decided" not in [k for k, _ in audit_kinds(env.service, env.tenant.id)]


def test_a_reviewer_sees_the_kept_keyframes_and_every_view_is_audited(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-3", when=env.clock.now)
    kept = add_keyframes(env.service, env.tenant, ids)
    rita = env.signed_in("rita", "reviewer")
    page = rita.client.get(f"/console/reviews/{ids['review']}").text
    for evidence_id in kept:
        assert f'src="{_img(ids["review"], evidence_id)}"' in page
    assert 'value="same_person"' in page  # something to inspect now
    assert "Each view is written to the audit log" in page
    jpegs = []
    for evidence_id in [*kept, kept[0]]:  # the first one twice: two views, two audit lines
        resp = rita.client.get(_img(ids["review"], evidence_id))
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "image/jpeg"
        assert resp.headers["cache-control"].startswith("no-store")
        assert resp.headers["pragma"] == "no-cache"
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "sandbox" in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cross-origin-resource-policy"] == "same-origin"
        with Image.open(io.BytesIO(resp.content)) as picture:
            assert picture.format == "JPEG"
            assert max(picture.size) <= 640
            assert not picture.getexif()
        jpegs.append(resp.content)
    events = audit_kinds(env.service, env.tenant.id)
    viewed = [p for k, p in events if k == VIEWED]
    assert viewed == [
        {
            "user_id": rita.user_id,
            "role": "reviewer",
            "review_id": ids["review"],
            "check_id": ids["check"],
            "evidence_id": evidence_id,
        }
        for evidence_id in [*kept, kept[0]]
    ]
    with env.service.store() as uow:
        lines = [e for e in uow.audit.read(env.tenant.id) if e.kind == VIEWED]
    assert {e.subject_id for e in lines} == {ids["subject"]}
    assert env.service.audit_verify(env.tenant.id).ok
    # the picture is nowhere in clear: not in the audit chain, not in any row or file
    markers = [j[600:648] for j in jpegs[:3]]
    assert scan_database(env.sql, markers) == []
    assert all(m.hex() not in json.dumps(viewed) for m in markers)


def test_only_reviewers_may_look(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-4", when=env.clock.now)
    kept = add_keyframes(env.service, env.tenant, ids, count=2)
    for name, role in (("ann", "auditor"), ("ada", "admin")):
        person = env.signed_in(name, role)
        page = person.client.get(f"/console/reviews/{ids['review']}").text
        assert "/evidence/" not in page
        assert "2 kept; only reviewers may look at them." in page
        assert 'value="same_person"' not in page
        denied = person.client.get(_img(ids["review"], kept[0]))
        assert denied.status_code == 403
        assert "console.forbidden" in denied.text
        assert denied.headers["content-type"].startswith("text/html")
    ada = env.signed_in("ada2", "admin")  # an admin may decide, but not claim an inspection
    url = f"/console/reviews/{ids['review']}/decision"
    form = {"outcome": "approve", "category": "same_person", "note": "trust me"}
    assert ada.post(url, form).status_code == 400
    assert _status(env, ids["review"]) is ReviewStatus.OPEN
    assert VIEWED not in [k for k, _ in audit_kinds(env.service, env.tenant.id)]


def test_another_case_or_tenant_keyframe_is_not_found(env: Console) -> None:
    mine = add_case(env.service, env.tenant, ref="loan-5", when=env.clock.now)
    other_case = add_case(env.service, env.tenant, ref="loan-6", when=env.clock.now)
    theirs = add_case(env.service, env.other, ref="loan-7", when=env.clock.now)
    (my_frame,) = add_keyframes(env.service, env.tenant, mine, count=1)
    (other_frame,) = add_keyframes(env.service, env.tenant, other_case, count=1)
    (their_frame,) = add_keyframes(env.service, env.other, theirs, count=1)
    rita = env.signed_in("rita", "reviewer")
    for url in (
        _img(mine["review"], other_frame),  # another case's frame through this case
        _img(mine["review"], their_frame),
        _img(theirs["review"], their_frame),  # another tenant's case
        _img(mine["review"], "0" * 32),
        _img(mine["review"], "not-an-id"),
        _img("0" * 32, my_frame),
    ):
        assert rita.client.get(url).status_code == 404, url
    bob = env.signed_in("bob", "admin", env.other)  # another tenant's admin: not found either
    assert bob.client.get(_img(mine["review"], my_frame)).status_code == 404
    assert VIEWED not in [k for k, _ in audit_kinds(env.service, env.tenant.id)]
    assert VIEWED not in [k for k, _ in audit_kinds(env.service, env.other.id)]


def test_deciding_the_review_deletes_its_keyframes(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-8", when=env.clock.now)
    kept = add_keyframes(env.service, env.tenant, ids)
    keep_other = add_case(env.service, env.tenant, ref="loan-9", when=env.clock.now)
    other = add_keyframes(env.service, env.tenant, keep_other, count=1)
    rita = env.signed_in("rita", "reviewer")
    assert rita.client.get(_img(ids["review"], kept[0])).status_code == 200
    url = f"/console/reviews/{ids['review']}/decision"
    note = "same face as the reference"
    done = rita.post(url, {"outcome": "approve", "category": "same_person", "note": note})
    assert done.status_code == 303
    with env.service.store() as uow:
        assert uow.evidence.list_for_check(env.tenant.id, ids["check"]) == []
        assert [e.id for e in uow.evidence.list_for_check(env.tenant.id, keep_other["check"])] == (
            other
        )
    assert rita.client.get(_img(ids["review"], kept[0])).status_code == 404
    closed = rita.client.get(f"/console/reviews/{ids['review']}").text
    assert "/evidence/" not in closed
    events = dict(audit_kinds(env.service, env.tenant.id))
    assert events["review.closed"]["keyframes_deleted"] == 3
    assert events["console.review_decided"]["reason_category"] == "same_person"


def test_expired_keyframes_are_hidden_then_swept(env: Console) -> None:
    env.service.recorder.evidence = ReviewEvidencePolicy(keyframes=3, days=1)
    ids = add_case(env.service, env.tenant, ref="loan-10", when=env.clock.now)
    kept = add_keyframes(env.service, env.tenant, ids, days=1)
    env.clock.advance(timedelta(days=1).total_seconds() + 1)
    rita = env.signed_in("rita", "reviewer")
    assert rita.client.get(_img(ids["review"], kept[0])).status_code == 404
    page = rita.client.get(f"/console/reviews/{ids['review']}").text
    assert "/evidence/" not in page
    assert "None kept for this case" in page
    assert 'value="same_person"' not in page
    result = sweep(env.service.store, env.service.keys.audit_key, env.clock.now)
    assert result.evidence == 3
    with env.service.store() as uow:
        assert uow.evidence.list_for_check(env.tenant.id, ids["check"]) == []
    swept = [p for k, p in audit_kinds(env.service, env.tenant.id) if k == "retention.swept"]
    assert swept[-1]["evidence_rows"] == 3

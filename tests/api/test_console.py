"""The review console over HTTP (``/console``) on SQLite and PostgreSQL: sign-in, lock-out,
sessions, CSRF, roles, tenant isolation, decisions with a required reason, the audit log and
the dashboard's numbers against hand-counted fixtures."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.domain.entities import Decision, ReviewStatus
from shiren.service.app import Engine, ShirenService
from shiren.service.console import ConsoleService
from shiren.service.keys import ServiceKeys
from shiren.storage.leakscan import scan_database
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import (
    Staff,
    add_case,
    add_fallback_case,
    audit_kinds,
    csrf_of,
    staff,
)
from tests.api.test_api import _database
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.support import Recording
from tests.storage import builders as b


class Console:
    def __init__(self, service: ShirenService, app: Any, clock: FakeClock, sql: Any) -> None:
        self.service = service
        self.sql = sql
        self.app = app
        self.clock = clock
        self.console: ConsoleService = app.state.console
        self.tenant, _ = service.create_tenant("lender A")
        self.other, _ = service.create_tenant("lender B")

    def staff(self, name: str, role: str, tenant: Any = None) -> Staff:
        return staff(self.app, self.console, tenant or self.tenant, name, role)

    def signed_in(self, name: str, role: str, tenant: Any = None) -> Staff:
        person = self.staff(name, role, tenant)
        assert person.sign_in().status_code == 303
        return person


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


def _set_cookie(resp: Any) -> str:
    return "; ".join(resp.headers.get_list("set-cookie"))


def test_sign_in_sets_a_strict_http_only_cookie_and_is_audited(env: Console) -> None:
    rita = env.staff("rita", "reviewer")
    page = rita.client.get("/console/queue", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=/console/queue"
    resp = rita.sign_in()
    assert (resp.status_code, resp.headers["location"]) == (303, "/console")
    cookie = _set_cookie(resp)
    assert "shiren_console=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # development over http
    home = rita.client.get("/console", follow_redirects=False)
    assert home.headers["location"] == "/console/queue"
    queue = rita.client.get("/console/queue")
    assert queue.status_code == 200
    assert "Review queue" in queue.text
    assert "default-src 'none'" in queue.headers["content-security-policy"]
    assert queue.headers["cache-control"] == "no-store"
    events = audit_kinds(env.service, env.tenant.id)
    signed = [p for k, p in events if k == "console.signed_in"]
    assert signed == [{"user_id": rita.user_id, "role": "reviewer"}]
    assert rita.password not in json.dumps(events)
    assert "rita" not in json.dumps(events)


def test_wrong_passwords_lock_the_account_then_it_unlocks(env: Console) -> None:
    ann = env.staff("ann", "auditor")
    for _ in range(4):
        bad = ann.sign_in("wrong password")
        assert bad.status_code == 401
        assert "username or password is wrong" in bad.text
    fifth = ann.sign_in("wrong again")
    assert fifth.status_code == 429
    assert "locked" in fifth.text
    assert ann.sign_in().status_code == 429  # the right password does not help while locked
    kinds = [k for k, _ in audit_kinds(env.service, env.tenant.id)]
    assert kinds.count("console.sign_in_failed") == 6
    assert kinds.count("console.locked") == 1
    assert "wrong" not in json.dumps(audit_kinds(env.service, env.tenant.id))
    env.clock.advance(15 * 60 + 1)
    assert ann.sign_in().status_code == 303
    # neither the password nor what was typed wrongly is stored anywhere (rows, files, WAL)
    assert scan_database(env.sql, [ann.password, "wrong password", "wrong again"]) == []
    nobody = env.staff("zed", "reviewer")
    nobody.username = "no-such-user"
    before = len(audit_kinds(env.service, env.tenant.id))
    assert nobody.sign_in().status_code == 401
    assert len(audit_kinds(env.service, env.tenant.id)) == before  # no tenant, no chain


def test_sessions_time_out_when_idle_and_end_at_sign_out(env: Console) -> None:
    rita = env.signed_in("rita", "reviewer")
    env.clock.advance(10 * 60)
    assert rita.client.get("/console/queue").status_code == 200  # refreshes the idle timer
    env.clock.advance(10 * 60)
    assert rita.client.get("/console/queue").status_code == 200
    env.clock.advance(15 * 60 + 1)
    idle = rita.client.get("/console/queue", follow_redirects=False)
    assert idle.status_code == 303
    assert idle.headers["location"].startswith("/console/login")
    assert rita.sign_in().status_code == 303
    stolen = rita.client.cookies.get("shiren_console")
    out = rita.post("/console/logout", {})
    assert out.status_code == 303
    replay = TestClient(env.app)
    replay.cookies.set("shiren_console", stolen or "", path="/console")
    assert replay.get("/console/queue", follow_redirects=False).status_code == 303
    forged = TestClient(env.app)
    forged.cookies.set("shiren_console", (stolen or "x.y")[:-3] + "AAA", path="/console")
    assert forged.get("/console/queue", follow_redirects=False).status_code == 303


def test_every_post_needs_the_csrf_token(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-1", when=env.clock.now)
    rita = env.signed_in("rita", "reviewer")
    form = {"outcome": "approve", "category": "same_person", "note": "looks right"}
    url = f"/console/reviews/{ids['review']}/decision"
    missing = rita.client.post(url, data=form, follow_redirects=False)
    assert missing.status_code == 403
    assert "console.csrf_failed" in missing.text
    wrong = rita.client.post(url, data={**form, "csrf": "A" * 32}, follow_redirects=False)
    assert wrong.status_code == 403
    mallory = env.signed_in("mallory", "reviewer")  # another session's token is no good either
    theirs = mallory.page_csrf()
    assert rita.client.post(url, data={**form, "csrf": theirs}).status_code == 403
    assert rita.client.post("/console/logout", data={}).status_code == 403
    fresh = TestClient(env.app)
    login = fresh.post("/console/login", data={"username": "rita", "password": rita.password})
    assert login.status_code == 403  # no sign-in form nonce
    with env.service.store() as uow:
        assert uow.reviews.get(env.tenant.id, ids["review"]).status is ReviewStatus.OPEN


def test_decision_requires_a_reason_and_is_audited(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-7", when=env.clock.now)
    rita = env.signed_in("rita", "reviewer")
    case = rita.client.get(f"/console/reviews/{ids['review']}")
    assert case.status_code == 200
    for text in ("loan-7", "match.below_threshold", "0.380", "0.910", "p1", "Kept keyframes"):
        assert text in case.text
    url = f"/console/reviews/{ids['review']}/decision"
    no_note = rita.post(url, {"outcome": "approve", "category": "documents_checked", "note": " "})
    assert no_note.status_code == 400
    assert "at least 3 characters" in no_note.text
    no_cat = rita.post(url, {"outcome": "approve", "category": "", "note": "fine"})
    assert no_cat.status_code == 400
    assert "choose a reason" in no_cat.text
    with env.service.store() as uow:
        assert uow.reviews.get(env.tenant.id, ids["review"]).status is ReviewStatus.OPEN
    note = "called the customer back"
    done = rita.post(url, {"outcome": "approve", "category": "documents_checked", "note": note})
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/reviews/{ids['review']}"
    closed = rita.client.get(done.headers["location"])
    assert "by <strong>rita</strong>" in closed.text
    assert "approved" in closed.text
    with env.service.store() as uow:
        item = uow.reviews.get(env.tenant.id, ids["review"])
    assert (item.status, item.reviewer) == (ReviewStatus.CLOSED, f"console:{rita.user_id}")
    events = dict(audit_kinds(env.service, env.tenant.id))
    expected = hashlib.sha256(f"documents_checked: {note}".encode()).hexdigest()
    assert events["review.closed"]["note_sha256"] == expected
    assert events["console.review_decided"] == {
        "review_id": ids["review"],
        "user_id": rita.user_id,
        "role": "reviewer",
        "outcome": "approved",
        "reason_category": "documents_checked",
    }
    assert note not in json.dumps(events)
    again = rita.post(url, {"outcome": "reject", "category": "other", "note": "second go"})
    assert again.status_code == 409
    assert "review.already_closed" in again.text


def test_non_face_cases_share_the_queue(env: Console) -> None:
    """A fallback that ended in manual review is in the same queue as the face reviews, has its
    own case page, and is decided there with a required reason (issue 6)."""
    face = add_case(env.service, env.tenant, ref="loan-face", when=env.clock.now)
    env.clock.advance(60)
    ids = add_fallback_case(env.service, env.tenant, ref="loan-sms", when=env.clock.now)
    theirs = add_fallback_case(env.service, env.other, ref="loan-other", when=env.clock.now)
    rita = env.signed_in("rita", "reviewer")
    queue = rita.client.get("/console/queue").text
    assert f"/console/reviews/{face['review']}" in queue
    assert f"/console/fallbacks/{ids['fallback']}" in queue
    assert "loan-other" not in queue
    page = rita.client.get(f"/console/fallbacks/{ids['fallback']}")
    assert page.status_code == 200
    for text in ("loan-sms", "face_refused", "fallback.bank_card_mismatch", "*******5678"):
        assert text in page.text
    assert rita.client.get(f"/console/fallbacks/{theirs['fallback']}").status_code == 404
    url = f"/console/fallbacks/{ids['fallback']}/decision"
    no_reason = rita.post(url, {"outcome": "approve", "category": "", "note": "ok"})
    assert no_reason.status_code == 400
    assert "choose a reason" in no_reason.text
    ann = env.signed_in("ann", "auditor")
    assert ann.post(url, {"outcome": "reject", "category": "other", "note": "no"}).status_code == (
        403
    )
    done = rita.post(url, {"outcome": "approve", "category": "documents_checked", "note": "ok!"})
    assert done.status_code == 303
    closed = rita.client.get(done.headers["location"])
    assert "by <strong>rita</strong>" in closed.text
    assert "approved" in closed.text
    assert f"/console/fallbacks/{ids['fallback']}" not in rita.client.get("/console/queue").text
    assert (
        f"/console/fallbacks/{ids['fallback']}"
        in rita.client.get("/console/queue?status=closed").text
    )
    again = rita.post(url, {"outcome": "reject", "category": "other", "note": "second go"})
    assert again.status_code == 409
    assert "review.already_closed" in again.text
    events = audit_kinds(env.service, env.tenant.id)
    decided = [p for k, p in events if k == "console.review_decided"]
    assert decided == [
        {
            "review_id": ids["fallback"],
            "user_id": rita.user_id,
            "role": "reviewer",
            "outcome": "approved",
            "reason_category": "documents_checked",
            "kind": "fallback",
        }
    ]
    (fallback_audit,) = [p for k, p in events if k == "fallback.decided"]
    assert fallback_audit["reviewer"] == f"console:{rita.user_id}"
    with env.service.store() as uow:
        flow = uow.fallbacks.get(env.tenant.id, ids["fallback"])
    assert (flow.status.value, flow.reviewer) == ("approved", f"console:{rita.user_id}")


def test_roles_gate_every_route(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-9", when=env.clock.now)
    rita = env.signed_in("rita", "reviewer")
    ann = env.signed_in("ann", "auditor")
    ada = env.signed_in("ada", "admin")
    for path in ("/console/audit", "/console/dashboard", "/console/subjects", "/console/users"):
        denied = rita.client.get(path)
        assert denied.status_code == 403, path
        assert "console.forbidden" in denied.text
        assert ada.client.get(path).status_code == 200, path
    assert ann.client.get("/console/users").status_code == 403
    for path in ("/console/audit", "/console/dashboard", "/console/subjects", "/console/queue"):
        assert ann.client.get(path).status_code == 200, path
    case = ann.client.get(f"/console/reviews/{ids['review']}")
    assert case.status_code == 200
    assert "can look at cases but not decide" in case.text
    url = f"/console/reviews/{ids['review']}/decision"
    form = {"outcome": "reject", "category": "other", "note": "auditor tries"}
    assert ann.post(url, form).status_code == 403
    json_client = rita.client.get("/console/audit", headers={"accept": "application/json"})
    assert json_client.status_code == 403
    assert json_client.headers["content-type"].startswith("application/problem+json")
    assert json_client.json()["code"] == "console.forbidden"
    nav = rita.client.get("/console/queue").text
    assert 'href="/console/audit"' not in nav
    assert 'href="/console/queue"' in nav
    with env.service.store() as uow:
        assert uow.reviews.get(env.tenant.id, ids["review"]).status is ReviewStatus.OPEN


def test_a_user_never_sees_another_tenants_data(env: Console) -> None:
    mine = add_case(env.service, env.tenant, ref="loan-A", when=env.clock.now)
    theirs = add_case(env.service, env.other, ref="loan-B", when=env.clock.now)
    bob = env.signed_in("bob", "admin", env.other)
    queue = bob.client.get("/console/queue").text
    assert "loan-B" in queue
    assert "loan-A" not in queue
    assert bob.client.get(f"/console/reviews/{mine['review']}").status_code == 404
    url = f"/console/reviews/{mine['review']}/decision"
    form = {"outcome": "approve", "category": "other", "note": "not mine"}
    sneaky = bob.post(url, form, csrf_from="/console/queue")
    assert sneaky.status_code == 404
    assert "loan-A" not in bob.client.get("/console/subjects?ref=loan").text
    assert bob.client.get(f"/console/subjects/{mine['subject']}").status_code == 404
    assert bob.client.get(f"/console/subjects/{theirs['subject']}").status_code == 200
    assert env.tenant.id not in bob.client.get("/console/audit").text
    assert "lender B" in bob.client.get("/console/users").text
    with env.service.store() as uow:
        assert uow.reviews.get(env.tenant.id, mine["review"]).status is ReviewStatus.OPEN


def test_subject_page_shows_consents_and_erasure(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-42", when=env.clock.now)
    from tests.storage import builders as b

    with env.service.store() as uow:
        uow.consents.add(b.consent(env.tenant.id, ids["subject"]))
        uow.commit()
    env.service.erase_subject(env.tenant, ids["subject"])
    ann = env.signed_in("ann", "auditor")
    found = ann.client.get("/console/subjects?ref=loan-4")
    assert f"/console/subjects/{ids['subject']}" in found.text
    page = ann.client.get(f"/console/subjects/{ids['subject']}")
    assert page.status_code == 200
    assert "subject.erased" in page.text
    assert "face_verification" in page.text
    assert "365 days" in page.text


def test_audit_log_pages_and_verifies(env: Console) -> None:
    for n in range(55):  # each erasure is one audit event: 55 + the sign-in's make 2 pages
        ids = add_case(env.service, env.tenant, ref=f"r{n}", when=env.clock.now)
        env.service.erase_subject(env.tenant, ids["subject"])
    ann = env.signed_in("ann", "auditor")
    first = ann.client.get("/console/audit")
    assert "page 1 of 2" in first.text
    assert "console.signed_in" in first.text
    second = ann.client.get("/console/audit?page=2")
    assert "tenant.created" in second.text
    assert "page 2 of 2" in second.text
    verified = ann.post("/console/audit/verify", {})
    assert verified.status_code == 200
    assert "Chain intact" in verified.text
    assert "console.audit_verified" in [k for k, _ in audit_kinds(env.service, env.tenant.id)]


def _cells(html: str, day: str) -> list[str]:
    row = re.search(rf"<th scope=\"row\">{day}</th>(.*?)</tr>", html, re.S)
    assert row, day
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def test_dashboard_numbers_match_hand_counts(env: Console) -> None:
    today = env.clock.now
    yesterday = today - timedelta(days=1)
    # hand-counted: yesterday 2 pass, 1 retry (liveness + quality), 1 fallback (limit.locked);
    # today 1 pass, 1 review (liveness.spoof_suspected); the other tenant's check is not ours
    rows = [
        (yesterday, Decision.PASS, ("match.above_threshold",)),
        (yesterday, Decision.PASS, ("match.above_threshold",)),
        (yesterday, Decision.RETRY, ("liveness.challenge_failed", "quality.too_dark")),
        (yesterday, Decision.FALLBACK, ("limit.locked",)),
        (today, Decision.PASS, ("match.above_threshold",)),
        (today, Decision.REVIEW, ("liveness.spoof_suspected",)),
    ]
    for n, (when, decision, reasons) in enumerate(rows):
        add_case(
            env.service, env.tenant, ref=f"d{n}", when=when, decision=decision, reasons=reasons
        )
    locked = ("limit.locked",)
    add_case(env.service, env.other, ref="x", when=today, decision=Decision.RETRY, reasons=locked)
    ann = env.signed_in("ann", "auditor")
    page = ann.client.get("/console/dashboard?days=7")
    assert page.status_code == 200
    html = page.text
    # columns: pass, retry, review, fallback, total, pass rate, attack signals, lock-outs
    day1, day2 = yesterday.date().isoformat(), today.date().isoformat()
    assert _cells(html, day1) == ["2", "1", "0", "1", "4", "50.0%", "1", "1"]
    assert _cells(html, day2) == ["1", "0", "1", "0", "2", "50.0%", "1", "0"]
    empty_day = (today - timedelta(days=3)).date().isoformat()
    assert _cells(html, empty_day) == ["0", "0", "0", "0", "0", "—", "0", "0"]
    kpis = re.findall(r'<span class="num">(.*?)</span>', html)
    assert kpis == ["6", "50.0%", "1", "2", "1"]
    assert html.count('role="img"') == 5
    assert "liveness.challenge_failed" in html
    assert "quality.too_dark" in html


def test_admin_adds_users_and_a_demo_needs_a_photo(env: Console) -> None:
    ada = env.signed_in("ada", "admin")
    made = ada.post("/console/users", {"username": "newbie", "role": "reviewer"})
    assert made.status_code == 200
    password = re.search(r'<code class="secret">([^<]+)</code>', made.text)
    assert password
    assert ada.client.get("/console/users").text.count("secret") == 0  # shown once
    newbie = Staff(TestClient(env.app), "", "newbie", password.group(1))
    assert newbie.sign_in().status_code == 303
    taken = ada.post("/console/users", {"username": "newbie", "role": "auditor"})
    assert taken.status_code == 409
    bad = ada.post("/console/users", {"username": "No Spaces!", "role": "reviewer"})
    assert bad.status_code == 400
    no_photo = ada.post("/console/demo", {})
    assert no_photo.status_code == 400  # a demo needs the photo of the person at the camera
    reviewer = env.signed_in("rita", "reviewer")
    assert reviewer.post("/console/demo", {}).status_code == 403


def test_admin_starts_a_demo_capture_session(env: Console) -> None:
    ada = env.signed_in("ada", "admin")
    photo = lfw("Aaron_Peirsol", 1).read_bytes()
    token = ada.page_csrf()
    started = ada.client.post(
        "/console/demo",
        data={"csrf": token, "level": "low"},
        files={"reference": ("me.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    where = started.headers["location"]
    assert where.startswith("/capture/")
    page = ada.client.get(where)  # the borrower's page opens from that link
    assert page.status_code == 200
    assert "console.demo_started" in [k for k, _ in audit_kinds(env.service, env.tenant.id)]
    forged = ada.client.post(
        "/console/demo",
        data={"csrf": "forged", "level": "low"},
        files={"reference": ("me.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    bad_level = ada.client.post(
        "/console/demo",
        data={"csrf": ada.page_csrf(), "level": "extreme"},
        files={"reference": ("me.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )
    assert bad_level.status_code == 400


def test_production_cookies_are_secure(env: Console) -> None:
    env.service.production = True
    app = create_app(env.service)
    _user, password = app.state.console.auth.create_user(env.tenant.id, "sec", "reviewer")
    client = TestClient(app, base_url="https://testserver")
    form = client.get("/console/login")
    resp = client.post(
        "/console/login",
        data={"username": "sec", "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Secure" in _set_cookie(resp)
    assert client.get("/console/queue").status_code == 200


def test_admin_disables_resets_and_changes_roles(env: Console) -> None:
    ada = env.signed_in("ada", "admin")
    rita = env.signed_in("rita", "reviewer")
    url = f"/console/users/{rita.user_id}"
    assert rita.post(url, {"action": "disable"}, csrf_from="/console/queue").status_code == 403
    off = ada.post(url, {"action": "disable"})
    assert off.status_code == 200
    assert "rita: disable done." in off.text
    assert rita.client.get("/console/queue", follow_redirects=False).status_code == 303
    assert rita.sign_in().status_code == 401  # disabled
    assert ada.post(url, {"action": "enable"}).status_code == 200
    assert rita.sign_in().status_code == 303
    reset = ada.post(url, {"action": "reset"})
    new_password = re.search(r'<code class="secret">([^<]+)</code>', reset.text)
    assert new_password
    assert rita.client.get("/console/queue", follow_redirects=False).status_code == 303
    assert rita.sign_in().status_code == 401  # the old password is gone
    assert rita.sign_in(new_password.group(1)).status_code == 303
    assert rita.client.get("/console/audit").status_code == 403
    assert ada.post(url, {"action": "role", "role": "auditor"}).status_code == 200
    assert rita.sign_in(new_password.group(1)).status_code == 303
    assert rita.client.get("/console/audit").status_code == 200
    assert ada.post(url, {"action": "role", "role": "boss"}).status_code == 400
    assert ada.post(url, {"action": "explode"}).status_code == 400
    assert ada.post(f"/console/users/{ada.user_id}", {"action": "disable"}).status_code == 400
    bob = env.signed_in("bob", "admin", env.other)  # another tenant's admin: not found
    assert bob.post(url, {"action": "disable"}).status_code == 404
    changes = [p for k, p in audit_kinds(env.service, env.tenant.id) if k == "console.user_changed"]
    assert [c["action"] for c in changes] == ["disable", "enable", "reset", "role"]
    assert changes[-1] == {
        "user_id": rita.user_id,
        "by_user_id": ada.user_id,
        "action": "role",
        "role": "auditor",
    }


def test_every_template_text_has_a_zh_cn_translation() -> None:
    from importlib import resources

    from shiren.api.console_i18n import ZH

    folder = resources.files("shiren.api").joinpath("console_templates")
    wanted: set[str] = set()
    for page in folder.iterdir():
        text = page.read_text("utf-8")
        wanted |= {
            m.replace("\\'", "'") for m in re.findall(r"\btf?\('((?:[^'\\]|\\.)*)'[,)]", text)
        }
    from shiren.api.console_web import _STATUS, NAV
    from shiren.service.console import REASON_CATEGORIES

    wanted |= {label for _, label, _ in NAV}
    wanted |= set(REASON_CATEGORIES.values()) | {heading for _, heading in _STATUS.values()}
    assert len(wanted) > 60
    assert sorted(wanted - set(ZH)) == []


def test_language_switch(env: Console) -> None:
    rita = env.signed_in("rita", "reviewer")
    switched = rita.client.get(
        "/console/lang?to=zh-CN&back=/console/queue%3Fstatus%3Dclosed", follow_redirects=False
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console/queue?status=closed"
    page = rita.client.get("/console/queue")
    assert '<html lang="zh-CN">' in page.text
    assert "复核队列" in page.text
    assert ">English</a>" in page.text
    evil = rita.client.get("/console/lang?to=xx&back=https://evil.example/", follow_redirects=False)
    assert evil.headers["location"] == "/console"
    assert '<html lang="en">' in rita.client.get("/console/queue").text


def test_a_case_enrolled_from_the_id_card_shows_the_cards_checks(env: Console) -> None:
    ids = add_case(env.service, env.tenant, ref="loan-card", when=env.clock.now)
    checks = [
        {"code": "idcard.number_invalid", "passed": True},
        {"code": "idcard.expired", "passed": None},
        {"code": "idcard.recapture_suspected", "passed": False},
    ]
    with env.service.store() as uow:
        uow.references.add(
            b.reference(env.tenant.id, ids["subject"], card_checks=json.dumps(checks))
        )
        uow.commit()
    rita = env.signed_in("rita", "reviewer")
    case = rita.client.get(f"/console/reviews/{ids['review']}")
    assert case.status_code == 200
    section = case.text[case.text.index("Checks of the ID card") :]
    for text in ("idcard.number_invalid", "idcard.recapture_suspected", "not applicable"):
        assert text in section
    assert section.index("idcard.recapture_suspected") < section.index("failed")
    plain = add_case(env.service, env.tenant, ref="loan-photo", when=env.clock.now)
    other = rita.client.get(f"/console/reviews/{plain['review']}")
    assert "Checks of the ID card" not in other.text

"""The review console in real headless Chromium: a reviewer signs in, sees a case that the real
models sent to review, approves it with a reason, and the audit log shows ``review.closed``; an
auditor cannot decide.  Every screen is saved to ``out/screenshots/``.

The case is produced through the service, as in production: enrolment with a reference photo
of a *different* person (LFW) and a capture assembled from the live recording, with a review
margin so wide that any live non-match goes to review (``RetryRules(review_margin=2.0)``, as
in tests/service/test_reviews.py).  The tenant's policy keeps three keyframes of a check sent to
review (issue 17), so the reviewer sees them (each view audited) and may give an inspection-based
reason.  The dashboard's history (earlier days) is written straight into storage so its charts
have something to show; those rows are test data, not measurements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shiren.api.app import create_app
from shiren.domain.decisions import RetryRules
from shiren.domain.entities import Decision, utcnow
from shiren.domain.review_evidence import ReviewEvidencePolicy
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import add_case, audit_kinds
from tests.conftest import lfw
from tests.e2e.console_support import desktop_chromium, live_server, shoot
from tests.service.fixtures import engine, recording
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording

__all__ = ["desktop_chromium", "engine", "recording"]  # fixtures used by name

REF = "loan-2026-0042"


@dataclass
class World:
    service: ShirenService
    app: Any
    tenant: Any
    passwords: dict[str, str]
    review_id: str
    other_review_id: str


def _history(service: ShirenService, tenant: Any) -> None:
    """Ten earlier days of checks (a fixed pattern) so the dashboard's charts show a trend."""
    now = utcnow()
    for day in range(1, 11):
        when = now - timedelta(days=day, hours=1)
        mix = [(Decision.PASS, ("match.above_threshold",))] * (6 + day % 4)
        mix.append((Decision.RETRY, ("quality.too_dark",)))
        if day % 3 == 0:
            mix.append((Decision.RETRY, ("liveness.challenge_failed", "quality.backlight")))
        if day % 4 == 1:
            mix.append((Decision.FALLBACK, ("limit.locked",)))
        if day == 5:
            mix.append((Decision.REVIEW, ("liveness.replay_suspected",)))
        for n, (decision, reasons) in enumerate(mix):
            add_case(
                service,
                tenant,
                ref=f"hist-{day}-{n}",
                when=when,
                decision=decision,
                reasons=reasons,
            )


@pytest.fixture
def world(tmp_path: Path, engine: Engine, recording: Recording) -> Iterator[World]:
    sql = make_engine(f"sqlite:///{tmp_path / 'e2e.db'}")
    migrate(sql)
    service = ShirenService(
        store=SqlStore(sql),
        keys=ServiceKeys.generate(),
        engine=engine,
        draw=recording.drawer(),
        detect_replays=False,  # sessions assembled from one recording
        rules=RetryRules(review_margin=2.0),  # any live non-match goes to review
    )
    tenant, _ = service.create_tenant("Demo Lender")
    service.recorder.evidence = ReviewEvidencePolicy(keyframes=3, days=7)
    _history(service, tenant)
    _, view = service.enrol(
        tenant,
        external_ref=REF,
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=lfw("Jeb_Bush", 1).read_bytes(),
    )
    frames, times = recording.answer(view.challenge)
    check = service.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert check.check.decision.value == "review", check.check.reasons
    (item,) = [r for r in service.list_reviews(tenant) if r["check_id"] == check.check.id]
    (other,) = [r for r in service.list_reviews(tenant) if r["check_id"] != check.check.id]
    app = create_app(service)
    auth = app.state.console.auth
    passwords = {name: auth.create_user(tenant.id, name, role)[1] for name, role in (
        ("rita", "reviewer"), ("ann", "auditor"), ("ada", "admin"))}  # fmt: skip
    try:
        yield World(service, app, tenant, passwords, item["id"], other["id"])
    finally:
        sql.dispose()


def _sign_in(browser: Any, base: str, name: str, password: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.goto(f"{base}/console/login")
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def test_reviewer_approves_in_the_browser_and_auditor_cannot_decide(
    desktop_chromium: Any, world: World
) -> None:
    browser = desktop_chromium
    from playwright.sync_api import expect

    with live_server(world.app) as base:
        case_url = f"{base}/console/reviews/{world.review_id}"
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.goto(f"{base}/console/queue")
        assert "/console/login" in page.url
        shoot(page, "01-sign-in")
        page.get_by_label("Username", exact=True).fill("rita")
        page.get_by_label("Password", exact=True).fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("username or password is wrong")
        shoot(page, "02-sign-in-failed")

        page = _sign_in(browser, base, "rita", world.passwords["rita"])
        assert page.url.endswith("/console/queue")
        expect(page.get_by_role("cell", name=REF, exact=True)).to_be_visible()
        shoot(page, "03-queue")
        page.get_by_role("link", name=f"Open case {REF}").click()
        expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
        expect(page.get_by_text("match.below_threshold")).to_be_visible()
        frames = page.locator("ul.keyframes img")
        expect(frames).to_have_count(3)
        for i in range(3):  # lazy images: each one fetched (and audited) once it is seen
            frames.nth(i).scroll_into_view_if_needed()
            handle = frames.nth(i).element_handle()
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=handle)
        page.evaluate("window.scrollTo(0, 0)")
        shoot(page, "04-case")
        page.get_by_label("Approve", exact=True).check()
        page.get_by_label("Reason", exact=True).select_option("same_person")
        page.get_by_label(re.compile("^Explain")).fill(
            "Live capture; on inspection the same person as the reference photo."
        )
        shoot(page, "05-case-decision-filled")
        page.get_by_role("button", name="Record decision").click()
        expect(page.get_by_text("by rita")).to_be_visible()
        shoot(page, "06-case-approved")
        page.goto(f"{base}/console/audit")
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        shoot(page, "07-reviewer-forbidden")

        auditor = _sign_in(browser, base, "ann", world.passwords["ann"])
        auditor.goto(f"{base}/console/audit")
        expect(auditor.get_by_role("cell", name="review.closed", exact=True)).to_be_visible()
        shoot(auditor, "08-audit-log")
        auditor.get_by_role("button", name="Verify chain").click()
        expect(auditor.get_by_role("status")).to_contain_text("Chain intact")
        shoot(auditor, "09-audit-verified")
        auditor.goto(f"{base}/console/queue?status=closed")
        shoot(auditor, "10-queue-closed-auditor")
        auditor.goto(case_url)
        expect(auditor.get_by_text("by rita")).to_be_visible()  # the decision, attributed
        open_url = f"{base}/console/reviews/{world.other_review_id}"  # a case still open
        auditor.goto(open_url)
        expect(auditor.get_by_text("can look at cases but not decide")).to_be_visible()
        assert auditor.get_by_role("button", name="Record decision").count() == 0
        shoot(auditor, "11-case-auditor")
        token = auditor.locator('input[name="csrf"]').first.input_value()
        direct = auditor.request.post(
            f"{open_url}/decision",
            form={"csrf": token, "outcome": "reject", "category": "other", "note": "auditor"},
        )
        assert direct.status == 403
        auditor.goto(f"{base}/console/dashboard")
        expect(auditor.locator("svg.chart")).to_have_count(5)
        shoot(auditor, "12-dashboard")
        auditor.get_by_role("link", name="中文").click()
        expect(auditor.get_by_role("heading", name="数据看板")).to_be_visible()
        shoot(auditor, "13-dashboard-zh-CN")
        auditor.goto(f"{base}/console/queue?status=open")
        auditor.get_by_role("link", name=re.compile("打开案件")).first.click()
        shoot(auditor, "14-case-zh-CN")
        auditor.get_by_role("link", name="English").click()
        auditor.goto(f"{base}/console/subjects?ref=loan-2026")
        shoot(auditor, "15-subjects-search")
        auditor.get_by_role("link", name=REF).click()
        expect(
            auditor.get_by_role("cell", name="credit_identity_verification", exact=True)
        ).to_be_visible()
        shoot(auditor, "16-subject")

        admin = _sign_in(browser, base, "ada", world.passwords["ada"])
        admin.goto(f"{base}/console/users")
        admin.get_by_label("Username", exact=True).fill("new.reviewer")
        admin.get_by_role("button", name=re.compile("Create")).click()
        expect(admin.locator("code.secret")).to_be_visible()
        shoot(admin, "17-users")
        admin.goto(f"{base}/console/queue")
        admin.get_by_label("Reference photo of the person at the camera").set_input_files(
            str(lfw("Aaron_Peirsol", 1))
        )
        admin.get_by_role("button", name="Start a demo session").click()
        admin.wait_for_url(re.compile(r"/capture/"))  # the borrower's page, for that photo
        shoot(admin, "18-demo-capture-page")

    kinds = [k for k, _ in audit_kinds(world.service, world.tenant.id)]
    assert kinds.count("review.closed") == 1
    assert "console.review_decided" in kinds
    assert kinds.count("console.evidence_viewed") >= 3  # the reviewer's views, one line each
    with world.service.store() as uow:
        item = uow.reviews.get(world.tenant.id, world.review_id)
    assert item is not None
    assert item.outcome is not None
    assert item.outcome.value == "approved"
    with world.service.store() as uow:  # decided: the kept keyframes are gone
        assert uow.evidence.list_for_check(world.tenant.id, item.check_id) == []
    with world.service.store() as uow:
        still = uow.reviews.get(world.tenant.id, world.other_review_id)
    assert still is not None
    assert still.outcome is None  # the auditor's POST changed nothing

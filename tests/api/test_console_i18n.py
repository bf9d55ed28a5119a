"""The console in 中文 (issue 17): no English left on any page a staff member sees in zh-CN —
neither in the templates (every text goes through ``t()``) nor in what Python builds (reason
categories, chart titles, flash messages, form errors, error pages, the sign-in error).

What may stay as stored is listed in :func:`_allowed`: enum values (``open``, ``reviewer``…),
codes (inside ``<code>``, or dotted like ``match.below_threshold``), acronyms the Chinese texts
use too (API, MAC, UTC), English texts marked ``lang="en"`` (a reason shown in both languages),
and the test's own names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from shiren.api.app import create_app
from shiren.domain.console import ConsoleRole, ConsoleUserStatus
from shiren.domain.entities import (
    Decision,
    ReviewOutcome,
    ReviewStatus,
    SessionPurpose,
    SubjectStatus,
)
from shiren.domain.fallback import FallbackStatus, FallbackTrigger, StepKind
from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import Staff, add_case, add_fallback_case
from tests.api.test_console import Console
from tests.service.fixtures import FakeClock
from tests.service.support import Recording
from tests.storage import builders as b

_SKIPPED_TAGS = {"code", "script", "style"}
_SCANNED_ATTRS = ("aria-label", "alt", "title", "placeholder")
_VOID = {"meta", "link", "input", "br", "img", "rect", "line", "circle"}
"""Tags without an end tag in these pages (the SVG shapes close themselves)."""
_WORD = re.compile(r"[A-Za-z][A-Za-z_.*'’-]*[A-Za-z*]")
_CODE = re.compile(r"[a-z_]+(\.[a-z_*]+)+")


class _VisibleText(HTMLParser):
    """Text a person sees or hears (screen-reader labels too), minus codes, payloads, secrets
    and passages marked as English."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._stack: list[bool] = []

    def _skipping(self) -> bool:
        return any(self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        skip = (
            tag in _SKIPPED_TAGS
            or found.get("lang") == "en"
            or "payload" in classes
            or "secret" in classes
        )
        if not self._skipping() and not skip:
            self.parts += [found[a] or "" for a in _SCANNED_ATTRS if a in found]
        if tag not in _VOID:
            self._stack.append(skip)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if not self._skipping():
            self.parts += [found[a] or "" for a in _SCANNED_ATTRS if a in found]

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping():
            self.parts.append(data)


def _allowed() -> set[str]:
    values: set[str] = {"shiren", "lender", "UTC", "API", "MAC", "a-z"}
    for enum in (
        ReviewStatus,
        ReviewOutcome,
        Decision,
        SessionPurpose,
        SubjectStatus,
        ConsoleRole,
        ConsoleUserStatus,
        FallbackStatus,
        FallbackTrigger,
        StepKind,
    ):
        values |= {str(m.value) for m in enum}
    values |= {"low", "normal", "high", "blink", "face_verification"}  # levels, the fixture's
    return values


def english_words(html: str) -> list[str]:
    """The Latin-script words of ``html`` a zh-CN reader would see, not allowed as stored."""
    parser = _VisibleText()
    parser.feed(html)
    text = " ".join(parser.parts)
    text = re.sub(r"\S*\d\S*", " ", text)  # ids, dates, numbers, the test's names (digits)
    allowed = _allowed()
    return sorted({w for w in _WORD.findall(text) if w not in allowed and not _CODE.fullmatch(w)})


def test_every_template_text_goes_through_the_translator() -> None:
    """Literal English between the tags of a template would show in 中文 mode."""
    folder = resources.files("shiren.api").joinpath("console_templates")
    found: dict[str, list[str]] = {}
    for page in sorted(folder.iterdir(), key=lambda p: p.name):
        source = page.read_text("utf-8")
        stripped = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", source, flags=re.S)
        words = english_words(stripped)
        if words:
            found[page.name] = words
    assert found == {}


@pytest.fixture
def env(
    tmp_path: Path, engine: Engine, recording: Recording, clock: FakeClock
) -> Iterator[Console]:
    clock.now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    sql = make_engine(f"sqlite:///{tmp_path / 'console.db'}")
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


def _zh(person: Staff) -> None:
    switched = person.client.get("/console/lang?to=zh-CN&back=/console/queue")
    assert switched.status_code in {200, 303}


def _check(pages: dict[str, str]) -> None:
    left = {name: words for name, html in pages.items() if (words := english_words(html))}
    assert left == {}


def test_admin_pages_in_zh_cn_have_no_english_left(env: Console) -> None:
    face = add_case(env.service, env.tenant, ref="loan-1", when=env.clock.now)
    closed = add_case(env.service, env.tenant, ref="loan-2", when=env.clock.now)
    flow = add_fallback_case(env.service, env.tenant, ref="loan-3", when=env.clock.now)
    with env.service.store() as uow:
        uow.consents.add(b.consent(env.tenant.id, face["subject"], retention_days=1))
        uow.commit()
    ada = env.staff("ada1", "admin")
    _zh(ada)
    failed = ada.sign_in("not the password")
    assert failed.status_code == 401
    assert ada.sign_in().status_code == 303
    pages = {"sign-in failed": failed.text}
    for path in (
        "/console/queue",
        "/console/queue?status=in_review",
        f"/console/reviews/{face['review']}",
        f"/console/fallbacks/{flow['fallback']}",
        "/console/subjects?ref=loan",
        "/console/subjects?ref=nobody9",
        f"/console/subjects/{face['subject']}",
        "/console/audit",
        "/console/dashboard?days=7",
        "/console/users",
        f"/console/reviews/{'0' * 32}",
    ):
        pages[path] = ada.client.get(path).text
    url = f"/console/reviews/{closed['review']}/decision"
    pages["no reason"] = ada.post(url, {"outcome": "reject", "category": "", "note": "x"}).text
    pages["short note"] = ada.post(
        url, {"outcome": "reject", "category": "other", "note": " "}
    ).text
    assert ada.post(
        url, {"outcome": "reject", "category": "other", "note": "not them"}
    ).status_code == (303)
    pages["closed case"] = ada.client.get(f"/console/reviews/{closed['review']}").text
    pages["verified"] = ada.post("/console/audit/verify", {}).text
    pages["user added"] = ada.post("/console/users", {"username": "rev2", "role": "reviewer"}).text
    pages["username taken"] = ada.post(
        "/console/users", {"username": "rev2", "role": "reviewer"}
    ).text
    pages["bad username"] = ada.post("/console/users", {"username": "No!", "role": "admin"}).text
    rita = env.staff("rita1", "reviewer")
    url = f"/console/users/{rita.user_id}"
    pages["disabled"] = ada.post(url, {"action": "disable"}).text
    pages["reset"] = ada.post(url, {"action": "reset"}).text
    _check(pages)


def test_reviewer_pages_in_zh_cn_have_no_english_left(env: Console) -> None:
    face = add_case(env.service, env.tenant, ref="loan-7", when=env.clock.now)
    rita = env.staff("rita1", "reviewer")
    _zh(rita)
    assert rita.sign_in().status_code == 303
    pages = {
        "queue": rita.client.get("/console/queue").text,
        "case": rita.client.get(f"/console/reviews/{face['review']}").text,
        "forbidden": rita.client.get("/console/users").text,
    }
    _check(pages)

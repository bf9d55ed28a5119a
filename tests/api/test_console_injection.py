"""The injection check's evidence on the console's case page (issue 17), over HTTP on SQLite and
PostgreSQL: read from the check's own ``check.decided`` audit line, shown to reviewers only —
mode, effect, the findings, every feature's value against its line; numbers and codes, never a
camera label — each view audited (ids only), in English and in 中文."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shiren.api.app import create_app
from shiren.service.app import Engine, ShirenService
from shiren.service.console_injection import parse_injection
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import add_case, audit_kinds
from tests.api.test_api import _database
from tests.api.test_console import Console
from tests.api.test_console_i18n import english_words
from tests.service.fixtures import FakeClock
from tests.service.support import Recording

VIEWED = "console.injection_viewed"
BLOCK: dict[str, Any] = {
    "mode": "shadow",
    "effect": "none",
    "source": "page",
    "started_from": "fetch",
    "suspected": True,
    "review_suggested": False,
    "score": 2.1,
    "sub_kinds": ["timing.upload_too_early"],
    "features": {
        "upload_deficit_s": {"value": 1.8731, "threshold": 0.25, "fired": True, "decisive": True},
        "jitter_ms": {"value": 0.7481, "threshold": 0.05, "fired": False, "decisive": True},
        "grid_foreign": {"value": 5.8812, "threshold": 10.4, "fired": False, "decisive": False},
        "flash_response": {"value": None, "threshold": None, "fired": False, "decisive": False},
    },
    "details": {"frames": 112, "virtual_camera_label": False, "median_interval_ms": 80.0},
}


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


def _case(env: Console, ref: str, block: dict[str, Any] | None) -> dict[str, str]:
    """A review case whose check's audit line carries ``block`` (None: not measured)."""
    ids = add_case(env.service, env.tenant, ref=ref, when=env.clock.now)
    payload = {"check_id": ids["check"], "decision": "review", "injection": block}
    with env.service.store() as uow:
        append_audit(
            uow, env.service.keys.audit_key, env.tenant.id, "check.decided", ids["subject"],
            payload, env.clock.now,
        )  # fmt: skip
        uow.commit()
    return ids


def _viewed(env: Console) -> list[dict[str, Any]]:
    return [p for kind, p in audit_kinds(env.service, env.tenant.id) if kind == VIEWED]


def test_a_reviewer_sees_the_features_against_their_lines_and_the_view_is_audited(
    env: Console,
) -> None:
    ids = _case(env, "loan-1", BLOCK)
    rita = env.signed_in("rita1", "reviewer")
    page = rita.client.get(f"/console/reviews/{ids['review']}")
    assert page.status_code == 200
    html = page.text
    assert "Injection check" in html
    for code in ("shadow", "fetch", "page", "timing.upload_too_early", "upload_deficit_s"):
        assert f"<code>{code}</code>" in html, code
    assert "1.873" in html  # the value...
    assert "0.25" in html  # ... against its line
    assert "decisive evidence" in html
    assert "not judged" in html  # flash_response: no line on this upload
    viewed = _viewed(env)
    assert len(viewed) == 1
    assert set(viewed[0]) == {"user_id", "role", "review_id", "check_id"}  # ids only
    assert viewed[0]["review_id"] == ids["review"]
    assert viewed[0]["check_id"] == ids["check"]
    assert viewed[0]["role"] == "reviewer"


def test_in_chinese_nothing_is_left_in_english(env: Console) -> None:
    ids = _case(env, "loan-1", BLOCK)
    rita = env.signed_in("rita1", "reviewer")
    switched = rita.client.get("/console/lang?to=zh-CN&back=/console/queue")
    assert switched.status_code in {200, 303}
    html = rita.client.get(f"/console/reviews/{ids['review']}").text
    assert "注入攻击检测" in html
    assert "各项特征与其判定线" in html
    assert english_words(html) == []


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_others_are_told_only_reviewers_may_look(env: Console, role: str) -> None:
    ids = _case(env, "loan-1", BLOCK)
    person = env.signed_in("olga1", role)
    html = person.client.get(f"/console/reviews/{ids['review']}").text
    assert "Only reviewers may look at the injection check of a case." in html
    assert "upload_deficit_s" not in html
    assert _viewed(env) == []


def test_a_check_without_the_measure_says_so_and_writes_nothing(env: Console) -> None:
    ids = _case(env, "loan-1", None)
    plain = add_case(env.service, env.tenant, ref="loan-2", when=env.clock.now)  # no line
    rita = env.signed_in("rita1", "reviewer")
    for review in (ids["review"], plain["review"]):
        html = rita.client.get(f"/console/reviews/{review}").text
        assert "Not measured for this check" in html
    assert _viewed(env) == []


def test_another_checks_line_at_the_same_moment_is_not_shown(env: Console) -> None:
    first = _case(env, "loan-1", None)
    with env.service.store() as uow:  # the same subject and moment, another check's line
        append_audit(
            uow, env.service.keys.audit_key, env.tenant.id, "check.decided", first["subject"],
            {"check_id": "another", "injection": BLOCK}, env.clock.now,
        )  # fmt: skip
        uow.commit()
    rita = env.signed_in("rita1", "reviewer")
    html = rita.client.get(f"/console/reviews/{first['review']}").text
    assert "Not measured for this check" in html


def test_a_damaged_block_renders_codes_only() -> None:
    """A stored row must always render, and nothing but codes and numbers reaches the page."""
    seen = parse_injection(
        {
            "mode": "<script>alert(1)</script>",
            "effect": "review",
            "sub_kinds": "timing.upload_too_early",  # not a list
            "features": {
                "Free Text!": {"value": 1.0},
                "jitter_ms": {"value": "1", "threshold": True, "fired": "yes"},
            },
            "details": {"frames": True, "camera_label": "OBS Virtual Camera"},
        }
    )
    assert seen.mode == "—"
    assert seen.effect == "review"
    assert seen.sub_kinds == ()
    assert [f.name for f in seen.features] == ["jitter_ms"]
    assert (seen.features[0].value, seen.features[0].threshold) == (None, None)
    assert seen.features[0].fired is False
    assert seen.frames is None
    assert seen.virtual_camera_label is None
    assert "OBS" not in repr(seen)

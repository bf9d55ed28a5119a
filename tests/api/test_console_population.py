"""The dashboard's "Threshold on your population" panel over HTTP (SQLite, fake models): the
numbers of ``shiren calibrate --gallery`` for the signed-in tenant, "not enough enrolled faces
yet" for a small gallery, 中文 texts, and the in-process cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shiren.api.app import create_app
from shiren.api.console_population import panel_view
from shiren.eval.population import CACHE, MIN_SUBJECTS
from shiren.service.app import ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import Staff, staff
from tests.service.gallery_support import FAKE_THRESHOLD, bind_face, fake_engine, random_faces


class Env:
    def __init__(self, service: ShirenService) -> None:
        self.service = service
        self.app = create_app(service)
        self.tenant, _ = service.create_tenant("lender A")

    def enrol(self, n: int, seed: int) -> None:
        for face in random_faces(n, seed):
            bind_face(self.service, self.tenant, face, datetime.now(UTC))

    def signed_in(self, name: str, role: str) -> Staff:
        person = staff(self.app, self.app.state.console, self.tenant, name, role)
        assert person.sign_in().status_code == 303
        return person


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    sql = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(sql)
    service = ShirenService(store=SqlStore(sql), keys=ServiceKeys.generate(), engine=fake_engine())
    CACHE.clear()
    try:
        yield Env(service)
    finally:
        CACHE.clear()
        sql.dispose()


def _panel(html: str) -> str:
    found = re.search(r'<section class="card population".*?</section>', html, re.S)
    assert found, html[-2000:]
    return found.group(0)


def _row(panel: str, header: str) -> str:
    found = re.search(rf"<th scope=\"row\">{re.escape(header)}.*?</th><td>(.*?)</td>", panel)
    assert found, panel
    return found.group(1)


def test_panel_shows_the_numbers_for_the_tenant(env: Env) -> None:
    env.enrol(80, seed=1)  # 3,160 pairs: enough for 1e-3 (3,000), not for 1e-4 (30,000)
    ann = env.signed_in("ann", "auditor")
    page = ann.client.get("/console/dashboard")
    assert page.status_code == 200
    panel = _panel(page.text)
    assert "Threshold on your population" in panel
    assert _row(panel, "Enrolled subjects") == "80"
    assert _row(panel, "Impostor pairs used") == "3,160"
    assert _row(panel, "Probable duplicates excluded") == "0"
    assert _row(panel, "Current threshold").startswith(f"{FAKE_THRESHOLD:.4f}")
    assert "95% CI [" in _row(panel, "False match rate at the current threshold")
    first = _row(panel, "Threshold for a false match rate of")
    assert "insufficient" not in first
    assert panel.count("<strong>insufficient</strong>") == 1  # the 1e-4 row


def test_small_gallery_shows_not_enough_faces(env: Env) -> None:
    env.enrol(MIN_SUBJECTS - 1, seed=2)
    ada = env.signed_in("ada", "admin")
    panel = _panel(ada.client.get("/console/dashboard").text)
    assert "Not enough enrolled faces yet" in panel
    assert f"({MIN_SUBJECTS - 1} / {MIN_SUBJECTS})" in panel
    assert "<table" not in panel


def test_panel_in_chinese(env: Env) -> None:
    env.enrol(3, seed=3)
    ada = env.signed_in("ada", "admin")
    ada.client.get("/console/lang?to=zh-CN&back=/console/dashboard")
    panel = _panel(ada.client.get("/console/dashboard").text)
    assert "基于本机构客群的阈值" in panel
    assert "已注册的人脸还不够多" in panel


def test_panel_is_cached_for_a_few_minutes(env: Env) -> None:
    env.enrol(60, seed=4)
    ann = env.signed_in("ann", "auditor")
    assert _row(_panel(ann.client.get("/console/dashboard").text), "Enrolled subjects") == "60"
    env.enrol(5, seed=5)
    assert _row(_panel(ann.client.get("/console/dashboard").text), "Enrolled subjects") == "60"
    CACHE.clear()
    assert _row(_panel(ann.client.get("/console/dashboard").text), "Enrolled subjects") == "65"


def test_panel_view_of_an_empty_gallery() -> None:
    report: dict[str, Any] = {
        "network": "n",
        "n_subjects": 0,
        "min_subjects": MIN_SUBJECTS,
        "enough": False,
        "report": None,
    }
    assert panel_view(report)["state"] == "too_few"


def test_a_failure_leaves_the_dashboard_up(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(service: ShirenService, tenant_id: str) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr("shiren.api.console_population.cached_population_report", broken)
    ann = env.signed_in("ann", "auditor")
    page = ann.client.get("/console/dashboard")
    assert page.status_code == 200
    assert "Not available right now" in _panel(page.text)
    assert "boom" not in page.text

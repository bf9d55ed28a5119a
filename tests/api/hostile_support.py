"""A live, seeded shiren for the hostile-input and security tests (issue 7).

The real app (real models, SQLite file, production keys) served by uvicorn with the settings
``shiren serve`` uses (:func:`shiren.api.server.server_options`) on a free loopback port, in a
thread: requests go through a real HTTP parser, so a hang is a client timeout, not a stuck test.

Seeded so a fuzzer reaches past 404s: tenant A with an enrolled subject and its open session, a
decided check, an open review; tenant B (another lender) with its own key; a signed-in console
admin of tenant A.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.routing import Mount, Route

from shiren.api.app import create_app
from shiren.api.server import server_options
from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.api.console_support import Staff, add_case, staff
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, OTHER_ID, Recording

REQUEST_TIMEOUT_S = 30.0  # a request that takes longer is a hang (real models answer in < 5 s)


@dataclass
class Live:
    """The running service and what was seeded into it."""

    base_url: str
    app: Any
    service: ShirenService
    clock: FakeClock
    auth_a: dict[str, str]
    auth_b: dict[str, str]
    key_a: str
    key_b: str
    tenant_a: str
    tenant_b: str
    ids: dict[str, str] = field(default_factory=dict)
    admin: Staff | None = None
    admin_password: str = ""

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S, **kw)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` behind uvicorn (``shiren serve``'s options) on a free port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, **server_options()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def enrol_body(image: bytes, ref: str, id_number: str = ID_NUMBER) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "name": NAME,
        "id_number": id_number,
        "consent": CONSENT,
        "reference_image": base64.b64encode(image).decode("ascii"),
    }


def _seed(live: Live, recording: Recording) -> None:
    """Subjects, sessions, a check and a review of tenant A, through the real API."""
    from shiren.liveness.challenge import parse_challenge

    still = recording.still_frame()
    with live.client() as c:
        first = c.post("/v1/subjects", json=enrol_body(still, "seed-1"), headers=live.auth_a)
        assert first.status_code == 201, first.text
        second = c.post(
            "/v1/subjects", json=enrol_body(still, "seed-2", OTHER_ID), headers=live.auth_a
        )
        assert second.status_code == 201, second.text
        session = second.json()["session"]
        frames, times = recording.answer(parse_challenge(session["challenge"]))
        import json

        checked = c.post(
            f"/v1/sessions/{session['id']}/frames",
            data={"meta": json.dumps({"nonce": session["nonce"], "t_ms": times})},
            files=[("frames", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)],
            headers=live.auth_a,
        )
        assert checked.status_code == 200, checked.text
    tenant = live.service.authenticate(live.key_a)
    case = add_case(live.service, tenant, ref="seed-review", when=live.clock())
    live.ids.update(
        subject=first.json()["subject"]["id"],
        session=first.json()["session"]["id"],
        nonce=first.json()["session"]["nonce"],
        passed_subject=second.json()["subject"]["id"],
        used_session=session["id"],
        check=checked.json()["id"],
        review=case["review"],
        review_check=case["check"],
        review_subject=case["subject"],
        reference_b64=base64.b64encode(still).decode("ascii"),
        **_card_photos(still, live.clock().date()),
    )


def _card_photos(face: bytes, today: date) -> dict[str, str]:
    """Photos of a fictional holder's ID card (front with ``face`` printed, back), base64."""
    from tests.support import id_cards

    paint = id_cards.painter()
    person = id_cards.holder(7, today)
    front = id_cards.front_photo(paint, face, person)
    back = id_cards.back_photo(paint, person)
    return {
        "card_front_b64": base64.b64encode(front).decode("ascii"),
        "card_back_b64": base64.b64encode(back).decode("ascii"),
    }


@contextmanager
def live_service(tmp: Path, engine: Engine, recording: Recording) -> Iterator[Live]:
    """A seeded, served shiren on a fresh SQLite file (see the module docstring)."""
    clock = FakeClock()
    clock.now = datetime.now(UTC)
    sql = make_engine(f"sqlite:///{tmp / 'hostile.db'}")
    migrate(sql)
    service = ShirenService(
        store=SqlStore(sql),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,  # every session here is assembled from one recording
    )
    app = create_app(service, max_body_bytes=24 * 1024 * 1024)
    tenant_a, key_a = service.create_tenant("lender A")
    tenant_b, key_b = service.create_tenant("lender B")
    try:
        with serve(app) as url:
            live = Live(
                base_url=url,
                app=app,
                service=service,
                clock=clock,
                auth_a={"Authorization": f"Bearer {key_a}"},
                auth_b={"Authorization": f"Bearer {key_b}"},
                key_a=key_a,
                key_b=key_b,
                tenant_a=tenant_a.id,
                tenant_b=tenant_b.id,
            )
            _seed(live, recording)
            admin = staff(app, app.state.console, tenant_a, "ada", "admin")
            assert admin.sign_in().status_code == 303
            live.admin, live.admin_password = admin, admin.password
            yield live
    finally:
        sql.dispose()


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine, recording: Recording
) -> Iterator[Live]:
    """One seeded, served shiren per test module (import this fixture into the module)."""
    with live_service(tmp_path_factory.mktemp("live"), engine, recording) as running:
        yield running


def routes_of(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every endpoint, routers included (FastAPI keeps an included router as
    one ``_IncludedRouter`` entry: walked with its prefix)."""
    out: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Mount):  # a mounted app (static files): probed at its root
                out.append(("GET", prefix + route.path + "/"))
            else:
                assert isinstance(route, Route), route
                methods = sorted(m for m in route.methods or () if m != "HEAD")
                out.extend((method, prefix + route.path) for method in methods)

    walk(list(app.routes), "")
    return out

"""Hostile clients at the socket: slow clients, lying lengths, chunked floods, huge heads.

Against the live service (uvicorn with ``shiren serve``'s options, real app).  Deadlines are
shortened for the test (class attributes of :class:`GuardedH11Protocol`, read per connection);
the defaults are in docs/RELIABILITY.md.  Before ``shiren.api.server`` existed, an idle
connection, a head trickled a byte a second and a body trickled likewise were all still open
after 20 s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from shiren.api.server import GuardedH11Protocol
from tests.api.hostile_support import Live, live

__all__ = ["live"]

HEAD_S = 1.5
BODY_S = 2.5
SLACK_S = 3.0


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardedH11Protocol, "header_timeout_s", HEAD_S)
    monkeypatch.setattr(GuardedH11Protocol, "body_timeout_s", BODY_S)


def _connect(live: Live) -> socket.socket:
    host, port = live.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(0.2)
    return sock


def _trickle(live: Live, first: bytes, drip: bytes, limit_s: float) -> tuple[bytes, float]:
    """Send ``first``, then ``drip`` every 0.3 s until the server answers or closes; the
    answer's first bytes and when it came.  Still open after ``limit_s``: a hang."""
    sock = _connect(live)
    start = time.monotonic()
    try:
        sock.sendall(first)
        while time.monotonic() - start < limit_s:
            try:
                if drip:
                    sock.sendall(drip)
                data = sock.recv(4096)
                return data, time.monotonic() - start
            except TimeoutError:
                time.sleep(0.1)
            except OSError:
                return b"<closed>", time.monotonic() - start
        return b"<still open>", time.monotonic() - start
    finally:
        sock.close()


def _raw(live: Live, request: bytes, wait_s: float = 10.0) -> bytes:
    sock = _connect(live)
    sock.settimeout(wait_s)
    try:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def _post_head(live: Live, path: str, extra: str) -> bytes:
    auth = live.auth_a["Authorization"]
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


SLOW = {
    "idle connection": (b"", b""),
    "head trickled": (b"GET /v1/stats HTTP/1.1\r\n", b"X"),
    "body trickled": (None, b"{"),
    "chunked body trickled": (None, b"1\r\n{\r\n"),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_slow_clients_are_cut_off_with_408(live: Live, short_deadlines: None, case: str) -> None:
    first, drip = SLOW[case]
    if first is None:
        extra = (
            "Content-Length: 100000\r\n"
            if "chunked" not in case
            else "Transfer-Encoding: chunked\r\n"
        )
        first = _post_head(live, "/v1/events", extra)
    answer, after = _trickle(live, first, drip, limit_s=HEAD_S + BODY_S + SLACK_S + 5)
    assert answer.startswith(b"HTTP/1.1 408"), (case, answer[:80], after)
    deadline = BODY_S if first.startswith(b"POST") else HEAD_S
    assert deadline - 0.2 <= after <= deadline + SLACK_S, (case, after)
    _assert_no_5xx_counted(live)


def _assert_no_5xx_counted(live: Live) -> None:
    """The app saw the cut-off as a client disconnect, not as a server error."""
    time.sleep(0.3)  # the request task winds down after the connection is closed
    with live.client() as c:
        metrics = c.get("/metrics").text
    bad = [line for line in metrics.splitlines() if 'status="5' in line]
    assert bad == [], bad


def test_slow_clients_do_not_starve_others(live: Live, short_deadlines: None) -> None:
    """Thirty trickling connections at once; a normal client is served meanwhile."""
    stop = threading.Event()
    results: list[bytes] = []

    def slow() -> None:
        answer, _ = _trickle(live, b"GET /healthz HTTP/1.1\r\n", b"X", limit_s=HEAD_S + 8)
        results.append(answer)

    threads = [threading.Thread(target=slow) for _ in range(30)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with live.client() as c:
        start = time.monotonic()
        assert c.get("/v1/stats", headers=live.auth_a).status_code == 200
        assert time.monotonic() - start < HEAD_S - 0.1  # served before any slow one is cut
    for t in threads:
        t.join(20)
    stop.set()
    assert len(results) == 30
    assert all(r.startswith(b"HTTP/1.1 408") for r in results), {r[:20] for r in results}


def test_content_length_lies(live: Live, short_deadlines: None) -> None:
    body = b'{"subject_id": "x", "type": "disbursement"}'
    # announces more than it sends, then waits: the body deadline answers
    short = _raw(live, _post_head(live, "/v1/events", "Content-Length: 5000\r\n") + body)
    assert short.startswith(b"HTTP/1.1 408"), short[:100]
    # announces less than it sends: the rest is parsed as a next request (a 400), never a 5xx
    long = _raw(live, _post_head(live, "/v1/events", "Content-Length: 10\r\n") + body * 3, 4)
    statuses = [line.split(b" ")[1] for line in long.split(b"\r\n") if line.startswith(b"HTTP/")]
    assert statuses, long[:300]
    assert all(s.startswith(b"4") for s in statuses), long[:300]
    # announces more than the cap: refused before anything is read
    huge = _raw(live, _post_head(live, "/v1/events", f"Content-Length: {10**12}\r\n"), 4)
    assert huge.startswith(b"HTTP/1.1 413"), huge[:100]
    # not a number, two different lengths
    for extra in ("Content-Length: -1\r\n", "Content-Length: 5\r\nContent-Length: 7\r\n"):
        bad = _raw(live, _post_head(live, "/v1/events", extra) + body, 4)
        assert bad.startswith(b"HTTP/1.1 4"), (extra, bad[:100])
    with live.client() as c:  # and the server is fine afterwards
        assert c.get("/healthz").status_code == 200


def test_chunked_flood_without_length_is_413_over_the_socket(live: Live) -> None:
    head = _post_head(live, "/v1/subjects", "Transfer-Encoding: chunked\r\n")
    chunk = b"%x\r\n%s\r\n" % (1024 * 1024, b"x" * (1024 * 1024))
    sock = _connect(live)
    sock.settimeout(10)
    try:
        sock.sendall(head)
        answer = b""
        for _ in range(40):  # 40 MiB offered; the cap is 24 MiB
            try:
                sock.sendall(chunk)
            except OSError:
                break
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_oversized_and_malformed_request_heads_are_4xx(live: Live) -> None:
    cases = {
        # h11 refuses a head once 16 KiB are buffered *incomplete*; a head that arrives whole
        # in one read (up to ~64 KiB on loopback) is parsed, so the floods here are 1 MiB
        "1 MiB header": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n",
        "100k headers": b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n",
        "binary garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 300,
        "bad method line": b"GET\x00 / HTTP/1.1\r\nHost: t\r\n\r\n",
        "HTTP/0.9": b"GET /\r\n\r\n",
        "absurd path": b"GET /" + b"%2e%2e/" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    }
    for name, request in cases.items():
        answer = _raw(live, request, 5)
        assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), (
            name,
            answer[:120],
        )
    with live.client() as c:
        assert c.get("/healthz").status_code == 200


def test_shiren_serve_runs_the_guarded_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from shiren.cli import service_cmd

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kw: seen.update(kw))
    monkeypatch.setattr(service_cmd, "run_guarded", lambda *args, **kw: (None, None))
    service_cmd.serve(host="127.0.0.1", port=0, workers=2, deliver=False)
    assert seen["http"] is GuardedH11Protocol
    assert seen["timeout_keep_alive"] == 5
    assert seen["h11_max_incomplete_event_size"] == 16 * 1024


def test_deadlines_come_from_the_environment_of_each_worker() -> None:
    code = (
        "from shiren.api.server import GuardedH11Protocol as P;"
        "print(P.header_timeout_s, P.body_timeout_s)"
    )
    env = {**os.environ, "SHIREN_HEADER_TIMEOUT_S": "3.5", "SHIREN_BODY_TIMEOUT_S": "nonsense"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["3.5", "120.0"]  # an unreadable value keeps the default

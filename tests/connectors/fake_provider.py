"""A local fake provider: a real HTTP server on 127.0.0.1 in a thread, speaking the provider
contract of ``shiren.connectors.http`` / ``.adapters`` — and failing on command.

``faults`` is a queue consumed one per request: ``"500"``, ``"503"``, ``"429"``, ``"400"``,
``"timeout"`` (answers after ``hang_s``, longer than the client's timeout), ``"slow"`` (answers
after ``slow_s``, within it), ``"malformed"`` (200 with a body that is not JSON, correctly
signed), ``"bad_signature"`` (a valid answer with a wrong signature), ``"process_then_500"``
(does the work, remembers the answer under the idempotency key, then answers 500 — the lost
answer case).  Answers are decided by the sandbox's magic values, so tests can ask for a
mismatch; the idempotency store returns the first answer for a repeated key and 409 for a key
reused with another body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shiren.connectors.http import request_signature, response_signature
from shiren.connectors.sandbox import SandboxAuthority, SandboxBankCard
from shiren.connectors.types import AuthorityQuery, CardQuery


@dataclass
class Seen:
    path: str
    idempotency_key: str
    signature_ok: bool


@dataclass
class FakeProvider:
    secret: bytes
    key_id: str = "k1"
    hang_s: float = 2.0
    slow_s: float = 0.05
    tolerance_s: int = 300
    faults: deque[str] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    processed: int = 0
    sms: list[tuple[str, str]] = field(default_factory=list)
    _idem: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                provider.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- request handling ------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length", "0")))
        key = req.headers.get("Idempotency-Key", "")
        ok = self._signature_ok(req, body, key)
        with self._lock:
            self.seen.append(Seen(req.path, key, ok))
            fault = self.faults.popleft() if self.faults else ""
        if not ok:
            self._send(req, 401, b'{"error":"bad signature"}', key)
            return
        if fault in ("500", "503", "429", "400"):
            self._send(req, int(fault), b'{"error":"injected"}', key)
            return
        if fault == "timeout":
            time.sleep(self.hang_s)
        elif fault == "slow":
            time.sleep(self.slow_s)
        fingerprint = hashlib.sha256(body).hexdigest()
        with self._lock:
            hit = self._idem.get(key)
            if hit is not None and hit[0] != fingerprint:
                status, answer = 409, b'{"error":"idempotency key reused"}'
            elif hit is not None:
                status, answer = 200, hit[1]
            else:
                status, answer = 200, self._answer(req.path, json.loads(body))
                self._idem[key] = (fingerprint, answer)
                self.processed += 1
        if fault == "process_then_500":
            self._send(req, 500, b'{"error":"lost"}', key)
        elif fault == "malformed" and status == 200:
            self._send(req, 200, b'{"ref": "x", "result": ', key)
        else:
            self._send(req, status, answer, key, bad_signature=fault == "bad_signature")

    def _signature_ok(self, req: BaseHTTPRequestHandler, body: bytes, key: str) -> bool:
        try:
            ts = int(req.headers.get("X-Shiren-Timestamp", ""))
        except ValueError:
            return False
        expected = request_signature(self.secret, "POST", req.path, ts, key, body)
        return (
            req.headers.get("X-Shiren-Key-Id") == self.key_id
            and abs(time.time() - ts) <= self.tolerance_s
            and hmac.compare_digest(expected, req.headers.get("X-Shiren-Signature", ""))
        )

    def _answer(self, path: str, doc: dict[str, Any]) -> bytes:
        ref = f"ref{self.processed + 1}"
        if path == "/v1/sms/send":
            self.sms.append((doc["phone"], doc["code"]))
            out: dict[str, Any] = {"ref": ref}
        elif path == "/v1/bankcard/verify":
            r = SandboxBankCard().verify(CardQuery(**doc), idempotency_key=ref)
            out = {"ref": ref, "result": r.outcome.value, "mismatched": list(r.mismatched)}
        elif path == "/v1/authority/verify":
            photo = None if doc.get("photo") is None else base64.b64decode(doc["photo"])
            a = SandboxAuthority().verify(
                AuthorityQuery(doc["name"], doc["id_number"], photo), idempotency_key=ref
            )
            out = {"ref": ref, "result": a.outcome.value, "photo_match": a.photo_match}
        else:
            out = {"error": "no such path"}
        return json.dumps(out).encode()

    def _send(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        key: str,
        *,
        bad_signature: bool = False,
    ) -> None:
        ts = int(time.time())
        sig = response_signature(self.secret, status, ts, key, body)
        if bad_signature:
            sig = "0" * len(sig)
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(body)))
            req.send_header("X-Provider-Timestamp", str(ts))
            req.send_header("X-Provider-Signature", sig)
            req.end_headers()
            req.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

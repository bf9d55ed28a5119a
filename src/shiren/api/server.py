"""The HTTP/1.1 server protocol ``shiren serve`` runs: uvicorn's h11 protocol plus deadlines.

Why: uvicorn closes a keep-alive connection that stays *silent*, but has no deadline for a
request that arrives *slowly*.  A client that opens a connection and sends nothing, trickles its
request head one byte a second, or announces a body and trickles it (slowloris), holds a
connection — and, for a body, a request task and its buffer — forever.  Measured before this
module: all three were still open after 20 s (see ``tests/api/test_hostile_http.py``).

:class:`GuardedH11Protocol` adds two deadlines per request:

* the request **head** (request line and headers) must be complete within ``header_timeout_s``
  (``SHIREN_HEADER_TIMEOUT_S``, default 10 s) of the connection opening or of the previous
  response ending;
* the request **body** must be complete within ``body_timeout_s`` (``SHIREN_BODY_TIMEOUT_S``,
  default 120 s: 24 MiB at ~200 kB/s) of the head.

Past a deadline the client gets ``408 Request Timeout`` (when no response has started) and the
connection is closed; the application sees a disconnect.  Behind a reverse proxy (nginx
``client_header_timeout`` / ``client_body_timeout``) these are a second line of defence.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 120.0
MAX_INCOMPLETE_EVENT_BYTES = 16 * 1024  # request line + headers; larger heads are a 400
KEEP_ALIVE_S = 5
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 16\r\n\r\nrequest timeout\n"
)


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with request-head and request-body deadlines.

    The deadlines are class attributes read from the environment when the module is imported,
    so every uvicorn worker process (spawned, importing afresh) applies the same values."""

    header_timeout_s: float = _env_seconds("SHIREN_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S)
    body_timeout_s: float = _env_seconds("SHIREN_BODY_TIMEOUT_S", DEFAULT_BODY_TIMEOUT_S)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str = ""

    # -- the deadline ---------------------------------------------------------------------

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = ""

    def _follow(self) -> None:
        """Move the deadline along with the client's side of the h11 state machine."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._waiting_for != "head":
                self._arm("head", self.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._arm("body", self.body_timeout_s)
        else:  # DONE, MUST_CLOSE, CLOSED, ERROR: nothing more is awaited from the client
            self._disarm()

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.cycle is not None and self.cycle.response_started
        if not started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.logger.info("request %s not received in time: connection closed", self._waiting_for)
        self.transport.close()

    # -- uvicorn's hooks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.transport.is_closing():
            self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_options() -> dict[str, Any]:
    """The uvicorn settings ``shiren serve`` (and the tests' live server) use."""
    return {
        "http": GuardedH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT_BYTES,
        "ws": "none",
        "log_config": None,
    }


__all__ = ["GuardedH11Protocol", "server_options"]

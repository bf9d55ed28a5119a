"""What the API tells its operator: one JSON log line per request (with a request id), and
Prometheus counters.  Ids and codes only: images and ID numbers never reach a log line."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram

from shiren.api.problems import request_id_var
from shiren.privacy import RedactingFilter

log = logging.getLogger("shiren.api")

QUIET_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "python_multipart", "multipart")
"""Libraries whose INFO/DEBUG lines print request or row contents: kept at WARNING."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        for key in ("method", "route", "status", "duration_ms"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        return json.dumps(doc, ensure_ascii=False)


def _json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Structured JSON logs on stderr, every line through :func:`shiren.privacy.redact`:
    shiren's own at ``level``; other libraries' warnings through the same redacting handler
    (not Python's bare last-resort printer); SQL and multipart internals never below WARNING,
    whatever ``level`` says (their DEBUG lines hold bound values and result rows)."""
    ours = logging.getLogger("shiren")
    ours.handlers[:] = [_json_handler()]
    ours.setLevel(level.upper())
    ours.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [_json_handler()]
    root.setLevel(logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The app's own Prometheus registry (one per app: tests build many)."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    decisions: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "shiren_http_requests",
                "HTTP requests",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "shiren_http_request_seconds", "Latency", ["route"], registry=registry
            ),
            decisions=Counter(
                "shiren_decisions", "Check decisions", ["decision"], registry=registry
            ),
        )


def install_observability(app: FastAPI) -> Metrics:
    """The request-id / metrics / access-log middleware; the metrics go to ``app.state``."""
    metrics = Metrics.create()
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id", "")
        if not (0 < len(rid) <= 64 and rid.replace("-", "").isalnum()):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - start
            metrics.requests.labels(request.method, route, str(response.status_code)).inc()
            metrics.latency.labels(route).observe(elapsed)
            response.headers["X-Request-ID"] = rid
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
        finally:
            request_id_var.reset(token)
        return response

    return metrics


__all__ = [
    "QUIET_LOGGERS",
    "JsonFormatter",
    "Metrics",
    "configure_logging",
    "install_observability",
]

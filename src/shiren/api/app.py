"""The HTTP face of :class:`~shiren.service.app.ShirenService`: FastAPI ``/v1``.

Why the layer is thin: every rule (privacy, retry limits, single-use sessions, tenant isolation)
lives in the service, where it is tested without HTTP.  The API only

* authenticates (``Authorization: Bearer <key>`` on every lender route: :mod:`.deps`; the
  tenant found is passed to the service, which scopes every read and write to it);
* parses requests (JSON or multipart: :mod:`.parsing`), capping the body size *before* it is
  buffered (:class:`.deps.BodyLimit`), so a huge upload costs the server nothing;
* maps typed errors to ``application/problem+json`` with stable codes (:mod:`.problems`) — bad
  input of any kind is a 4xx, never a 5xx;
* answers with typed models (every route's ``response_model``) and publishes them in OpenAPI
  (:mod:`.openapi_doc`), with ``/healthz``, ``/readyz`` and Prometheus ``/metrics``, and logs
  one JSON line per request with a request id (:mod:`.observe`).

The routes live in :mod:`shiren.api.routes`, one router per resource; this module assembles.
"""

from __future__ import annotations

from fastapi import FastAPI

from shiren.api.console import install_console
from shiren.api.deps import BodyLimit, attach
from shiren.api.observe import QUIET_LOGGERS, configure_logging, install_observability
from shiren.api.openapi_doc import install_problem_docs
from shiren.api.problems import install_error_handlers, lost_database, problem, status_of
from shiren.api.routes import (
    capture,
    capture_recording,
    events,
    fallbacks,
    fraud,
    id_cards,
    ops,
    payouts,
    reviews,
    sessions,
    subjects,
    tenant,
)
from shiren.service.app import ShirenService
from shiren.service.settings import DEFAULT_MAX_BODY_BYTES

ROUTERS = (
    ops.router,
    id_cards.router,
    subjects.router,
    sessions.router,
    events.router,
    reviews.router,
    tenant.router,
    fallbacks.router,
    payouts.router,
    fraud.router,
    capture.router,
    capture_recording.router,
)
_lost_database = lost_database  # the name the fault tests import


def create_app(service: ShirenService, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The ASGI application around ``service`` (one per process; tests make one per store)."""
    app = FastAPI(
        title="shiren 实人认证",
        version="1",
        description="Real-person verification for lenders: enrolment, step-up, checks.",
    )
    attach(app, service)
    install_error_handlers(app)
    install_observability(app)
    for router in ROUTERS:
        app.include_router(router)
    install_console(app, service)  # /console: the review console (issue 5)
    install_problem_docs(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


__all__ = [
    "QUIET_LOGGERS",
    "BodyLimit",
    "configure_logging",
    "create_app",
    "problem",
    "status_of",
]

"""Make the published OpenAPI document say what the API really answers on errors.

FastAPI documents every operation's validation failure as ``422 application/json
HTTPValidationError``; shiren answers every error — validation included — as an RFC 9457
``application/problem+json`` document with a stable ``code`` (:func:`shiren.api.app.problem`).
Clients generated from the document, and the schema-driven fuzz (schemathesis, issue 7), would
otherwise expect a shape that never comes.  This rewrites the generated document once: a
``Problem`` schema, every ``422`` pointing at it, and a ``4XX`` problem response (plus ``503``
for retryable service faults) on every operation.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable error code (ErrorCode)"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "extra": {"type": "object"},
    },
}
_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
}
_ERRORS = {
    "422": "The request does not match the schema",
    "4XX": "A typed client error (auth.required, record.not_found, input.*, …)",
    "503": "A retryable service fault (Retry-After)",
}


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status, text in _ERRORS.items():
                if status == "422" and status not in responses:
                    continue
                responses[status] = {"description": text, "content": _PROBLEM_CONTENT}
    return doc


def install_problem_docs(app: FastAPI) -> None:
    """Serve the rewritten document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["PROBLEM_SCHEMA", "install_problem_docs"]

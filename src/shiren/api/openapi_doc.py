"""Make the published OpenAPI document say what the API really accepts and answers.

FastAPI documents what its own parameters know.  This rewrites the generated document once:

* every error is an RFC 9457 ``application/problem+json`` :class:`~shiren.api.problems.Problem`
  (FastAPI's ``422 HTTPValidationError`` included); each operation lists the statuses it can
  answer — its own (the routes' ``responses=documented(...)``) plus ``401`` where the key is
  needed, ``413``/``422`` where there is a body or parameters, ``503`` (a retryable fault) on
  everything that reads the database;
* the models the JSON-or-multipart parsers read (:data:`shiren.api.parsing.FORM_MODELS`) join
  the components, so every ``$ref`` resolves;
* the Bearer key is the ``bearerAuth`` security scheme (declared by the tenant dependency); an
  operation without it says so (``security: []``: the probes and the capture-token routes).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from shiren.api.parsing import FORM_MODELS
from shiren.api.problems import Problem, documented

REF_TEMPLATE = "#/components/schemas/{model}"
FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def _components(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    models = [(Problem, "serialization"), *((m, "validation") for m in FORM_MODELS.values())]
    _, extra = models_json_schema(models, ref_template=REF_TEMPLATE)  # type: ignore[arg-type]
    for name, schema in extra.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    return schemas


def _statuses(path: str, operation: dict[str, Any]) -> list[int]:
    """The statuses every operation of its kind can answer, besides its own."""
    out = []
    if operation.get("security"):
        out.append(401)
    if "requestBody" in operation:
        out += [400, 413, 422]  # 400: a body that does not parse (JSON, multipart)
    if operation.get("parameters"):
        out.append(422)
    if path.startswith("/v1/"):
        out.append(503)
    return out


def _rewrite(doc: dict[str, Any]) -> None:
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                responses.setdefault(str(status), {})
            problems = documented(*(int(s) for s in responses if s.isdigit() and int(s) >= 400))
            for code, answer in problems.items():
                if str(code) == "503" and "content" in responses["503"]:
                    continue  # /readyz answers 503 with its own document
                responses[str(code)] = answer
            operation["responses"] = dict(sorted(responses.items()))
            operation.setdefault("security", [])


def _drop_unused(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    """FastAPI's validation-error schemas, once no response points at them any more."""
    if REF_TEMPLATE.format(model=FASTAPI_422[0]) not in json.dumps(doc.get("paths", {})):
        for name in FASTAPI_422:
            schemas.pop(name, None)


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = _components(doc)
    _rewrite(doc)
    _drop_unused(doc, schemas)
    return doc


def install_problem_docs(app: FastAPI) -> None:
    """Serve the rewritten document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["document", "install_problem_docs"]

"""The published contract itself (issue 15), from the app's own OpenAPI document and routes —
no models loaded: the service is a stand-in, only the routing and the document are read.

Every ``$ref`` resolves; the Bearer key is a declared security scheme on every lender
operation and the public ones say they are public; the enums and patterns the service enforces
are in the request schemas; every JSON route has a response model; the ids a client follows are
OpenAPI links; a method a resource does not offer is a 405 with ``Allow``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from unittest.mock import MagicMock

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from shiren.api.app import create_app
from shiren.domain.entities import ReviewStatus
from shiren.domain.fallback import FallbackStatus
from shiren.domain.policy import EventType
from tests.api.hostile_support import routes_of

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/v1/capture/")


@pytest.fixture(scope="module")
def app() -> Any:
    service = MagicMock()
    service.keys.challenge_key = b"k" * 32
    return create_app(service)


@pytest.fixture(scope="module")
def doc(app: Any) -> dict[str, Any]:
    document: dict[str, Any] = app.openapi()
    return document


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"][name]
    return found


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    assert "$defs" not in json.dumps(doc["paths"])


def test_the_bearer_key_is_declared_where_it_is_needed(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, op in _operations(doc):
        if path.startswith(PUBLIC_PREFIXES):
            assert op["security"] == [], (method, path)
        else:
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)


def test_every_error_is_a_documented_problem(doc: dict[str, Any]) -> None:
    for method, path, op in _operations(doc):
        errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
        assert errors or path in {"/healthz", "/metrics"}, (method, path)
        for status, answer in errors.items():
            if (path, status) == ("/readyz", "503"):
                continue  # not ready: the readiness document itself
            schema = answer["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
        if "requestBody" in op or op.get("parameters"):
            assert "422" in op["responses"], (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_the_rules_the_service_enforces_are_published(doc: dict[str, Any]) -> None:
    props = _schema(doc, "EventBody")["properties"]
    assert props["type"]["enum"] == [e.value for e in EventType]
    assert props["subject_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert _schema(doc, "EnrolBody")["properties"]["reference_kind"]["enum"] == [
        "id_card",
        "authority",
        "upload",
    ]
    assert "pattern" in _schema(doc, "ConsentBody")["properties"]["text_sha256"]
    assert _schema(doc, "ReviewDecisionBody")["properties"]["outcome"]["enum"] == [
        "approve",
        "reject",
    ]
    assert "pattern" in _schema(doc, "StartBody")["properties"]["phone"]
    assert "pattern" in _schema(doc, "CardBody")["properties"]["card_number"]
    assert "pattern" in _schema(doc, "BlacklistIn")["properties"]["list_name"]
    assert "oneOf" in _schema(doc, "BlacklistIn")  # exactly one of image, subject_id
    queries = {
        (path, p["name"]): p["schema"]
        for _m, path, op in _operations(doc)
        for p in op.get("parameters", [])
        if p["in"] == "query"
    }
    assert queries[("/v1/reviews", "status")]["enum"] == [s.value for s in ReviewStatus]
    assert queries[("/v1/fallbacks", "status")]["enum"] == [s.value for s in FallbackStatus]
    assert "pattern" in queries[("/v1/blacklist", "list_name")]
    for method, path, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["in"] == "path" and param["name"] != "token":
                assert param["schema"]["pattern"] == "^[0-9a-f]{32}$", (method, path)


def test_every_json_route_has_a_response_model(app: Any) -> None:
    def walk(routes: list[Any]) -> list[APIRoute]:
        out: list[APIRoute] = []
        for route in routes:
            if hasattr(route, "original_router"):
                out += walk(route.original_router.routes)
            elif isinstance(route, APIRoute) and route.include_in_schema:
                out.append(route)
        return out

    routes = walk(list(app.routes))
    assert len(routes) >= 34
    for route in routes:
        assert route.response_model is not None, route.path


def test_the_ids_a_client_follows_are_links(doc: dict[str, Any]) -> None:
    def links(path: str, method: str, status: str) -> dict[str, Any]:
        found: dict[str, Any] = doc["paths"][path][method]["responses"][status]["links"]
        return found

    enrolled = links("/v1/subjects", "post", "201")
    assert enrolled["SubmitFrames"]["parameters"] == {"session_id": "$response.body#/session/id"}
    judged = links("/v1/sessions/{session_id}/frames", "post", "200")
    assert judged["GetCheck"]["parameters"] == {"check_id": "$response.body#/id"}
    stepped = links("/v1/events", "post", "200")
    assert stepped["GetSession"]["parameters"] == {"session_id": "$response.body#/session/id"}
    ids = {op.get("operationId") for _m, _p, op in _operations(doc)}
    for _m, _p, op in _operations(doc):
        for answer in op["responses"].values():
            for link in answer.get("links", {}).values():
                assert link["operationId"] in ids, link


def test_a_method_not_offered_is_405_with_allow(app: Any) -> None:
    with TestClient(app) as client:
        resp = client.put("/v1/blacklist")
        assert resp.status_code == 405
        assert resp.headers["allow"] == "GET, POST"
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "method.not_allowed"
        assert client.patch("/v1/events").headers["allow"] == "POST"
        # an id holding an encoded "/" that lands on another resource's route: not found
        odd = client.delete("/v1/subjects/x%2Fexport")
        assert odd.status_code == 404, odd.text
        assert odd.json()["code"] == "record.not_found"


def test_every_published_operation_is_a_route(app: Any, doc: dict[str, Any]) -> None:
    routes = set(routes_of(app))
    for method, path, _op in _operations(doc):
        assert (method, path) in routes, (method, path)

"""Fuzz the whole API from its own OpenAPI document (schemathesis) against the live service.

Every operation the app publishes (whatever routes exist when the test runs) gets
``SHIREN_FUZZ_EXAMPLES`` generated requests (default 12; the full-length run in
docs/RELIABILITY.md uses 150), schema-valid and schema-violating alike, three times: with
tenant A's key, with no credentials, and with tenant B's key.  Each generated request with path
ids is sent twice: as generated, and with the seeded real ids of tenant A (so bodies reach the
use cases instead of stopping at a 404).

Asserted for every response: no 5xx; an answer within the client timeout (a hang fails); errors
are ``application/problem+json`` with a stable ``code``; 2xx bodies are JSON.  Without
credentials no ``/v1`` request succeeds; with tenant B's key none of tenant A's ids does.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode, checks

from tests.api.hostile_support import REQUEST_TIMEOUT_S, Live, live

FUZZ_EXAMPLES = int(os.environ.get("SHIREN_FUZZ_EXAMPLES", "12"))
__all__ = ["live"]  # the fixture, imported

CONFORMANCE = [  # against the published document (errors documented as problem+json)
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
SEEDED_PARAMS = {
    "session_id": "session",
    "subject_id": "subject",
    "check_id": "check",
    "review_id": "review",
}


def _operations(live: Live) -> list[Any]:
    schema = schemathesis.openapi.from_dict(live.app.openapi())
    ops = [result.ok() for result in schema.get_all_operations()]
    # destructive operations last, so the seeded records live through the others
    return sorted(ops, key=lambda op: (op.method.upper() == "DELETE", op.path))


def _headers(live: Live, who: str) -> dict[str, str]:
    return {"tenant": live.auth_a, "other": live.auth_b, "none": {}}[who]


def _check(resp: Any, path: str, who: str, seeded: bool) -> None:
    what = f"{resp.request.method} {resp.request.url} as {who}: {resp.status_code}"
    assert resp.status_code < 500, (what, resp.text[:500])
    ctype = (resp.headers.get("content-type") or [""])[0]
    if resp.status_code >= 400:
        assert ctype.startswith("application/problem+json"), (what, ctype)
        assert isinstance(resp.json().get("code"), str), (what, resp.text[:300])
    elif path.startswith("/v1"):
        assert ctype.startswith("application/json"), (what, ctype)
        resp.json()
    if path.startswith("/v1") and who == "none":
        assert resp.status_code >= 400, (what, resp.text[:300])
    if seeded and who == "other":
        assert resp.status_code >= 400, ("another tenant reached tenant A's record", what)


def _send(session: requests.Session, live: Live, case: Any, who: str) -> Any:
    """One request through a real socket; a read timeout (a hang) raises and fails the test."""
    return case.call(
        base_url=live.base_url,
        session=session,
        headers=_headers(live, who),
        timeout=REQUEST_TIMEOUT_S,
    )


def _strategy(op: Any) -> Any:
    """Schema-valid requests and schema-violating ones (negative mode), half and half."""
    positive = op.as_strategy(GenerationMode.POSITIVE)
    try:
        return positive | op.as_strategy(GenerationMode.NEGATIVE)
    except Exception:  # an operation with nothing to violate (no parameters, no body)
        return positive


def _fuzz_operation(
    session: requests.Session, live: Live, op: Any, who: str, statuses: Counter[int]
) -> None:
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(op))
    def fuzz(case: Any) -> None:
        resp = _send(session, live, case, who)
        statuses[resp.status_code] += 1
        _check(resp, op.path, who, seeded=False)
        case.validate_response(resp, checks=CONFORMANCE)
        names = set(case.path_parameters or {}) & set(SEEDED_PARAMS)
        if names:
            for name in names:
                case.path_parameters[name] = live.ids[SEEDED_PARAMS[name]]
            resp = _send(session, live, case, who)
            statuses[resp.status_code] += 1
            _check(resp, op.path, who, seeded=True)
            case.validate_response(resp, checks=CONFORMANCE)

    fuzz()


@pytest.mark.parametrize("who", ["none", "other", "tenant"])
def test_openapi_fuzz_finds_no_5xx_and_no_hang(live: Live, who: str) -> None:
    statuses: Counter[int] = Counter()
    ops = _operations(live)
    assert any(op.path == "/v1/subjects" for op in ops)
    with requests.Session() as session:
        for op in ops:
            _fuzz_operation(session, live, op, who, statuses)
    total = sum(statuses.values())
    print(f"\nopenapi fuzz as {who}: {len(ops)} operations, {total} requests, {dict(statuses)}")
    assert total >= len(ops) * min(FUZZ_EXAMPLES, 5)

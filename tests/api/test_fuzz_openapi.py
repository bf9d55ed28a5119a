"""Fuzz the whole API from its own OpenAPI document (schemathesis) against the live service,
with every check schemathesis has.

Every operation the app publishes (whatever routes exist when the test runs) gets
``SHIREN_FUZZ_EXAMPLES`` generated requests (default 12; the full-length run in
docs/RELIABILITY.md uses 150), schema-valid and schema-violating alike, three times: with
tenant A's key, with no credentials, and with tenant B's key.  Each generated request with path
ids is sent twice: as generated, and with the seeded real ids of tenant A (so bodies reach the
use cases instead of stopping at a 404).

Every response goes through **all** of schemathesis' checks (``schemathesis.checks``: no server
error, documented status / content type / headers / body schema, schema-valid data accepted,
schema-violating data rejected, authentication enforced, …); the request sent again with the
seeded ids — no longer what was generated — through all but the two data checks.  Failures are
collected by check and the test fails on any.  Asserted besides: an answer within the client
timeout (a hang fails); errors are ``application/problem+json`` with a stable ``code``; 2xx
bodies are JSON and carry no field their response schema does not declare; without credentials
no ``/v1`` request succeeds; with tenant B's key none of tenant A's ids does.

A schema cannot say "a photo with one face", "an ID number with its check character", "a card
number passing Luhn" or "a host that resolves": a schema-valid request (positive mode) gets those
few values from the seeded material before it is sent (:func:`_realistic`), so it can succeed.
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.transport.serialization import Binary

from shiren.connectors.types import with_luhn
from shiren.domain.idnumber import check_character
from shiren.domain.policy import DEFAULT_CONSENT_PURPOSES
from tests.api.hostile_support import REQUEST_TIMEOUT_S, Live, live

FUZZ_EXAMPLES = int(os.environ.get("SHIREN_FUZZ_EXAMPLES", "12"))
__all__ = ["live"]  # the fixture, imported

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
DATA_CHECKS = {"positive_data_acceptance", "negative_data_rejection"}
SEEDED_CHECKS = [c for c in ALL_CHECKS if c.__name__ not in DATA_CHECKS]
SEEDED_PARAMS = {
    "session_id": "session",
    "subject_id": "subject",
    "check_id": "check",
    "review_id": "review",
}
WEBHOOK_URL = "http://127.0.0.1:9/hook"  # a development receiver (not called by the test)


@dataclass
class Tally:
    """What one identity's run sent and what the checks found."""

    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    undeclared: set[str] = field(default_factory=set)


def _operations(live: Live) -> list[Any]:
    schema = schemathesis.openapi.from_dict(live.app.openapi())
    ops = [result.ok() for result in schema.get_all_operations()]
    # destructive operations last, so the seeded records live through the others
    return sorted(ops, key=lambda op: (op.method.upper() == "DELETE", op.path))


def _headers(live: Live, who: str, case: Any = None) -> dict[str, str]:
    """``who``'s credentials — none for a case generated to lack its Authorization header
    (adding the key back would send a request the case does not describe)."""
    if case is not None and _lacks_auth(case):
        return {}
    return {"tenant": live.auth_a, "other": live.auth_b, "none": {}}[who]


def _lacks_auth(case: Any) -> bool:
    meta = case.meta
    negative = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    return negative and "authorization" not in {k.lower() for k in case.headers or {}}


# -- values a schema cannot describe ---------------------------------------------------------


def _id_number(rng: random.Random) -> str:
    body = f"110105{rng.randint(1950, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    return body + check_character(body)


def _card(rng: random.Random) -> str:
    return with_luhn("622202" + "".join(rng.choice("0123456789") for _ in range(12)))


def _realistic(case: Any, live: Live) -> None:
    """A schema-valid case's semantic fields ← values that can pass (see the docstring)."""
    body, path = case.body, case.operation.path
    if not isinstance(body, dict):
        return
    rng = random.Random(repr(body))
    photo = live.ids["reference_b64"]
    for holder in (body, body.get("meta")):  # a purpose the lender's policy lists
        if isinstance(holder, dict) and isinstance(holder.get("consent"), dict):
            holder["consent"]["purpose"] = rng.choice(DEFAULT_CONSENT_PURPOSES)
    if path == "/v1/subjects":
        meta = body.get("meta", body)
        if isinstance(meta, dict):
            meta["id_number"] = _id_number(rng)
            if "meta" in body:  # multipart: the photo is the file part
                meta.pop("reference_image", None)
                body["reference_image"] = Binary(base64.b64decode(photo))
                _still_valid(case)
            else:
                meta["reference_image"] = photo
    if path == "/v1/enrolments/id-card":  # a readable card of a fictional holder
        body["id_card_front"] = live.ids["card_front_b64"]
        if "id_card_back" in body:
            body["id_card_back"] = live.ids["card_back_b64"]
        body.pop("id_number", None)  # the lender's number must be the card's
    if path == "/v1/enrolments/id-card/captures" and "id_number" in body:
        body["id_number"] = _id_number(rng)
    if isinstance(body.get("image"), str):  # blacklist
        body["image"] = photo
    if isinstance(body.get("photo"), str):  # authority check
        body["photo"] = photo
    if "card_number" in body:
        body["card_number"] = _card(rng)
    if path == "/v1/webhook":
        body["url"] = WEBHOOK_URL


def _still_valid(case: Any) -> None:
    """The body was edited with schema-valid values: it is still what it was generated as.
    (schemathesis re-judges an edited body — on the next read of ``case.meta`` — and judges
    every multipart body with a binary part invalid, which would turn this case negative.)"""
    case._meta.update_validated_hash(ParameterLocation.BODY, case._hash_container(case.body))


# -- the response body declares every field --------------------------------------------------


def _resolve(schema: Any, doc: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _undeclared(value: Any, schema: Any, doc: dict[str, Any], at: str) -> list[str]:
    """Paths of object fields in ``value`` that ``schema`` does not name (objects with named
    properties only: a free-form map names none)."""
    schema = _resolve(schema, doc)
    if not isinstance(schema, dict):
        return []
    for raw in schema.get("anyOf", []):
        branch = _resolve(raw, doc)
        if (value is None) == (branch.get("type") == "null"):
            return _undeclared(value, branch, doc, at)
    if isinstance(value, list):
        return [p for item in value for p in _undeclared(item, schema.get("items"), doc, at + "[]")]
    if not isinstance(value, dict):
        return []
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        return [p for k, v in value.items() for p in _undeclared(v, extra, doc, f"{at}.{k}")]
    out = [f"{at}.{k}" for k in value if k not in props]
    return out + [
        p
        for k, v in value.items()
        if k in props
        for p in _undeclared(v, props[k], doc, f"{at}.{k}")
    ]


def _response_schema(doc: dict[str, Any], op: Any, status: int) -> Any:
    answer = doc["paths"][op.path][op.method.lower()]["responses"].get(str(status), {})
    return answer.get("content", {}).get("application/json", {}).get("schema")


# -- one request -----------------------------------------------------------------------------


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
        headers=_headers(live, who, case),
        timeout=REQUEST_TIMEOUT_S,
    )


def _validate(case: Any, resp: Any, live: Live, who: str, checks: list[Any], tally: Tally) -> None:
    """All of ``checks`` on one response; failures are tallied by check, not raised."""
    try:
        case.validate_response(resp, checks=checks, headers=_headers(live, who, case) or None)
    except (Failure, FailureGroup) as exc:
        found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
        for failure in found:
            key = (type(failure).__name__, f"{case.operation.label} → {resp.status_code}")
            tally.failures[key] += 1
            tally.examples.setdefault(
                key, f"{failure.message}"[:300] + f"\n      {resp.text[:300]}"
            )


@dataclass
class Run:
    """One identity's run over the live service."""

    live: Live
    who: str
    session: requests.Session
    doc: dict[str, Any]
    tally: Tally = field(default_factory=Tally)

    def answer(self, op: Any, case: Any, *, seeded: bool = False) -> None:
        resp = _send(self.session, self.live, case, self.who)
        self.tally.statuses[resp.status_code] += 1
        _check(resp, op.path, self.who, seeded=seeded)
        checks = SEEDED_CHECKS if seeded else ALL_CHECKS
        _validate(case, resp, self.live, self.who, checks, self.tally)
        schema = _response_schema(self.doc, op, resp.status_code)
        if resp.status_code < 300 and schema is not None and _is_json(resp):
            found = _undeclared(resp.json(), schema, self.doc, "")
            self.tally.undeclared.update(f"{op.label}{p}" for p in found)

    def case(self, op: Any, case: Any) -> None:
        """``case`` as generated (made realistic when schema-valid), then with tenant A's ids."""
        if case.meta is not None and case.meta.generation.mode.is_positive:
            _realistic(case, self.live)
        self.answer(op, case)
        names = set(case.path_parameters or {}) & set(SEEDED_PARAMS)
        if names:
            for name in names:
                case.path_parameters[name] = self.live.ids[SEEDED_PARAMS[name]]
            self.answer(op, case, seeded=True)

    def report(self, phase: str, ops: int, seconds: float) -> None:
        tally = self.tally
        total = sum(tally.statuses.values())
        by_check = Counter(k[0] for k in tally.failures.elements())
        print(
            f"\nopenapi {phase} as {self.who}: {ops} operations, {total} requests, "
            f"{len(ALL_CHECKS)} checks, {seconds:.0f} s, "
            f"statuses {dict(sorted(tally.statuses.items()))}, failures by check {dict(by_check)}"
        )
        for key, count in sorted(tally.failures.items()):
            print(f"  {count} × {key[0]}: {key[1]}\n      {tally.examples[key]}")
        assert not tally.failures, sorted(tally.failures)
        assert not tally.undeclared, sorted(tally.undeclared)


def _is_json(resp: Any) -> bool:
    return bool((resp.headers.get("content-type") or [""])[0].startswith("application/json"))


def _strategy(op: Any) -> Any:
    """Schema-valid requests and schema-violating ones (negative mode), half and half."""
    positive = op.as_strategy(GenerationMode.POSITIVE)
    try:
        return positive | op.as_strategy(GenerationMode.NEGATIVE)
    except Exception:  # an operation with nothing to violate (no parameters, no body)
        return positive


def _fuzz_operation(run: Run, op: Any) -> None:
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(op))
    def fuzz(case: Any) -> None:
        run.case(op, case)

    fuzz()


@pytest.mark.parametrize("who", ["none", "other", "tenant"])
def test_openapi_fuzz_with_every_check(live: Live, who: str) -> None:
    ops = _operations(live)
    assert any(op.path == "/v1/subjects" for op in ops)
    start = time.perf_counter()
    with requests.Session() as session:
        run = Run(live, who, session, live.app.openapi())
        for op in ops:
            _fuzz_operation(run, op)
    total = sum(run.tally.statuses.values())
    assert total >= len(ops) * min(FUZZ_EXAMPLES, 5)
    run.report("fuzz", len(ops), time.perf_counter() - start)


@pytest.mark.parametrize("who", ["none", "tenant"])
def test_openapi_coverage_phase_with_every_check(live: Live, who: str) -> None:
    """schemathesis' deterministic coverage cases (boundary values, each constraint broken
    once, missing required parts, methods an operation does not have: 405 with ``Allow``)."""
    schema = schemathesis.openapi.from_dict(live.app.openapi())
    ops = _operations(live)
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    start = time.perf_counter()
    with requests.Session() as session:
        run = Run(live, who, session, live.app.openapi())
        for op in ops:
            config = schema.config.generation_for(operation=op)
            for case in schema.iter_coverage_cases(
                op, generation_modes=modes, generation_config=config
            ):
                run.case(op, case)
    assert sum(run.tally.statuses.values()) >= 10 * len(ops)
    run.report("coverage phase", len(ops), time.perf_counter() - start)

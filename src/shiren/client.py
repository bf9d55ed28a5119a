"""A small, typed Python client for shiren's ``/v1`` REST API, for lenders.

Why it exists: every lender integration re-implements the same five things — bearer auth,
multipart frame uploads, problem+json error parsing, polling, and "may I retry this?".  Getting
the last one wrong is costly: re-sending a ``POST`` that timed out can burn a single-use session
or count twice against the subject's retry limit.  So this client retries **only** idempotent
``GET``s, and only when a retry can help (a broken connection, or a ``502``/``503``/``504``
whose code is retryable); a ``POST`` or ``DELETE`` is sent once and its error handed back.

It imports nothing from the server side (only :mod:`httpx`, the standard library and
:mod:`shiren.errors` for the error base class), so a lender can vendor this one file.

    with ShirenClient("https://kyc.example", api_key="shk_…") as client:
        step = client.post_event(subject_id, "disbursement", amount_minor=5_000_000)
        if step.session is not None:
            check = client.submit_frames(step.session.id, step.session.nonce, jpegs, times_ms)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from shiren.client_types import (
    CardCapture,
    CardEnrolment,
    Check,
    Consent,
    Enrolment,
    Requirement,
    Session,
    StepUp,
    Subject,
    Tip,
    _opt_str,
)
from shiren.errors import ShirenError

RETRYABLE_STATUS = frozenset({502, 503, 504})
"""Statuses a retry can cure (the gateway or the service was momentarily unavailable)."""
NON_RETRYABLE_CODES = frozenset({"input.request_too_large"})
"""Codes that a 5xx/503 may carry but that will fail the same way again."""


class ShirenApiError(ShirenError):
    """A problem+json answer (RFC 9457) from the service, typed.

    ``code`` is the service's stable dotted code (``record.not_found``, ``auth.required``, …);
    branch on it, never on ``title`` or ``detail``.  ``request_id`` is what to quote to the
    operator: it finds the one server log line of the request."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        request_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}", detail=dict(extra or {}))
        self.status = status
        # ``ShirenError.code`` is an ErrorCode enum; the API may return codes newer than this
        # client knows, so the string is kept as sent.
        self.code = code  # type: ignore[assignment]
        self.title = title
        self.detail_text = detail
        self.request_id = request_id
        self.extra: dict[str, Any] = dict(extra or {})
        # whether repeating the same request may succeed (a transient 5xx)
        self.retryable = status in RETRYABLE_STATUS and code not in NON_RETRYABLE_CODES

    def __str__(self) -> str:
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.code}: {self.detail_text}{rid}"


# -- response models ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff for the requests that are safe to repeat."""

    attempts: int = 3
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Honour ``Retry-After`` (capped) when the server sent one, else back off."""
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_delay_s)
            except ValueError:
                pass
        return float(min(self.base_delay_s * (2**attempt), self.max_delay_s))


class ShirenClient:
    """Typed access to every ``/v1`` route; use as a context manager (closes the connections).

    ``transport`` lets tests (or a proxy set-up) supply their own :class:`httpx.BaseTransport`;
    ``http`` a ready :class:`httpx.Client` (e.g. FastAPI's ``TestClient``: in-process tests);
    ``sleep`` is injectable so retry tests do not wait."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        lang: str = "zh-CN",
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept-Language": lang}
        self._owns_http = http is None
        """An injected client belongs to the caller: closing this one must not close it."""
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    # -- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ShirenClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One call.  Only ``GET``s are retried (transport errors, retryable 502/503/504): any
        other method may have changed state before the answer was lost."""
        idempotent = method.upper() == "GET"
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, url, headers=self._headers, **kwargs)
            except httpx.TransportError:
                # A POST whose connection broke may or may not have reached the service.
                if not idempotent or attempt + 1 >= self._retry.attempts:
                    raise
                self._sleep(self._retry.delay(attempt, None))
                attempt += 1
                continue
            if resp.status_code < 400:
                body: dict[str, Any] = resp.json()
                return body
            error = _problem(resp)
            if not (idempotent and error.retryable) or attempt + 1 >= self._retry.attempts:
                raise error
            self._sleep(self._retry.delay(attempt, resp.headers.get("retry-after")))
            attempt += 1

    # -- /v1 -----------------------------------------------------------------------------

    def enrol(
        self,
        *,
        external_ref: str,
        name: str,
        id_number: str,
        consent: Consent,
        reference_image: bytes,
        reference_kind: str = "id_card",
        device_id: str | None = None,
    ) -> Enrolment:
        """``POST /v1/subjects`` (multipart: the photo is sent as bytes, not base64).
        ``device_id``: your identifier of the applicant's device (anti-fraud checks)."""
        meta: dict[str, Any] = {
            "external_ref": external_ref,
            "name": name,
            "id_number": id_number,
            "consent": consent.to_json(),
            "reference_kind": reference_kind,
        }
        if device_id is not None:
            meta["device_id"] = device_id
        doc = self._request(
            "POST",
            "/v1/subjects",
            data={"meta": json.dumps(meta, ensure_ascii=False)},
            files=[("reference_image", ("reference.jpg", reference_image, "image/jpeg"))],
        )
        sub = doc["subject"]
        subject = Subject(str(sub["id"]), str(sub["external_ref"]), str(sub["status"]))
        return Enrolment(subject, Session.from_json(doc["session"]))

    def enrol_with_id_card(
        self,
        *,
        external_ref: str,
        consent: Consent,
        id_card_front: bytes,
        id_card_back: bytes | None = None,
        name: str | None = None,
        id_number: str | None = None,
    ) -> CardEnrolment:
        """``POST /v1/enrolments/id-card``: enrol from the borrower's ID card photos (the card's
        portrait is the reference; name and number come from the card unless you send yours)."""
        body: dict[str, Any] = {
            "external_ref": external_ref,
            "consent": consent.to_json(),
            "id_card_front": base64.b64encode(id_card_front).decode("ascii"),
        }
        if id_card_back is not None:
            body["id_card_back"] = base64.b64encode(id_card_back).decode("ascii")
        body.update({k: v for k, v in (("name", name), ("id_number", id_number)) if v})
        doc = self._request("POST", "/v1/enrolments/id-card", json=body)
        sub = doc["subject"]
        subject = Subject(str(sub["id"]), str(sub["external_ref"]), str(sub["status"]))
        return CardEnrolment(Enrolment(subject, Session.from_json(doc["session"])), doc["id_card"])

    def open_card_capture(
        self,
        *,
        external_ref: str,
        consent: Consent,
        name: str | None = None,
        id_number: str | None = None,
        back_required: bool = True,
    ) -> CardCapture:
        """``POST /v1/enrolments/id-card/captures``: enrolment that starts on the borrower's
        phone with the ID card; send them ``capture_url`` (name and number, when sent, are kept
        only as keyed digests and must agree with the card)."""
        body: dict[str, Any] = {
            "external_ref": external_ref,
            "consent": consent.to_json(),
            "back_required": back_required,
        }
        body.update({k: v for k, v in (("name", name), ("id_number", id_number)) if v})
        return CardCapture.from_json(
            self._request("POST", "/v1/enrolments/id-card/captures", json=body)
        )

    def get_card_capture(self, capture_id: str) -> CardCapture:
        """``GET /v1/enrolments/id-card/captures/{id}``: open, enrolled or expired."""
        return CardCapture.from_json(
            self._request("GET", f"/v1/enrolments/id-card/captures/{capture_id}")
        )

    def post_event(
        self,
        subject_id: str,
        event_type: str,
        *,
        amount_minor: int = 0,
        currency: str = "CNY",
        device_id: str | None = None,
    ) -> StepUp:
        """``POST /v1/events``: the step-up policy's answer, with a session when needed."""
        body: dict[str, Any] = {
            "subject_id": subject_id,
            "type": event_type,
            "amount_minor": amount_minor,
            "currency": currency,
        }
        if device_id is not None:
            body["device_id"] = device_id
        doc = self._request("POST", "/v1/events", json=body)
        session = doc.get("session")
        return StepUp(
            event_id=str(doc["event_id"]),
            requirement=Requirement.from_json(doc["requirement"]),
            session=None if session is None else Session.from_json(session),
        )

    def submit_frames(
        self, session_id: str, nonce: str, frames: Sequence[bytes], times_ms: Sequence[float]
    ) -> Check:
        """``POST /v1/sessions/{id}/frames``: JPEG frames and their times; never retried (a
        session is single use: a repeat would be answered ``session.already_used``)."""
        if len(frames) != len(times_ms):
            raise ValueError("one time per frame is required")
        meta = {"nonce": nonce, "t_ms": [float(t) for t in times_ms]}
        files = [("frames", (f"{i:04d}.jpg", blob, "image/jpeg")) for i, blob in enumerate(frames)]
        doc = self._request(
            "POST",
            f"/v1/sessions/{session_id}/frames",
            data={"meta": json.dumps(meta)},
            files=files,
        )
        return Check.from_json(doc)

    def get_session(self, session_id: str) -> Session:
        """``GET /v1/sessions/{id}``."""
        return Session.from_json(self._request("GET", f"/v1/sessions/{session_id}"))

    def get_check(self, check_id: str) -> Check:
        """``GET /v1/checks/{id}`` (polling a decision)."""
        return Check.from_json(self._request("GET", f"/v1/checks/{check_id}"))

    def erase(self, subject_id: str) -> dict[str, Any]:
        """``DELETE /v1/subjects/{id}``: erase biometrics and identity data (idempotent on the
        server, but not retried here: the caller decides after reading the error)."""
        return self._request("DELETE", f"/v1/subjects/{subject_id}")

    def export(self, subject_id: str) -> dict[str, Any]:
        """``GET /v1/subjects/{id}/export``: everything held about the subject."""
        return self._request("GET", f"/v1/subjects/{subject_id}/export")

    def withdraw_consent(
        self, subject_id: str, purpose: str, version: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/subjects/{id}/consents/withdraw``: stop face processing for the subject
        (face data deleted, later step-ups fall back to non-face methods); idempotent."""
        body: dict[str, Any] = {"purpose": purpose}
        if version is not None:
            body["version"] = version
        return self._request("POST", f"/v1/subjects/{subject_id}/consents/withdraw", json=body)

    def list_reviews(self, status: str = "open") -> list[dict[str, Any]]:
        """``GET /v1/reviews?status=…``: the tenant's manual-review queue, oldest first: face
        reviews (``kind`` ``face``) and non-face cases that ended in review (``fallback``),
        both decided with :meth:`decide_review`."""
        body = self._request("GET", "/v1/reviews", params={"status": status})
        reviews: list[dict[str, Any]] = body["reviews"]
        return reviews

    def decide_review(
        self, review_id: str, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """``POST /v1/reviews/{id}``: ``approve`` or ``reject`` (once: ``review.already_closed``
        afterwards).  Approving an enrolment binds its face only if its liveness passed
        (``face_bound``; ``not_bound_reason`` says why not)."""
        body = {"outcome": outcome, "reviewer": reviewer, "note": note}
        return self._request("POST", f"/v1/reviews/{review_id}", json=body)

    # -- account -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``GET /v1/stats``: your own numbers (``stored_faces``)."""
        return self._request("GET", "/v1/stats")

    def set_webhook(self, url: str, secret: str | None = None) -> dict[str, Any]:
        """``PUT /v1/webhook``: where decisions are posted; without ``secret`` one is generated
        and returned once (``secret``)."""
        body: dict[str, Any] = {"url": url}
        if secret is not None:
            body["secret"] = secret
        return self._request("PUT", "/v1/webhook", json=body)

    # -- anti-fraud (issue 6) ------------------------------------------------------------

    def add_to_blacklist(
        self,
        *,
        reason: str,
        evidence_ref: str,
        added_by: str,
        list_name: str = "default",
        image: bytes | None = None,
        subject_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/blacklist``: put a face (a photo, or one of your subjects' bound face) on
        a named list; ``reason`` is a short code, ``evidence_ref`` your own case reference."""
        body: dict[str, Any] = {
            "list_name": list_name,
            "reason": reason,
            "evidence_ref": evidence_ref,
            "added_by": added_by,
        }
        if image is not None:
            body["image"] = base64.b64encode(image).decode("ascii")
        if subject_id is not None:
            body["subject_id"] = subject_id
        return self._request("POST", "/v1/blacklist", json=body)

    def list_blacklist(
        self, list_name: str | None = None, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """``GET /v1/blacklist``: entries, newest first (never templates)."""
        params: dict[str, Any] = {"limit": limit}
        if list_name is not None:
            params["list_name"] = list_name
        entries: list[dict[str, Any]] = self._request("GET", "/v1/blacklist", params=params)[
            "entries"
        ]
        return entries

    def remove_from_blacklist(self, entry_id: str, removed_by: str) -> dict[str, Any]:
        """``DELETE /v1/blacklist/{id}``: audited with who removed it."""
        return self._request(
            "DELETE", f"/v1/blacklist/{entry_id}", params={"removed_by": removed_by}
        )

    def fraud_findings(self, subject_id: str) -> list[dict[str, Any]]:
        """``GET /v1/subjects/{id}/fraud-findings``: reason codes with evidence, oldest first."""
        doc = self._request("GET", f"/v1/subjects/{subject_id}/fraud-findings")
        findings: list[dict[str, Any]] = doc["findings"]
        return findings

    # -- the non-face path and payouts (issue 6) -----------------------------------------

    def start_fallback(
        self, event_id: str, phone: str, *, refuse_face: bool = False
    ) -> dict[str, Any]:
        """``POST /v1/events/{id}/fallback``: open the non-face path for a lending event (or
        get its open case); ``refuse_face``: the user refuses face processing."""
        body = {"phone": phone, "refuse_face": refuse_face}
        return self._request("POST", f"/v1/events/{event_id}/fallback", json=body)

    def get_fallback(self, flow_id: str) -> dict[str, Any]:
        """``GET /v1/fallbacks/{id}``: the case's state, steps and reasons."""
        return self._request("GET", f"/v1/fallbacks/{flow_id}")

    def list_fallbacks(self, status: str = "review") -> list[dict[str, Any]]:
        """``GET /v1/fallbacks?status=…``: your cases in a status (``review``: waiting for a
        reviewer)."""
        doc = self._request("GET", "/v1/fallbacks", params={"status": status})
        flows: list[dict[str, Any]] = doc["fallbacks"]
        return flows

    def send_sms_code(self, flow_id: str) -> dict[str, Any]:
        """``POST /v1/fallbacks/{id}/sms``: send a one-time code to the case's phone."""
        return self._request("POST", f"/v1/fallbacks/{flow_id}/sms")

    def verify_sms_code(self, flow_id: str, code: str) -> dict[str, Any]:
        """``POST /v1/fallbacks/{id}/sms/verify``: a wrong code is a 200 with ``verified``
        false and ``attempts_left``."""
        return self._request("POST", f"/v1/fallbacks/{flow_id}/sms/verify", json={"code": code})

    def submit_bank_card(self, flow_id: str, card_number: str) -> dict[str, Any]:
        """``POST /v1/fallbacks/{id}/bank-card``: the bank-card 4-element check."""
        body = {"card_number": card_number}
        return self._request("POST", f"/v1/fallbacks/{flow_id}/bank-card", json=body)

    def submit_authority(self, flow_id: str, photo: bytes | None = None) -> dict[str, Any]:
        """``POST /v1/fallbacks/{id}/authority``: name + ID number (+ photo) at the authority."""
        body: dict[str, Any] = {}
        if photo is not None:
            body["photo"] = base64.b64encode(photo).decode("ascii")
        return self._request("POST", f"/v1/fallbacks/{flow_id}/authority", json=body)

    def decide_fallback_review(
        self, flow_id: str, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """``POST /v1/fallbacks/{id}/review``: ``approve`` or ``reject`` a case in review."""
        body = {"outcome": outcome, "reviewer": reviewer, "note": note}
        return self._request("POST", f"/v1/fallbacks/{flow_id}/review", json=body)

    def payout_check(
        self, subject_id: str, card_number: str, phone: str, *, event_id: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/subjects/{id}/payout-check``: whether the payout card belongs to the
        verified person (``decision``: ``allowed`` or ``blocked`` with the mismatches)."""
        body: dict[str, Any] = {"card_number": card_number, "phone": phone}
        if event_id is not None:
            body["event_id"] = event_id
        return self._request("POST", f"/v1/subjects/{subject_id}/payout-check", json=body)


def _problem(resp: httpx.Response) -> ShirenApiError:
    """The typed error of a non-2xx answer (also when a proxy sent HTML instead)."""
    rid = resp.headers.get("x-request-id")
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return ShirenApiError(resp.status_code, "http.error", resp.reason_phrase, "", rid)
    extra = doc.get("extra")
    return ShirenApiError(
        status=int(doc.get("status", resp.status_code)),
        code=str(doc.get("code", "http.error")),
        title=str(doc.get("title", resp.reason_phrase)),
        detail=str(doc.get("detail", "")),
        request_id=_opt_str(doc.get("request_id")) or rid,
        extra=extra if isinstance(extra, dict) else None,
    )


__all__ = [
    "CardEnrolment",
    "Check",
    "Consent",
    "Enrolment",
    "Requirement",
    "RetryPolicy",
    "Session",
    "ShirenApiError",
    "ShirenClient",
    "StepUp",
    "Subject",
    "Tip",
]

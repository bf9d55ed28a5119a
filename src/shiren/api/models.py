"""The typed pieces of the HTTP contract that several resources share.

Request side: the path-id parameters (32 lower-case hex; anything else is simply not found:
404 ``record.not_found``) and the rules the *service* enforces on text, published in the schema
(``pattern``) while the service keeps answering them with its own 400 codes.

Response side: the models of what the service's views return (``to_dict()`` of
:class:`~shiren.service.app.SessionView`, :class:`~shiren.service.app.CheckView`, a fallback
case, a review item), field for field.  They accept fields they do not name
(``extra="allow"``): a field the service adds is passed on, never dropped; the contract test
(``tests/api/test_fuzz_openapi.py``) fails when a response carries a field no model declares.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shiren.domain.entities import Decision, SessionPurpose, SessionStatus, SubjectStatus
from shiren.domain.fallback import FallbackStatus, FallbackTrigger
from shiren.liveness.challenge import Action

ID_PATTERN = "^[0-9a-f]{32}$"
"""Every id shiren issues (subjects, sessions, checks, events, reviews, fallbacks, entries)."""
PRINTABLE = "^[^\\x00-\\x1f\\x7f]*$"
"""What the service accepts as text: no control characters (``input.invalid`` otherwise)."""
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,63}$"
"""A blacklist or reason name (lower-case letters, digits, ``_``, ``.``, ``-``)."""
_SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{_SPACE}]"
"""Text with at least one character that is not white space (``str.strip`` leaves it)."""
PRINTABLE_NOT_BLANK = f"^[^\\x00-\\x1f\\x7f]*[^\\x00-\\x1f\\x7f{_SPACE}][^\\x00-\\x1f\\x7f]*$"
"""Printable text that is not blank once stripped."""


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: the follow-up operation and where its parameters come from."""
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def with_capture_urls(body: dict[str, Any], origin: str) -> dict[str, Any]:
    """Add ``capture_url`` beside every ``capture_token`` in a response body (``origin`` +
    ``/capture/<token>``)."""

    def walk(node: object) -> None:
        if isinstance(node, dict):
            token = node.get("capture_token")
            if isinstance(token, str):
                node["capture_url"] = f"{origin}/capture/{token}"
            for value in node.values():
                walk(value)

    walk(body)
    return body


def _id(what: str) -> Any:
    return Path(
        description=f"The {what}'s id: 32 lower-case hex (anything else: 404 record.not_found)",
        json_schema_extra={"pattern": ID_PATTERN},
    )


SubjectId = Annotated[str, _id("subject")]
SessionId = Annotated[str, _id("session")]
CheckId = Annotated[str, _id("check")]
EventId = Annotated[str, _id("lending event")]
ReviewId = Annotated[str, _id("review item (a face review or a fallback case)")]
FallbackId = Annotated[str, _id("fallback case")]
EntryId = Annotated[str, _id("blacklist entry")]


def _integral(value: object) -> object:
    """JSON Schema's integer: ``5.0`` is one (``"5"`` and ``true`` are not)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integral)]
"""An integer field of a :class:`Strict` body."""


class Strict(BaseModel):
    """A request body: no unknown fields, no type coercion ("5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    """A response body (see the module docstring for ``extra="allow"``)."""

    model_config = ConfigDict(extra="allow")


class Tip(Out):
    code: str = Field(description="A reason code (shiren.reasons.ReasonCode)")
    message: str = Field(description="What the user can do, in the negotiated language")


class ActionStepOut(Out):
    action: Action
    start_ms: int
    end_ms: int


class ColourStepOut(Out):
    name: str
    rgb: list[int]
    start_ms: int
    end_ms: int


class ChallengeOut(Out):
    """The signed liveness challenge the capture must answer."""

    version: int
    nonce: str
    level: str
    issued_at: float
    expires_at: float
    lead_in_ms: int
    duration_ms: int
    actions: list[ActionStepOut]
    colours: list[ColourStepOut]
    signature: str | None
    variant: str = Field(
        default="live",
        description="live (the colour flash, then the actions in their windows); motion (no "
        "flash: the light ladder's retry); recorded (film the actions in order and upload the "
        "video: POST /v1/capture/{token}/recording); read_digits (read the digits aloud: the "
        "same upload, with sound)",
    )
    digits: dict[str, Any] | None = Field(
        default=None,
        description="read_digits: the signed digit schedule (lead_in_ms, duration_ms, steps of "
        "digit, show_ms, window_start_ms, window_end_ms)",
    )


class SessionOut(Out):
    """A capture session (single use): its challenge and, once judged, its check."""

    id: str
    subject_id: str
    purpose: SessionPurpose
    level: str = Field(description="low, normal or high")
    status: SessionStatus
    nonce: str
    created_at: str
    expires_at: str
    challenge: ChallengeOut
    check_id: str | None
    capture_token: str | None = Field(description="Opens the capture page without a key")
    capture_url: str | None = Field(
        default=None, description="`SHIREN_PUBLIC_URL` (or this host) + /capture/<token>"
    )


class CheckOut(Out):
    """A judged capture: the decision, its reasons with tips, the non-face paths."""

    id: str
    session_id: str
    subject_id: str
    decision: Decision
    reasons: list[str]
    tips: list[Tip]
    fallbacks: list[str]
    retry_after_s: int | None
    liveness_score: float | None
    match_score: float | None
    policy_version: str
    created_at: str


class FallbackOut(Out):
    """A non-face case (issue 6): its steps, masked phone and reasons; never the code."""

    id: str
    event_id: str
    subject_id: str
    cause: FallbackTrigger
    status: FallbackStatus
    decision: str | None = Field(description="pass, review, approved, rejected or null")
    steps: list[str]
    next_step: str | None
    step_failures: int
    phone: str
    code_sends: int
    reasons: list[str]
    tips: list[Tip]
    policy_version: str
    created_at: str
    expires_at: str
    closed_at: str | None


class SubjectRef(Out):
    id: str
    external_ref: str
    status: SubjectStatus


__all__ = [
    "ID_PATTERN",
    "NAME_PATTERN",
    "NOT_BLANK",
    "PRINTABLE",
    "PRINTABLE_NOT_BLANK",
    "ChallengeOut",
    "CheckId",
    "CheckOut",
    "EntryId",
    "EventId",
    "FallbackId",
    "FallbackOut",
    "Integer",
    "Out",
    "ReviewId",
    "SessionId",
    "SessionOut",
    "Strict",
    "SubjectId",
    "SubjectRef",
    "Tip",
    "link",
    "with_capture_urls",
]

"""The values :class:`shiren.client.ShirenClient` returns and takes: sessions, subjects, checks,
step-up requirements, consents, and what an ID-card enrolment read.  Plain frozen dataclasses
built from the API's JSON (``from_json``); no HTTP here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Session:
    """A capture session: answer ``challenge`` with frames carrying ``nonce``."""

    id: str
    subject_id: str
    purpose: str
    level: str
    status: str
    nonce: str
    created_at: str
    expires_at: str
    challenge: dict[str, Any]
    check_id: str | None = None
    capture_url: str | None = None
    """The borrower's capture page for this session (send it to them)."""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Session:
        return cls(
            id=str(doc["id"]),
            subject_id=str(doc["subject_id"]),
            purpose=str(doc["purpose"]),
            level=str(doc["level"]),
            status=str(doc["status"]),
            nonce=str(doc["nonce"]),
            created_at=str(doc["created_at"]),
            expires_at=str(doc["expires_at"]),
            challenge=dict(doc["challenge"]),
            check_id=_opt_str(doc.get("check_id")),
            capture_url=_opt_str(doc.get("capture_url")),
        )


@dataclass(frozen=True, slots=True)
class Subject:
    id: str
    external_ref: str
    status: str


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The enrolled subject and the capture session that binds its face when it passes."""

    subject: Subject
    session: Session


@dataclass(frozen=True, slots=True)
class Requirement:
    """The step-up policy's answer for one lending event."""

    needed: bool
    purpose: str | None
    level: str | None
    match_profile: str | None
    max_age_s: int | None
    reasons: tuple[str, ...]
    policy_version: str
    fallbacks: tuple[str, ...]
    retry_after_s: int | None = None
    """With ``limit.locked``: seconds until face checks may be tried again (no session)."""
    challenge: str = "actions"
    """``actions`` or ``read_digits`` (the event's policy requires reading digits aloud)."""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Requirement:
        max_age = doc.get("max_age_s")
        wait = doc.get("retry_after_s")
        return cls(
            needed=bool(doc["needed"]),
            purpose=_opt_str(doc.get("purpose")),
            level=_opt_str(doc.get("level")),
            match_profile=_opt_str(doc.get("match_profile")),
            max_age_s=None if max_age is None else int(max_age),
            reasons=tuple(str(r) for r in doc.get("reasons", ())),
            policy_version=str(doc.get("policy_version", "")),
            fallbacks=tuple(str(f) for f in doc.get("fallbacks", ())),
            retry_after_s=None if wait is None else int(wait),
            challenge=str(doc.get("challenge", "actions")),
        )


@dataclass(frozen=True, slots=True)
class StepUp:
    """A posted lending event; ``session`` is ``None`` when no face check is needed."""

    event_id: str
    requirement: Requirement
    session: Session | None


@dataclass(frozen=True, slots=True)
class Tip:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Check:
    """A judged capture: ``decision`` is pass / retry / review / fallback."""

    id: str
    session_id: str
    subject_id: str
    decision: str
    reasons: tuple[str, ...]
    tips: tuple[Tip, ...]
    fallbacks: tuple[str, ...]
    retry_after_s: int | None
    liveness_score: float | None
    match_score: float | None
    policy_version: str
    created_at: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.decision == "pass"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Check:
        retry = doc.get("retry_after_s")
        live = doc.get("liveness_score")
        match = doc.get("match_score")
        return cls(
            id=str(doc["id"]),
            session_id=str(doc["session_id"]),
            subject_id=str(doc["subject_id"]),
            decision=str(doc["decision"]),
            reasons=tuple(str(r) for r in doc.get("reasons", ())),
            tips=tuple(Tip(str(t["code"]), str(t["message"])) for t in doc.get("tips", ())),
            fallbacks=tuple(str(f) for f in doc.get("fallbacks", ())),
            retry_after_s=None if retry is None else int(retry),
            liveness_score=None if live is None else float(live),
            match_score=None if match is None else float(match),
            policy_version=str(doc.get("policy_version", "")),
            created_at=str(doc.get("created_at", "")),
            raw=dict(doc),
        )


@dataclass(frozen=True, slots=True)
class Consent:
    """The versioned consent the subject accepted (the text itself stays with the lender)."""

    purpose: str
    version: str
    text_sha256: str
    retention_days: int

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "version": self.version,
            "text_sha256": self.text_sha256,
            "retention_days": self.retention_days,
        }


# -- the client --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardCapture:
    """A card capture (``/v1/enrolments/id-card/captures``): send ``capture_url`` to the
    borrower; once ``status`` is ``enrolled``, ``subject_id`` and the selfie ``session_id``."""

    id: str
    status: str
    capture_url: str | None
    subject_id: str | None
    session_id: str | None
    expires_at: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CardCapture:
        return cls(
            id=str(doc["id"]),
            status=str(doc["status"]),
            capture_url=_opt_str(doc.get("capture_url")),
            subject_id=_opt_str(doc.get("subject_id")),
            session_id=_opt_str(doc.get("session_id")),
            expires_at=str(doc["expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class CardEnrolment:
    """``POST /v1/enrolments/id-card``'s answer: the enrolment, and what the card said (fields
    read with their confidence, the ID number masked, each check's outcome, review signals)."""

    enrolment: Enrolment
    id_card: dict[str, Any]

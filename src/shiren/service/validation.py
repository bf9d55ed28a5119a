"""Input rules the use cases share: ids, printable text, consent records, the subject lookup.

Bad input is a typed :class:`~shiren.errors.InputError` with the field named, never a crash:
hostile clients send NUL bytes, lone surrogates and megabyte strings, and PostgreSQL would
raise on some of them instead of answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shiren.domain.entities import Subject
from shiren.errors import ErrorCode, InputError, StateError
from shiren.storage.ports import UnitOfWork

MAX_EXTERNAL_REF = 128
MAX_NAME_CHARS = 64


@dataclass(frozen=True, slots=True)
class ConsentIn:
    """A consent record as the lender's client submits it (separate, versioned)."""

    purpose: str
    version: str
    text_sha256: str
    retention_days: int
    client: str = ""


def is_id(value: str) -> bool:
    """Whether ``value`` can be one of our ids (32 lower-case hex).  Anything else is "not
    found" without a query: a hostile path segment (a NUL byte, a lone surrogate) would make
    PostgreSQL raise instead of answering."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def text(value: str, field_name: str, max_chars: int) -> str:
    """``value`` if it is 1..``max_chars`` printable characters (no control characters, no
    lone surrogates: neither can be stored as UTF-8 text in every database)."""
    if not 1 <= len(value) <= max_chars or any(
        ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value
    ):
        raise InputError(
            f"{field_name} must be 1-{max_chars} printable characters",
            detail={"field": field_name},
        )
    return value


def check_consent(consent: ConsentIn) -> None:
    """``input.invalid`` naming the field unless ``consent`` is well formed."""

    def bad(field_name: str, why: str) -> InputError:
        return InputError(f"consent.{field_name} {why}", detail={"field": f"consent.{field_name}"})

    text(consent.purpose, "consent.purpose", 64)
    text(consent.version, "consent.version", 32)
    digest = consent.text_sha256
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise bad("text_sha256", "must be 64 hex digits")
    if not 1 <= consent.retention_days <= 3650:
        raise bad("retention_days", "must be 1-3650")


def check_purpose(consent: ConsentIn, allowed: Sequence[str], version: str) -> None:
    """``input.consent_purpose_unknown`` unless the consent's purpose is one the lender's
    versioned policy lists (``[consent] purposes``)."""
    if consent.purpose not in allowed:
        raise InputError(
            "consent.purpose is not one of the purposes this lender declared",
            code=ErrorCode.CONSENT_PURPOSE_UNKNOWN,
            detail={
                "field": "consent.purpose",
                "allowed": list(allowed),
                "policy_version": version,
            },
        )


def not_found(entity: str) -> StateError:
    """``record.not_found`` for ``entity`` (the same answer for another tenant's id)."""
    return StateError(
        f"{entity} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": entity}
    )


def require_subject(uow: UnitOfWork, tenant_id: str, subject_id: str) -> Subject:
    """The tenant's subject ``subject_id``, else ``record.not_found``."""
    subject = uow.subjects.get(tenant_id, subject_id) if is_id(subject_id) else None
    if subject is None:
        raise not_found("subject")
    return subject


__all__ = [
    "MAX_EXTERNAL_REF",
    "MAX_NAME_CHARS",
    "ConsentIn",
    "check_consent",
    "is_id",
    "not_found",
    "require_subject",
    "text",
]

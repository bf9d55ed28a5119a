"""Opening and sealing a subject's identity fields outside :class:`ShirenService` (the
fallback and payout use cases): the same keys and AAD as ``ShirenService._subject_key`` —
the subject's own key unwrapped by the tenant key, or the tenant key for subjects enrolled
before subject keys.  Plaintext lives in memory only for the call that needs it."""

from __future__ import annotations

from shiren.domain.entities import Subject, Tenant
from shiren.errors import ErrorCode, StateError
from shiren.privacy import CipherContext, DataKey, open_, seal, unwrap_subject_key
from shiren.service.keys import ServiceKeys


def subject_key(keys: ServiceKeys, tenant: Tenant, subject: Subject) -> DataKey:
    dek = keys.ring.unwrap_tenant_key(tenant.id, tenant.wrapped_dek)
    if subject.wrapped_key is None:
        return dek
    return unwrap_subject_key(dek, tenant.id, subject.id, subject.wrapped_key)


def _ctx(tenant: Tenant, column: str, subject: Subject) -> CipherContext:
    return CipherContext(tenant.id, "subjects", column, subject.id)


def open_identity(keys: ServiceKeys, tenant: Tenant, subject: Subject) -> tuple[str, str]:
    """``(name, id_number)`` of ``subject``; ``subject.not_ready`` once erased."""
    if subject.name_enc is None or subject.id_number_enc is None:
        raise StateError(
            "subject has no identity (erased)",
            code=ErrorCode.SUBJECT_NOT_READY,
            detail={"status": subject.status.value},
        )
    key = subject_key(keys, tenant, subject)
    name = open_(key, subject.name_enc, _ctx(tenant, "name_enc", subject))
    number = open_(key, subject.id_number_enc, _ctx(tenant, "id_number_enc", subject))
    return name.decode("utf-8"), number.decode("ascii")


def seal_field(
    keys: ServiceKeys,
    tenant: Tenant,
    subject: Subject,
    table: str,
    column: str,
    row_id: str,
    data: bytes,
) -> bytes:
    ctx = CipherContext(tenant.id, table, column, row_id)
    return seal(subject_key(keys, tenant, subject), data, ctx)


def open_field(
    keys: ServiceKeys,
    tenant: Tenant,
    subject: Subject,
    table: str,
    column: str,
    row_id: str,
    blob: bytes,
) -> bytes:
    ctx = CipherContext(tenant.id, table, column, row_id)
    return open_(subject_key(keys, tenant, subject), blob, ctx)


__all__ = ["open_field", "open_identity", "seal_field", "subject_key"]

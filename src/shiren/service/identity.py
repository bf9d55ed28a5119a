"""Opening and sealing a subject's identity fields outside :class:`ShirenService` (the
fallback and payout use cases): the same keys and AAD as ``ShirenService._subject_key`` —
the subject's own key unwrapped by the tenant key, or the tenant key for subjects enrolled
before subject keys.  Plaintext lives in memory only for the call that needs it."""

from __future__ import annotations

from shiren.domain.entities import Subject, Tenant
from shiren.errors import ErrorCode, StateError
from shiren.privacy import CipherContext, DataKey, open_, seal, unwrap_subject_key
from shiren.service import tenantkeys
from shiren.service.keys import ServiceKeys


def subject_key(keys: ServiceKeys, tenant: Tenant, subject: Subject) -> DataKey:
    """The key that seals ``subject``'s fields, chosen as ``ShirenService._subject_key`` does:
    its own key unwrapped by the tenant key *of the version that wrapped it* (during a tenant-key
    rotation a subject wrapped by the previous key is not re-wrapped yet), or the current tenant
    key for a subject enrolled before subject keys."""
    deks = keys.ring.unwrap_tenant_keys(tenant.id, tenant.wrapped_dek)
    return _subject_key(deks, tenant, subject)


def _subject_key(deks: tuple[DataKey, ...], tenant: Tenant, subject: Subject) -> DataKey:
    if subject.wrapped_key is None:
        return deks[0]
    dek = tenantkeys.by_version(deks, tenantkeys.wrapper_version(subject.wrapped_key))
    return unwrap_subject_key(dek, tenant.id, subject.id, subject.wrapped_key)


def _opening_key(keys: ServiceKeys, tenant: Tenant, subject: Subject, blob: bytes) -> DataKey:
    """The key to open ``blob`` of ``subject``: a field of a subject without its own key sealed
    before a tenant-key rotation opens with the previous tenant key until it is re-sealed."""
    deks = keys.ring.unwrap_tenant_keys(tenant.id, tenant.wrapped_dek)
    return tenantkeys.for_blob(deks, _subject_key(deks, tenant, subject), blob)


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
    name_key = _opening_key(keys, tenant, subject, subject.name_enc)
    number_key = _opening_key(keys, tenant, subject, subject.id_number_enc)
    name = open_(name_key, subject.name_enc, _ctx(tenant, "name_enc", subject))
    number = open_(number_key, subject.id_number_enc, _ctx(tenant, "id_number_enc", subject))
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
    return open_(_opening_key(keys, tenant, subject, blob), blob, ctx)


__all__ = ["open_field", "open_identity", "seal_field", "subject_key"]

"""The key vault: the one place that picks, wraps and opens the keys that seal a tenant's data.

Why one place: the rules for *which* key opens a blob are subtle, and a second copy of them has
already drifted once (a fallback flow opened a subject's fields with the current tenant key only,
and failed mid-rotation).  Everything that seals or opens a tenant's or a subject's data asks the
vault:

* every tenant has a data key (``Tenant.wrapped_dek``, wrapped by the master-key ring); while a
  tenant-key rotation runs (:mod:`shiren.service.rotation`) the row holds the new key and the
  previous one, and each sealed blob names the version that sealed it
  (:mod:`shiren.service.tenantkeys`);
* every subject has its own key, wrapped by the tenant key of some version
  (``Subject.wrapped_key``): erasure deletes it, and every copy of that subject's ciphertext —
  replicas, WAL, backups — becomes unreadable (crypto-shredding).  Subjects enrolled before
  subject keys existed (``wrapped_key`` NULL) stay sealed with the tenant key;
* each blob is bound to its row and column (AES-256-GCM additional data), so a ciphertext moved
  to another row or column does not open.

Tenant keys are cached per wrapped value (unwrapping costs a KDF); subject keys deliberately are
not: a cached subject key would outlive the subject's erasure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shiren.domain.entities import Subject, Tenant
from shiren.domain.idnumber import IdNumber
from shiren.errors import ErrorCode, StateError
from shiren.privacy import (
    CipherContext,
    DataKey,
    new_data_key,
    open_,
    seal,
    unwrap_subject_key,
    wrap_subject_key,
)
from shiren.privacy import pseudonym as make_pseudonym
from shiren.service import tenantkeys
from shiren.service.keys import ServiceKeys


@dataclass
class _Caches:
    deks: dict[tuple[str, bytes], tuple[DataKey, ...]] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    """The last tenant row each key was taken from, for code that holds only a tenant id (the
    face index's file sealers) and runs inside an open unit of work: reading the row again
    would open a second one, which SQLite's single writer answers with "database is locked"."""


class KeyVault:
    """Picks, wraps and opens keys for one process (see the module docstring)."""

    def __init__(self, keys: ServiceKeys) -> None:
        self.keys = keys
        self._caches = _Caches()

    # -- tenant keys ------------------------------------------------------------------------

    def tenant_keys(self, tenant: Tenant) -> tuple[DataKey, ...]:
        """The tenant's data keys: the current one first, then (while a tenant-key rotation
        runs) the previous one."""
        self._caches.tenants[tenant.id] = tenant
        cache_key = (tenant.id, tenant.wrapped_dek)
        deks = self._caches.deks.get(cache_key)
        if deks is None:
            deks = self.keys.ring.unwrap_tenant_keys(tenant.id, tenant.wrapped_dek)
            self._caches.deks[cache_key] = deks
        return deks

    def tenant_key(self, tenant: Tenant) -> DataKey:
        """The tenant key new tenant-level data (blacklist entries, face index files, evidence)
        is sealed with."""
        return self.tenant_keys(tenant)[0]

    def tenant_row(self, tenant_id: str) -> Tenant | None:
        """The tenant row this process last sealed or opened with (None: not yet)."""
        return self._caches.tenants.get(tenant_id)

    # -- subject keys -----------------------------------------------------------------------

    def new_subject_key(self, tenant: Tenant, subject_id: str) -> tuple[DataKey, bytes]:
        """A fresh key for a new subject and its wrapping under the current tenant key (store
        the wrapping in ``Subject.wrapped_key``; use the key to seal the subject's fields)."""
        key = new_data_key()
        return key, wrap_subject_key(self.tenant_key(tenant), tenant.id, subject_id, key)

    def subject_key(self, tenant: Tenant, subject: Subject) -> DataKey:
        """The key that seals ``subject``'s fields: its own key, unwrapped by the tenant key *of
        the version that wrapped it* (mid-rotation a subject may still be wrapped by the previous
        key), or the current tenant key for a subject enrolled before subject keys."""
        deks = self.tenant_keys(tenant)
        if subject.wrapped_key is None:
            return deks[0]
        dek = tenantkeys.by_version(deks, tenantkeys.wrapper_version(subject.wrapped_key))
        return unwrap_subject_key(dek, tenant.id, subject.id, subject.wrapped_key)

    def pseudonym(self, tenant: Tenant, id_number: IdNumber) -> str:
        """The keyed, tenant-scoped pseudonym of a parsed ID number (daily caps and duplicate
        checks work on it without decrypting anything)."""
        return make_pseudonym(self.keys.pseudonym_key(tenant.id), id_number)

    # -- sealing and opening ----------------------------------------------------------------

    def seal(
        self, key: DataKey, tenant: Tenant, table: str, column: str, row_id: str, data: bytes
    ) -> bytes:
        """``data`` sealed with ``key``, bound to ``table.column`` of row ``row_id``."""
        return seal(key, data, CipherContext(tenant.id, table, column, row_id))

    def open(
        self, key: DataKey, tenant: Tenant, table: str, column: str, row_id: str, blob: bytes
    ) -> bytes:
        """Open ``blob`` sealed with ``key`` — or, for a field of a subject without its own key
        sealed before a tenant-key rotation and not re-sealed yet, with the tenant key of the
        blob's version."""
        key = tenantkeys.for_blob(self.tenant_keys(tenant), key, blob)
        return open_(key, blob, CipherContext(tenant.id, table, column, row_id))

    def seal_field(
        self, tenant: Tenant, subject: Subject, table: str, column: str, row_id: str, data: bytes
    ) -> bytes:
        """``data`` of ``subject`` sealed with the subject's key."""
        return self.seal(self.subject_key(tenant, subject), tenant, table, column, row_id, data)

    def open_field(
        self, tenant: Tenant, subject: Subject, table: str, column: str, row_id: str, blob: bytes
    ) -> bytes:
        """A blob of ``subject`` opened with the right key (see :meth:`open`)."""
        return self.open(self.subject_key(tenant, subject), tenant, table, column, row_id, blob)

    def open_identity(self, tenant: Tenant, subject: Subject) -> tuple[str, str]:
        """``(name, id_number)`` of ``subject`` (plaintext lives only for the caller's call);
        ``subject.not_ready`` once erased."""
        if subject.name_enc is None or subject.id_number_enc is None:
            raise StateError(
                "subject has no identity (erased)",
                code=ErrorCode.SUBJECT_NOT_READY,
                detail={"status": subject.status.value},
            )
        key = self.subject_key(tenant, subject)
        name = self.open(key, tenant, "subjects", "name_enc", subject.id, subject.name_enc)
        number = self.open(
            key, tenant, "subjects", "id_number_enc", subject.id, subject.id_number_enc
        )
        return name.decode("utf-8"), number.decode("ascii")


__all__ = ["KeyVault"]

"""Choosing among a tenant's data keys while a tenant-key rotation is in progress.

During a rotation (:mod:`shiren.service.rotation`) ``Tenant.wrapped_dek`` holds the new key and
the previous one (:func:`shiren.privacy.bundle_tenant_keys`): rows not yet re-sealed were made
with the previous key.  Every sealed blob names the version of the key that sealed it, and
every wrapped subject key names its wrapping tenant key (``tenant-dek-v<N>``), so readers pick
the right key without trying each one.
"""

from __future__ import annotations

from collections.abc import Sequence

from shiren.privacy import DataKey, DecryptError, blob_key_version, wrapped_kek_id

_PREFIX = "tenant-dek-v"


def wrapper_version(wrapped_subject_key: bytes) -> int | None:
    """The tenant-key version that wrapped a subject key (``None`` if it does not say)."""
    try:
        kek_id = wrapped_kek_id(wrapped_subject_key)
    except DecryptError:
        return None
    if not kek_id.startswith(_PREFIX) or not kek_id[len(_PREFIX) :].isdigit():
        return None
    return int(kek_id[len(_PREFIX) :])


def by_version(deks: Sequence[DataKey], version: int | None) -> DataKey:
    """The key of ``version`` among ``deks`` (current first), else the current one (opening
    with it then fails with a typed :class:`~shiren.privacy.DecryptError`)."""
    for dek in deks:
        if dek.version == version:
            return dek
    return deks[0]


def for_blob(deks: Sequence[DataKey], key: DataKey, blob: bytes) -> DataKey:
    """The key to open ``blob`` with: ``key`` (a subject key, or the current tenant key) when
    the versions agree, else the tenant key of the blob's version — a field of a subject without
    its own key, sealed before the rotation and not re-sealed yet."""
    try:
        version = blob_key_version(blob)
    except DecryptError:
        return key
    if version == key.version or key not in deks:
        return key
    return by_version(deks, version)


__all__ = ["by_version", "for_blob", "wrapper_version"]

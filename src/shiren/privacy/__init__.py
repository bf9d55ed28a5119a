"""Protecting personal data at rest and in logs.

* :mod:`shiren.privacy.crypto` — AES-256-GCM envelope encryption (master key → tenant key →
  subject key → field), master-key rotation by re-wrapping, crypto-shredding.
* :mod:`shiren.privacy.pseudonym` — keyed, tenant-scoped pseudonyms of ID numbers for lookups.
* :mod:`shiren.privacy.redact` — scrubbing ID numbers and blobs from log text.

No storage, no API, no settings reading: keys are passed in, bytes come out.
"""

from __future__ import annotations

from shiren.privacy.crypto import (
    CipherContext,
    DataKey,
    DecryptError,
    DecryptProblem,
    KeyRing,
    MasterKey,
    UnknownKeyError,
    blob_key_version,
    bundle_tenant_keys,
    new_data_key,
    open_,
    rewrap_subject_key,
    seal,
    split_tenant_keys,
    unwrap_subject_key,
    wrap_subject_key,
    wrapped_kek_id,
)
from shiren.privacy.pseudonym import PseudonymKey, pseudonym, pseudonyms_equal
from shiren.privacy.redact import RedactingFilter, redact

__all__ = [
    "CipherContext",
    "DataKey",
    "DecryptError",
    "DecryptProblem",
    "KeyRing",
    "MasterKey",
    "PseudonymKey",
    "RedactingFilter",
    "UnknownKeyError",
    "blob_key_version",
    "bundle_tenant_keys",
    "new_data_key",
    "open_",
    "pseudonym",
    "pseudonyms_equal",
    "redact",
    "rewrap_subject_key",
    "seal",
    "split_tenant_keys",
    "unwrap_subject_key",
    "wrap_subject_key",
    "wrapped_kek_id",
]

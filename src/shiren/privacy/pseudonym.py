"""Keyed pseudonyms of ID numbers: find a subject by ID number without storing the number.

``Subject.id_pseudonym`` holds ``HMAC-SHA256(pepper, normalised ID number)``.  A plain hash would
not do: there are only ~10^11 well-formed ID numbers (region × birth date × sequence), so anyone
holding an unkeyed SHA-256 could invert it by enumeration in hours.  With a secret key the
database alone reveals nothing.

The key (the *pepper*) is derived per tenant with HKDF-SHA256 from a master key and the tenant id:

* different per tenant, so two lenders' tables cannot be joined on pseudonyms, and one tenant's
  export says nothing about another's subjects;
* stable across runs and processes, so a lookup finds a subject enrolled months ago.

Stability has a price: pseudonyms depend on the master key they were derived from.  Derive them
from one fixed key id (the *pseudonym root*), and keep that key in the :class:`KeyRing` — retired
keys stay there — when the envelope-encryption master key is rotated.  Replacing the root itself
means recomputing every pseudonym from the decrypted ID numbers (a migration, not a rotation).

Pseudonyms are bound to the *normalised* number (:class:`~shiren.domain.idnumber.IdNumber`), so
``...x`` and ``...X``, and a 15-digit number and its 18-digit conversion, give the same value.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shiren.domain.idnumber import IdNumber
from shiren.privacy.crypto import KEY_BYTES, KeyRing, MasterKey

__all__ = ["PseudonymKey", "pseudonym", "pseudonyms_equal"]

_HKDF_SALT: Final = b"shiren/pseudonym/v1"
_DOMAIN_ID_NUMBER: Final = b"cn-resident-id\x00"
"""Domain separation, so that a future pseudonym of another kind of value never collides."""


@dataclass(frozen=True, slots=True, repr=False)
class PseudonymKey:
    """A tenant's pepper.  ``repr`` shows the tenant and master key id, never the key."""

    tenant_id: str
    master_key_id: str
    key: bytes

    @classmethod
    def derive(cls, master: MasterKey, tenant_id: str) -> PseudonymKey:
        """HKDF-SHA256(ikm=master key, salt="shiren/pseudonym/v1", info="tenant:" + tenant id)."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=_HKDF_SALT,
            info=b"tenant:" + tenant_id.encode("utf-8"),
        )
        return cls(tenant_id, master.key_id, hkdf.derive(master.key))

    @classmethod
    def from_ring(cls, ring: KeyRing, tenant_id: str, *, root_key_id: str) -> PseudonymKey:
        """The pepper derived from the ring's key ``root_key_id`` — named explicitly, because
        silently using "the current key" would change every pseudonym at the next rotation."""
        return cls.derive(ring.get(root_key_id), tenant_id)

    def __repr__(self) -> str:
        return f"PseudonymKey(tenant_id={self.tenant_id!r}, master_key_id={self.master_key_id!r})"


def pseudonym(key: PseudonymKey, id_number: IdNumber) -> str:
    """The tenant-scoped pseudonym of an ID number: 64 lower-case hex characters."""
    message = _DOMAIN_ID_NUMBER + id_number.number.encode("ascii")
    return hmac.new(key.key, message, hashlib.sha256).hexdigest()


def pseudonyms_equal(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess matched."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))

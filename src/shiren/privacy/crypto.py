"""AES-256-GCM envelope encryption: master key → tenant data key → subject key → field.

Three levels of keys, each wrapped (encrypted) by the one above it::

    MasterKey (settings / KMS, by key id) ──wraps──► tenant DataKey (Tenant.wrapped_dek)
    tenant DataKey ──wraps──► subject DataKey (one per subject; optional)
    tenant or subject DataKey ──seals──► field blobs (``*_enc`` columns)

Why envelope encryption: the master key never touches row data, so rotating it only re-wraps one
small key per tenant (:meth:`KeyRing.rewrap`) instead of re-encrypting every row, and it can be
rotated without downtime because retired master keys stay in the :class:`KeyRing` — by key id —
until every wrapped key names the current one (:meth:`KeyRing.needs_rewrap`).

Why subject keys: *crypto-shredding*.  Data sealed under a subject's own key becomes unreadable
for good once that subject's wrapped key is deleted, even in places that cannot be edited
(replicas, WAL, old backups hold only ciphertext whose key is gone — although a backup that
still holds the wrapped subject key can still open it until that backup expires).

Binding: every ciphertext is authenticated together with associated data (AAD) naming where it
belongs — :class:`CipherContext` (tenant, table, column, row id) for fields, and (purpose, tenant,
subject, wrapping key id, key version) for wrapped keys.  A blob copied to another row, column or
tenant, or a wrapped key moved to another tenant, fails to open instead of decrypting into the
wrong place.

Blob formats (all integers big-endian; everything before the nonce is also part of the AAD, so
a header cannot be edited either)::

    sealed field   0x01 | key version (u32) | nonce (12) | ciphertext + tag (16)
    wrapped key    0x02 | len(kek id) (u8) | kek id (ASCII) | key version (u32) | nonce (12)
                   | ciphertext (32) + tag (16)

Nonces are 12 random bytes per message.  With random nonces NIST SP 800-38D allows 2^32
messages per key; a tenant key should be rotated (a new :class:`DataKey` version) long before
that — at, say, 2^30 sealed fields.

Failures are typed: :class:`DecryptError` (``crypto.decrypt_failed``, not retryable) for a
wrong key, a wrong context, a tampered or truncated blob; :class:`UnknownKeyError`
(``crypto.key_unknown``) when a wrapped key names a master key that is not in the ring.  No
error message ever contains key material or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shiren.errors import ConfigError, ErrorCode, ServiceError

__all__ = [
    "KEY_BYTES",
    "CipherContext",
    "DataKey",
    "DecryptError",
    "DecryptProblem",
    "KeyRing",
    "MasterKey",
    "UnknownKeyError",
    "blob_key_version",
    "bundle_tenant_keys",
    "new_data_key",
    "open_",
    "rewrap_subject_key",
    "seal",
    "split_tenant_keys",
    "unwrap_subject_key",
    "wrap_subject_key",
    "wrapped_kek_id",
]

KEY_BYTES: Final = 32
"""AES-256."""
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
FORMAT_SEALED_V1: Final = 0x01
FORMAT_WRAPPED_V1: Final = 0x02
FORMAT_BUNDLE_V1: Final = 0x03
_U16: Final = struct.Struct(">H")
_U64: Final = struct.Struct(">Q")
_U32: Final = struct.Struct(">I")
_MAX_VERSION: Final = 2**32 - 1
_MAX_KEY_ID: Final = 255
_SEALED_HEADER: Final = 1 + _U32.size
_AAD_SEALED: Final = b"shiren/sealed/v1\x00"
_AAD_WRAPPED: Final = b"shiren/wrapped/v1\x00"
_PURPOSE_TENANT: Final = "tenant"
_PURPOSE_SUBJECT: Final = "subject"


class DecryptProblem(StrEnum):
    """The ``reason`` detail of a :class:`DecryptError`."""

    FORMAT = "format"
    """Not a blob of a known format, or truncated."""
    KEY_VERSION = "key_version"
    """The blob was made with another version of the key than the one given."""
    AUTHENTICATION = "authentication"
    """Wrong key, wrong context (AAD) or tampered bytes: AES-GCM cannot tell these apart."""
    UNKNOWN_KEY = "unknown_key"
    """The wrapping master key is not in the ring."""


class DecryptError(ServiceError):
    """A blob or wrapped key cannot be opened.  Not retryable: the same bytes will fail again.

    ``detail = {"reason": DecryptProblem, ...}``; never key material, never plaintext.
    """

    code = ErrorCode.CRYPTO_DECRYPT_FAILED
    retryable = False

    def __init__(self, problem: DecryptProblem, **detail: str | int) -> None:
        super().__init__(
            f"decryption failed ({problem})", detail={"reason": str(problem), **detail}
        )
        self.problem = problem


class UnknownKeyError(DecryptError):
    """A wrapped key names a master key id that the :class:`KeyRing` does not hold: a retired
    key was removed from the settings before every tenant key was re-wrapped."""

    code = ErrorCode.CRYPTO_KEY_UNKNOWN

    def __init__(self, key_id: str) -> None:
        super().__init__(DecryptProblem.UNKNOWN_KEY, key_id=key_id)


def _check_key_bytes(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ConfigError(f"{what} must be exactly {KEY_BYTES} bytes", detail={"key": what})


def _check_version(version: int) -> None:
    if not 0 <= version <= _MAX_VERSION:
        raise ValueError(f"key version must be in 0..{_MAX_VERSION}")


@dataclass(frozen=True, slots=True, repr=False)
class MasterKey:
    """A key-encryption key from the settings (or a KMS), known by ``key_id``.

    The id is stored in every key it wraps, so the ring can find the right one after rotation.
    ``repr`` shows only the id.
    """

    key_id: str
    key: bytes

    def __post_init__(self) -> None:
        _check_key_bytes(self.key, "master key")
        raw = self.key_id.encode("ascii", errors="replace")
        if not self.key_id or len(raw) > _MAX_KEY_ID or not self.key_id.isascii():
            raise ConfigError(
                "master key id must be 1-255 ASCII characters", detail={"key": "master key id"}
            )

    @classmethod
    def from_base64(cls, key_id: str, text: str) -> MasterKey:
        """A master key from settings: standard or URL-safe base64 of 32 bytes."""
        cleaned = text.strip()
        try:
            key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                "master key is not valid base64", detail={"key": "master key"}
            ) from None
        return cls(key_id, key)

    @classmethod
    def generate(cls, key_id: str) -> MasterKey:
        """A fresh random master key (for tests and for ``shiren keys new``-style tooling)."""
        return cls(key_id, secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True, repr=False)
class DataKey:
    """A data-encryption key (a tenant's or a subject's) and its version.

    The version is written into every blob the key seals, so that after a tenant key rotation
    the caller knows which key version to fetch (:func:`blob_key_version`).
    """

    key: bytes
    version: int = 1

    def __post_init__(self) -> None:
        _check_key_bytes(self.key, "data key")
        _check_version(self.version)

    def __repr__(self) -> str:
        return f"DataKey(version={self.version})"


def new_data_key(version: int = 1) -> DataKey:
    """A fresh random 256-bit data key."""
    return DataKey(secrets.token_bytes(KEY_BYTES), version)


@dataclass(frozen=True, slots=True)
class CipherContext:
    """Where a sealed field lives; authenticated as AAD so the blob opens only there.

    Encoded with length prefixes, so no two different contexts share an encoding
    (``("a|b", "c")`` and ``("a", "b|c")`` stay distinct).
    """

    tenant_id: str
    table: str
    column: str
    row_id: str | int

    def encode(self) -> bytes:
        return _fields(self.tenant_id, self.table, self.column, str(self.row_id))


def _fields(*values: str) -> bytes:
    out = bytearray()
    for value in values:
        raw = value.encode("utf-8")
        out += _U32.pack(len(raw)) + raw
    return bytes(out)


# ---- sealing fields ----


def seal(dek: DataKey, plaintext: bytes, aad: CipherContext) -> bytes:
    """Encrypt ``plaintext`` under ``dek``, bound to ``aad``; a self-describing blob."""
    header = bytes([FORMAT_SEALED_V1]) + _U32.pack(dek.version)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(dek.key).encrypt(nonce, plaintext, _AAD_SEALED + aad.encode() + header)
    return header + nonce + ciphertext


def blob_key_version(blob: bytes) -> int:
    """The data-key version a sealed blob was made with (to pick the key before opening it)."""
    if len(blob) < _SEALED_HEADER + NONCE_BYTES + TAG_BYTES or blob[0] != FORMAT_SEALED_V1:
        raise DecryptError(DecryptProblem.FORMAT)
    version: int = _U32.unpack_from(blob, 1)[0]
    return version


def open_(dek: DataKey, blob: bytes, aad: CipherContext) -> bytes:
    """Decrypt a blob from :func:`seal`; :class:`DecryptError` unless key, context and every
    byte are exactly right.  (Named ``open_`` so it does not shadow the built-in.)"""
    version = blob_key_version(blob)
    if version != dek.version:
        raise DecryptError(DecryptProblem.KEY_VERSION, blob_version=version)
    header = blob[:_SEALED_HEADER]
    nonce = blob[_SEALED_HEADER : _SEALED_HEADER + NONCE_BYTES]
    try:
        return AESGCM(dek.key).decrypt(
            nonce, blob[_SEALED_HEADER + NONCE_BYTES :], _AAD_SEALED + aad.encode() + header
        )
    except InvalidTag:
        raise DecryptError(DecryptProblem.AUTHENTICATION) from None


# ---- wrapping keys ----


@dataclass(frozen=True, slots=True)
class _Wrapped:
    kek_id: str
    version: int
    header: bytes
    nonce: bytes
    ciphertext: bytes


def _parse_wrapped(wrapped: bytes) -> _Wrapped:
    if len(wrapped) < 2 or wrapped[0] != FORMAT_WRAPPED_V1:
        raise DecryptError(DecryptProblem.FORMAT)
    id_len = wrapped[1]
    header_len = 2 + id_len + _U32.size
    if id_len == 0 or len(wrapped) != header_len + NONCE_BYTES + KEY_BYTES + TAG_BYTES:
        raise DecryptError(DecryptProblem.FORMAT)
    try:
        kek_id = wrapped[2 : 2 + id_len].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptError(DecryptProblem.FORMAT) from None
    return _Wrapped(
        kek_id=kek_id,
        version=_U32.unpack_from(wrapped, 2 + id_len)[0],
        header=wrapped[:header_len],
        nonce=wrapped[header_len : header_len + NONCE_BYTES],
        ciphertext=wrapped[header_len + NONCE_BYTES :],
    )


def _wrap(kek: bytes, kek_id: str, key: DataKey, binding: bytes) -> bytes:
    raw_id = kek_id.encode("ascii")
    header = bytes([FORMAT_WRAPPED_V1, len(raw_id)]) + raw_id + _U32.pack(key.version)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(kek).encrypt(nonce, key.key, _AAD_WRAPPED + binding + header)
    return header + nonce + ciphertext


def _unwrap(kek: bytes, parsed: _Wrapped, binding: bytes) -> DataKey:
    try:
        raw = AESGCM(kek).decrypt(
            parsed.nonce, parsed.ciphertext, _AAD_WRAPPED + binding + parsed.header
        )
    except InvalidTag:
        raise DecryptError(DecryptProblem.AUTHENTICATION) from None
    return DataKey(raw, parsed.version)


def wrapped_kek_id(wrapped: bytes) -> str:
    """The id of the key that wrapped ``wrapped`` (a master key id, or ``tenant-dek-v<N>``);
    for a bundle (:func:`bundle_tenant_keys`), that of its current key."""
    return _parse_wrapped(split_tenant_keys(wrapped)[0][0]).kek_id


# ---- tenant key bundles (a tenant-key rotation in progress) ----


def bundle_tenant_keys(wrapped_keys: Iterable[bytes], started_ms: int) -> bytes:
    """Several wrapped tenant keys in one ``Tenant.wrapped_dek`` value, the current one first.

    Why: while a tenant key is rotated, rows sealed with the previous key are re-sealed in
    batches; readers must open both meanwhile, and the tenant row has one key column.  Format::

        0x03 | started (u64, unix ms) | count (u8) | (len (u16) | wrapped key)*

    Every member is an ordinary wrapped key (bound to the tenant by its AAD), so a bundle is no
    weaker than its members; ``started`` (when the rotation began) is not secret.
    """
    keys = list(wrapped_keys)
    if not 1 <= len(keys) <= 255 or any(not 0 < len(k) <= 0xFFFF for k in keys):
        raise ValueError("a bundle holds 1-255 wrapped keys")
    out = bytearray([FORMAT_BUNDLE_V1]) + _U64.pack(started_ms) + bytes([len(keys)])
    for key in keys:
        out += _U16.pack(len(key)) + key
    return bytes(out)


def split_tenant_keys(value: bytes) -> tuple[list[bytes], int | None]:
    """The wrapped keys in ``value`` (current first) and the bundle's start time; a plain
    wrapped key is a bundle of one without a start time."""
    if not value or value[0] != FORMAT_BUNDLE_V1:
        return [value], None
    if len(value) < 10:
        raise DecryptError(DecryptProblem.FORMAT)
    started: int = _U64.unpack_from(value, 1)[0]
    count, pos, keys = value[9], 10, []
    for _ in range(count):
        if pos + 2 > len(value):
            raise DecryptError(DecryptProblem.FORMAT)
        size: int = _U16.unpack_from(value, pos)[0]
        keys.append(value[pos + 2 : pos + 2 + size])
        pos += 2 + size
    if not keys or pos != len(value) or any(not k for k in keys):
        raise DecryptError(DecryptProblem.FORMAT)
    return keys, started


class KeyRing:
    """The current master key plus retired ones, by key id.

    New tenant keys are always wrapped by :attr:`current`; a wrapped key made under a retired
    master key still opens, so rotation is: deploy the new key as current with the old one
    retired, :meth:`rewrap` every tenant's wrapped key (in the background, no downtime), then
    drop the retired key from the settings once :meth:`needs_rewrap` is false everywhere.
    """

    def __init__(self, current: MasterKey, retired: Iterable[MasterKey] = ()) -> None:
        self._current = current
        self._keys: dict[str, MasterKey] = {current.key_id: current}
        for key in retired:
            known = self._keys.get(key.key_id)
            if known is not None and known.key != key.key:
                raise ConfigError(
                    "two different master keys share one key id",
                    detail={"key": "master key id", "key_id": key.key_id},
                )
            self._keys.setdefault(key.key_id, key)

    @property
    def current(self) -> MasterKey:
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id the ring can unwrap, current first."""
        return (self._current.key_id, *(k for k in self._keys if k != self._current.key_id))

    def get(self, key_id: str) -> MasterKey:
        """The master key ``key_id``; :class:`UnknownKeyError` when absent."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(key_id) from None

    def wrap_tenant_key(self, tenant_id: str, dek: DataKey) -> bytes:
        """``dek`` wrapped by the current master key, bound to ``tenant_id`` and its version."""
        binding = _fields(_PURPOSE_TENANT, tenant_id, "")
        return _wrap(self._current.key, self._current.key_id, dek, binding)

    def _unwrap_one(self, tenant_id: str, wrapped: bytes) -> DataKey:
        parsed = _parse_wrapped(wrapped)
        master = self.get(parsed.kek_id)
        return _unwrap(master.key, parsed, _fields(_PURPOSE_TENANT, tenant_id, ""))

    def unwrap_tenant_key(self, tenant_id: str, wrapped: bytes) -> DataKey:
        """The (current) tenant key inside ``wrapped``, under whichever ring key wrapped it."""
        return self._unwrap_one(tenant_id, split_tenant_keys(wrapped)[0][0])

    def unwrap_tenant_keys(self, tenant_id: str, wrapped: bytes) -> tuple[DataKey, ...]:
        """Every tenant key in ``wrapped``: the current one first, then — while a tenant-key
        rotation is in progress (:func:`bundle_tenant_keys`) — the previous one(s)."""
        return tuple(self._unwrap_one(tenant_id, k) for k in split_tenant_keys(wrapped)[0])

    def needs_rewrap(self, wrapped: bytes) -> bool:
        """Whether ``wrapped`` (or any key of its bundle) was made under a master key other
        than the current one."""
        return any(
            _parse_wrapped(k).kek_id != self._current.key_id for k in split_tenant_keys(wrapped)[0]
        )

    def rewrap(self, tenant_id: str, wrapped: bytes) -> bytes:
        """``wrapped`` re-wrapped under the current master key; the tenant key itself (and so
        every blob it sealed) is unchanged.  Idempotent in effect; always uses a fresh nonce.
        A bundle stays a bundle (each member re-wrapped, same start time)."""
        keys, started = split_tenant_keys(wrapped)
        new = [self.wrap_tenant_key(tenant_id, self._unwrap_one(tenant_id, k)) for k in keys]
        return new[0] if started is None else bundle_tenant_keys(new, started)

    def __repr__(self) -> str:
        return f"KeyRing(current={self._current.key_id!r}, key_ids={list(self.key_ids)!r})"


def _tenant_kek_id(tenant_dek: DataKey) -> str:
    return f"tenant-dek-v{tenant_dek.version}"


def wrap_subject_key(
    tenant_dek: DataKey, tenant_id: str, subject_id: str, subject_key: DataKey
) -> bytes:
    """A subject's own key wrapped by its tenant's key, bound to (tenant, subject).

    Erasing the subject = deleting this wrapped key: every blob sealed with the subject key is
    then unreadable, wherever copies of it live.
    """
    binding = _fields(_PURPOSE_SUBJECT, tenant_id, subject_id)
    return _wrap(tenant_dek.key, _tenant_kek_id(tenant_dek), subject_key, binding)


def unwrap_subject_key(
    tenant_dek: DataKey, tenant_id: str, subject_id: str, wrapped: bytes
) -> DataKey:
    """The subject key inside ``wrapped``; :class:`DecryptError` for another tenant or subject,
    or when ``tenant_dek`` is not the version that wrapped it."""
    parsed = _parse_wrapped(wrapped)
    if parsed.kek_id != _tenant_kek_id(tenant_dek):
        raise DecryptError(DecryptProblem.KEY_VERSION)
    return _unwrap(tenant_dek.key, parsed, _fields(_PURPOSE_SUBJECT, tenant_id, subject_id))


def rewrap_subject_key(
    old_tenant_dek: DataKey,
    new_tenant_dek: DataKey,
    tenant_id: str,
    subject_id: str,
    wrapped: bytes,
) -> bytes:
    """Move a wrapped subject key to a new tenant-key version (tenant key rotation)."""
    subject_key = unwrap_subject_key(old_tenant_dek, tenant_id, subject_id, wrapped)
    return wrap_subject_key(new_tenant_dek, tenant_id, subject_id, subject_key)

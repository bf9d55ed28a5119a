"""Envelope encryption, key rotation, crypto-shredding, pseudonyms and log redaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from contextlib import AbstractContextManager
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.domain.idnumber import parse
from shiren.errors import ConfigError, ErrorCode, ServiceError
from shiren.privacy import (
    CipherContext,
    DataKey,
    DecryptError,
    DecryptProblem,
    KeyRing,
    MasterKey,
    PseudonymKey,
    RedactingFilter,
    UnknownKeyError,
    blob_key_version,
    new_data_key,
    open_,
    pseudonym,
    pseudonyms_equal,
    redact,
    rewrap_subject_key,
    seal,
    unwrap_subject_key,
    wrap_subject_key,
    wrapped_kek_id,
)

ID_NUMBER = "11010519491231002X"
CTX = CipherContext("tenant-a", "subject", "id_number_enc", "row-1")
MK1 = MasterKey("mk-2024", bytes(range(32)))
MK2 = MasterKey("mk-2025", bytes(range(32, 64)))


def fails(problem: DecryptProblem) -> AbstractContextManager[pytest.ExceptionInfo[DecryptError]]:
    return pytest.raises(DecryptError, match=str(problem))


# ---- sealing ----


@given(st.binary(max_size=2048), st.text(max_size=20), st.text(max_size=20))
@settings(max_examples=50)
def test_round_trip(plaintext: bytes, tenant: str, row: str) -> None:
    dek = new_data_key()
    ctx = CipherContext(tenant, "t", "c", row)
    assert open_(dek, seal(dek, plaintext, ctx), ctx) == plaintext


def test_blob_is_self_describing_and_random() -> None:
    dek = new_data_key(version=7)
    blob = seal(dek, b"hello", CTX)
    assert blob[0] == 0x01
    assert blob_key_version(blob) == 7
    assert len(blob) == 1 + 4 + 12 + len(b"hello") + 16
    assert seal(dek, b"hello", CTX) != blob  # fresh nonce each time


def test_no_plaintext_or_key_in_blobs() -> None:
    dek = new_data_key()
    plaintext = ID_NUMBER.encode() * 4
    blob = seal(dek, plaintext, CTX)
    for window in range(0, len(plaintext) - 6):
        assert plaintext[window : window + 6] not in blob
    assert dek.key not in blob
    wrapped = KeyRing(MK1).wrap_tenant_key("tenant-a", dek)
    assert dek.key not in wrapped
    assert MK1.key not in wrapped


@pytest.mark.parametrize(
    "other",
    [
        replace(CTX, tenant_id="tenant-b"),
        replace(CTX, table="template"),
        replace(CTX, column="name_enc"),
        replace(CTX, row_id="row-2"),
        CipherContext("tenant-a", "subjec", "tid_number_enc", "row-1"),  # shifted boundary
    ],
)
def test_blob_moved_to_another_place_fails(other: CipherContext) -> None:
    dek = new_data_key()
    blob = seal(dek, b"secret", CTX)
    with fails(DecryptProblem.AUTHENTICATION):
        open_(dek, blob, other)


def test_int_and_str_row_ids_are_the_same_place() -> None:
    dek = new_data_key()
    blob = seal(dek, b"x", CipherContext("t", "a", "b", 5))
    assert open_(dek, blob, CipherContext("t", "a", "b", "5")) == b"x"


def test_wrong_key_and_wrong_version_fail() -> None:
    dek = new_data_key()
    blob = seal(dek, b"secret", CTX)
    with fails(DecryptProblem.AUTHENTICATION):
        open_(new_data_key(), blob, CTX)
    with fails(DecryptProblem.KEY_VERSION) as caught:
        open_(DataKey(dek.key, version=2), blob, CTX)
    assert caught.value.detail == {"reason": "key_version", "blob_version": 1}


def test_tampering_with_any_byte_fails() -> None:
    dek = new_data_key()
    blob = seal(dek, b"0123456789", CTX)
    for index in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[index] ^= flip
            with pytest.raises(DecryptError):
                open_(dek, bytes(tampered), CTX)
    for broken in (b"", blob[:-1], blob[:20], blob + b"\x00", b"\x02" + blob[1:]):
        with pytest.raises(DecryptError):
            open_(dek, broken, CTX)


def test_decrypt_error_is_a_typed_non_retryable_service_error() -> None:
    dek = new_data_key()
    with pytest.raises(ServiceError) as caught:
        open_(dek, seal(dek, b"secret", CTX), replace(CTX, row_id="x"))
    error = caught.value
    assert error.code is ErrorCode.CRYPTO_DECRYPT_FAILED
    assert error.retryable is False
    assert "secret" not in str(error.to_dict())


# ---- keys ----


def test_key_material_is_validated_and_never_printed() -> None:
    with pytest.raises(ConfigError):
        MasterKey("mk", b"short")
    with pytest.raises(ConfigError):
        MasterKey("", bytes(32))
    with pytest.raises(ConfigError):
        MasterKey("ключ", bytes(32))
    with pytest.raises(ConfigError):
        MasterKey.from_base64("mk", "not base64!")
    with pytest.raises(ConfigError):
        DataKey(bytes(16))
    text = base64.urlsafe_b64encode(MK1.key).decode()
    assert MasterKey.from_base64("mk-2024", text) == MK1
    assert MasterKey.from_base64("mk-2024", base64.b64encode(MK1.key).decode()) == MK1
    dek = new_data_key()
    ring = KeyRing(MK1, [MK2])
    for obj in (MK1, dek, ring, PseudonymKey.derive(MK1, "t")):
        shown = repr(obj)
        assert MK1.key.hex() not in shown
        assert dek.key.hex() not in shown
        assert "\\x" not in shown


def test_ring_rejects_two_keys_with_one_id() -> None:
    with pytest.raises(ConfigError):
        KeyRing(MK1, [MasterKey("mk-2024", bytes(32))])
    assert KeyRing(MK1, [MK1, MK2]).key_ids == ("mk-2024", "mk-2025")


def test_tenant_key_is_bound_to_its_tenant() -> None:
    ring = KeyRing(MK1)
    dek = new_data_key(version=3)
    wrapped = ring.wrap_tenant_key("tenant-a", dek)
    assert ring.unwrap_tenant_key("tenant-a", wrapped) == dek
    assert wrapped_kek_id(wrapped) == "mk-2024"
    with fails(DecryptProblem.AUTHENTICATION):
        ring.unwrap_tenant_key("tenant-b", wrapped)
    tampered = bytearray(wrapped)
    tampered[-20] ^= 1
    with fails(DecryptProblem.AUTHENTICATION):
        ring.unwrap_tenant_key("tenant-a", bytes(tampered))
    version_edit = bytearray(wrapped)
    version_edit[2 + len("mk-2024") + 3] ^= 1  # the key version in the header
    with fails(DecryptProblem.AUTHENTICATION):
        ring.unwrap_tenant_key("tenant-a", bytes(version_edit))
    for broken in (b"", wrapped[:-1], wrapped + b"\x00", b"\x01" + wrapped[1:]):
        with fails(DecryptProblem.FORMAT):
            ring.unwrap_tenant_key("tenant-a", broken)


def test_master_key_rotation_rewraps_without_touching_data() -> None:
    old_ring = KeyRing(MK1)
    dek = new_data_key()
    wrapped = old_ring.wrap_tenant_key("tenant-a", dek)
    blob = seal(dek, b"template bytes", CTX)

    # deploy: MK2 current, MK1 retired; old wrapped keys keep working meanwhile
    ring = KeyRing(MK2, retired=[MK1])
    assert ring.needs_rewrap(wrapped)
    assert open_(ring.unwrap_tenant_key("tenant-a", wrapped), blob, CTX) == b"template bytes"

    rewrapped = ring.rewrap("tenant-a", wrapped)
    assert wrapped_kek_id(rewrapped) == "mk-2025"
    assert not ring.needs_rewrap(rewrapped)
    assert open_(ring.unwrap_tenant_key("tenant-a", rewrapped), blob, CTX) == b"template bytes"

    # finally MK1 is dropped: re-wrapped keys open, stale ones fail with a typed error
    new_only = KeyRing(MK2)
    assert open_(new_only.unwrap_tenant_key("tenant-a", rewrapped), blob, CTX) == b"template bytes"
    with pytest.raises(UnknownKeyError) as caught:
        new_only.unwrap_tenant_key("tenant-a", wrapped)
    assert caught.value.code is ErrorCode.CRYPTO_KEY_UNKNOWN
    assert caught.value.detail == {"reason": "unknown_key", "key_id": "mk-2024"}
    assert isinstance(caught.value, DecryptError)


def test_wrapped_key_relabelled_with_another_key_id_fails() -> None:
    ring = KeyRing(MK2, retired=[MasterKey("mk-2026", bytes(range(64, 96)))])
    wrapped = ring.wrap_tenant_key("t", new_data_key())
    relabelled = wrapped.replace(b"mk-2025", b"mk-2026")
    with fails(DecryptProblem.AUTHENTICATION):
        ring.unwrap_tenant_key("t", relabelled)


# ---- subject keys and crypto-shredding ----


def test_erasing_a_subject_key_makes_its_data_unreadable() -> None:
    tenant_dek = new_data_key()
    key_store: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}
    for subject in ("alice", "bob"):
        subject_key = new_data_key()
        key_store[subject] = wrap_subject_key(tenant_dek, "tenant-a", subject, subject_key)
        ctx = CipherContext("tenant-a", "template", "template_enc", subject)
        blobs[subject] = seal(subject_key, f"{subject} template".encode(), ctx)

    def read(subject: str) -> bytes:
        key = unwrap_subject_key(tenant_dek, "tenant-a", subject, key_store[subject])
        ctx = CipherContext("tenant-a", "template", "template_enc", subject)
        return open_(key, blobs[subject], ctx)

    assert read("alice") == b"alice template"
    del key_store["alice"]  # erasure
    with pytest.raises(KeyError):
        read("alice")
    ctx = CipherContext("tenant-a", "template", "template_enc", "alice")
    for guess in (tenant_dek, new_data_key()):  # nothing left that opens the blob
        with pytest.raises(DecryptError):
            open_(guess, blobs["alice"], ctx)
    assert read("bob") == b"bob template"


def test_subject_key_is_bound_to_tenant_subject_and_tenant_key_version() -> None:
    tenant_dek = new_data_key(version=1)
    subject_key = new_data_key()
    wrapped = wrap_subject_key(tenant_dek, "tenant-a", "alice", subject_key)
    assert wrapped_kek_id(wrapped) == "tenant-dek-v1"
    assert unwrap_subject_key(tenant_dek, "tenant-a", "alice", wrapped) == subject_key
    with fails(DecryptProblem.AUTHENTICATION):
        unwrap_subject_key(tenant_dek, "tenant-a", "bob", wrapped)
    with fails(DecryptProblem.AUTHENTICATION):
        unwrap_subject_key(tenant_dek, "tenant-b", "alice", wrapped)
    with fails(DecryptProblem.AUTHENTICATION):  # a tenant-key blob is no subject-key blob
        KeyRing(MasterKey("tenant-dek-v1", tenant_dek.key)).unwrap_tenant_key("tenant-a", wrapped)

    new_tenant_dek = new_data_key(version=2)
    moved = rewrap_subject_key(tenant_dek, new_tenant_dek, "tenant-a", "alice", wrapped)
    assert unwrap_subject_key(new_tenant_dek, "tenant-a", "alice", moved) == subject_key
    with fails(DecryptProblem.KEY_VERSION):
        unwrap_subject_key(tenant_dek, "tenant-a", "alice", moved)


# ---- pseudonyms ----


def _reference_pseudonym(master: bytes, tenant: str, number: str) -> str:
    """HKDF-SHA256 (RFC 5869) and HMAC written out, independent of the implementation."""
    prk = hmac.new(b"shiren/pseudonym/v1", master, hashlib.sha256).digest()
    okm = hmac.new(prk, b"tenant:" + tenant.encode() + b"\x01", hashlib.sha256).digest()
    message = b"cn-resident-id\x00" + number.encode()
    return hmac.new(okm, message, hashlib.sha256).hexdigest()


def test_pseudonym_is_pinned_stable_and_per_tenant() -> None:
    idn = parse(ID_NUMBER)
    key_a = PseudonymKey.derive(MK1, "tenant-a")
    value = pseudonym(key_a, idn)
    assert value == "4d7e41513856fae9dad8195efb90c3d7b2860f7c63113a24069276030de66d05"
    assert value == _reference_pseudonym(MK1.key, "tenant-a", ID_NUMBER)
    assert pseudonym(PseudonymKey.derive(MK1, "tenant-a"), idn) == value
    assert pseudonym(PseudonymKey.derive(MK1, "tenant-b"), idn) != value
    assert pseudonym(PseudonymKey.derive(MK2, "tenant-a"), idn) != value
    assert pseudonym(key_a, parse("110105491231002")) == value  # legacy form
    assert pseudonym(key_a, parse(ID_NUMBER.lower())) == value
    assert ID_NUMBER not in value


def test_pseudonym_root_survives_master_key_rotation() -> None:
    before = PseudonymKey.from_ring(KeyRing(MK1), "t", root_key_id="mk-2024")
    after = PseudonymKey.from_ring(KeyRing(MK2, [MK1]), "t", root_key_id="mk-2024")
    assert pseudonym(before, parse(ID_NUMBER)) == pseudonym(after, parse(ID_NUMBER))
    with pytest.raises(UnknownKeyError):
        PseudonymKey.from_ring(KeyRing(MK2), "t", root_key_id="mk-2024")


def test_pseudonyms_equal() -> None:
    value = pseudonym(PseudonymKey.derive(MK1, "t"), parse(ID_NUMBER))
    assert pseudonyms_equal(value, str(value))
    assert not pseudonyms_equal(value, value[:-1] + "0" if value[-1] != "0" else value[:-1] + "1")
    assert not pseudonyms_equal(value, "名字")


# ---- redaction ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"id={ID_NUMBER} ok", "id=[id-number] ok"),
        (f"身份证{ID_NUMBER.lower()}号", "身份证[id-number]号"),
        ("legacy 110105491231002.", "legacy [id-number]."),
        ("order 1234567890123456789012 kept", "order 1234567890123456789012 kept"),
        ("phone 13800138000 kept", "phone 13800138000 kept"),
        ("sha " + "ab" * 32, "sha " + "ab" * 32),
        ("/v1/tenants/" + "0f3c2a1e-" * 9, "/v1/tenants/" + "0f3c2a1e-" * 9),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_removes_blobs() -> None:
    blob = base64.b64encode(seal(new_data_key(), b"x" * 64, CTX)).decode()
    assert len(blob) > 64
    assert redact(f"blob={blob}!") == "blob=[blob]!"
    urlsafe = base64.urlsafe_b64encode(bytes(range(200))).decode()
    assert redact(urlsafe) == "[blob]"


def test_redacting_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("shiren.test.redact")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="shiren.test.redact"):
            logger.info("subject %s enrolled", ID_NUMBER)
    finally:
        logger.filters.clear()
    assert ID_NUMBER not in caplog.text
    assert "subject [id-number] enrolled" in caplog.text

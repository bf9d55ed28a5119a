"""No plaintext biometrics or ID numbers at rest: scan the SQLite file bytes and every row of
every table (SQLite and PostgreSQL) for known markers.

The service encrypts for real; here a trivial XOR stands in for it, so the test proves two
things: storage writes ``*_enc`` bytes verbatim (no plaintext copy anywhere: indexes, logs,
other columns), and the scanner (:mod:`shiren.storage.leakscan`, reusable by service tests)
really finds plaintext — positive controls are planted and must be found.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path

import pytest

from shiren.storage.leakscan import (
    marker_forms,
    scan_bytes,
    scan_database,
    scan_files,
    sqlite_files,
)
from shiren.storage.ports import erase_subject_biometrics
from shiren.storage.sql import checkpoint_sqlite

from . import builders as b
from .conftest import Backend, open_backend

KEY = b"\x5a\xc3\x17\x99\x2e\x71\xe4"
TEMPLATE = b"FAKE-TEMPLATE\x00\x01" + struct.pack("<8f", *(0.125 * i for i in range(8))) * 8
ID_NUMBER = "11010519491231002X"
NAME = "张三丰"
CONTROL_TEXT = "CONTROL-PLAINTEXT-7f3a"
CONTROL_BYTES = b"CONTROL-BYTES-\x00\xff-91c2"


def xor(data: bytes) -> bytes:
    """The stand-in 'encryption' (the service plugs in AES-GCM)."""
    return bytes(x ^ k for x, k in zip(data, cycle(KEY), strict=False))


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def sql_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with open_backend(request.param, tmp_path_factory.mktemp(request.param)) as backend:
        yield backend


def _store(backend: Backend) -> dict[str, str]:
    t = b.tenant(wrapped_dek=CONTROL_BYTES)
    s = b.subject(
        t.id,
        external_ref=CONTROL_TEXT,
        id_number_enc=xor(ID_NUMBER.encode()),
        name_enc=xor(NAME.encode()),
    )
    se = b.session(t.id, s.id)
    c = b.check(t.id, se.id, s.id)
    with backend.factory() as uow:
        uow.tenants.add(t)
        uow.subjects.add(s)
        uow.sessions.add(se)
        uow.checks.add(c)
        uow.templates.add(b.template(t.id, s.id, template_enc=xor(TEMPLATE)))
        uow.references.add(b.reference(t.id, s.id, template_enc=xor(TEMPLATE[::-1])))
        uow.evidence.add(b.evidence(t.id, c.id, image_enc=xor(TEMPLATE * 3)))
        uow.audit.append(b.draft(t.id, payload=f'{{"dek":"{CONTROL_BYTES.hex()}"}}'), b.chain_hash)
        uow.commit()
    return {"tenant": t.id, "subject": s.id}


def test_no_plaintext_markers_at_rest(sql_backend: Backend) -> None:
    sql_backend.reset()
    _store(sql_backend)
    engine = sql_backend.engine
    assert engine is not None
    assert scan_database(engine, [TEMPLATE, TEMPLATE[::-1], ID_NUMBER, NAME]) == []

    # positive controls: plaintext that *is* stored must be found, in rows and (SQLite) files
    hits = scan_database(engine, [CONTROL_TEXT, CONTROL_BYTES])
    found = {(h.marker[:8], h.encoding) for h in hits}
    assert ("CONTROL-", "raw") in found  # the text column
    assert (CONTROL_BYTES.hex()[:8], "raw") in found  # the bytes column
    assert (CONTROL_BYTES.hex()[:8], "hex") in found  # hex inside the audit payload
    wheres = {h.where.split(".")[0] for h in hits}
    assert {"subjects", "tenants", "audit_events"} <= wheres
    if engine.dialect.name == "sqlite":
        assert any(h.where.startswith("file:") for h in hits)
    else:
        assert any(h.where.endswith(".*") for h in hits)  # the row-as-text view


def test_sqlite_erasure_leaves_no_ciphertext_in_the_files(tmp_path: Path) -> None:
    """``secure_delete`` + a WAL checkpoint: erased ciphertext is overwritten, not just unlinked."""
    with open_backend("sqlite", tmp_path) as backend:
        ids = _store(backend)
        engine = backend.engine
        assert engine is not None
        ciphertexts = [xor(TEMPLATE), xor(TEMPLATE[::-1]), xor(ID_NUMBER.encode())]
        checkpoint_sqlite(engine)
        assert scan_files(sqlite_files(engine), ciphertexts)  # present before erasure
        with backend.factory() as uow:
            erase_subject_biometrics(uow, ids["tenant"], ids["subject"])
            uow.subjects.erase(ids["tenant"], ids["subject"], b.at(1))
            uow.commit()
        checkpoint_sqlite(engine)
        assert scan_files(sqlite_files(engine), ciphertexts) == []


def test_scanner_finds_every_encoding() -> None:
    import base64

    marker = b"\x00secret-bytes\xff"
    for encoded in (marker, marker.hex().encode(), marker.hex().upper().encode()):
        assert scan_bytes(b"xx" + encoded + b"yy", [marker], "t")
    for prefix in range(3):
        assert scan_bytes(base64.b64encode(b"p" * prefix + marker + b"s"), [marker], "t")
    assert scan_bytes(b"nothing here", [marker], "t") == []
    with pytest.raises(ValueError, match="empty"):
        marker_forms(b"")

"""The sealed, durable half of an embedded gallery: id map, snapshot + journal, one lock.

Why apart from the structures: HNSW (:mod:`shiren.fraud.hnsw_gallery`) and IVF
(:mod:`shiren.fraud.ivf_gallery`) hold the vectors differently but must persist them the same way,
so that a gallery written by one can be read (and migrated) by the other and a crash loses the same
nothing with either.  :class:`SealedGallery` owns everything but the vectors; a structure provides
``_insert``/``_delete``/``_dump``/``_restore``/``search``.

Persistence: a snapshot (the serialised structure plus the id map) and an append-only journal of
the changes since; every record is sealed by the injected :class:`Sealer` (AES-GCM with the
tenant key in the service; the identity in tests that say so).  ``persist()`` writes a new
snapshot atomically and empties the journal; loading replays the journal over the snapshot, so a
crash loses nothing that ``add``/``remove`` returned from.  The journal records (an id and its
vector, or a removal) are the same for both structures.  Snapshot files start with a magic:
``SHIX1`` is an HNSW snapshot, ``SHIX2`` an IVF one; an :class:`~shiren.fraud.ivf_gallery.IvfIndex`
that finds an HNSW snapshot (a gallery written before the IVF) migrates it — every vector is read
back from the usearch index and redistributed — and writes an IVF snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shiren.errors import ConfigError, ErrorCode, ShirenError
from shiren.fraud.index import Hit, Vector, check_id, unit

log = logging.getLogger("shiren.fraud")

Sealer = Callable[[str, str, bytes], bytes]
"""``(tenant_id, purpose, data) → blob``: seal (or open) one persisted record."""

_MAGIC = b"SHIX1"
"""HNSW (usearch) snapshot."""
_MAGIC_IVF = b"SHIX2"
"""IVF snapshot."""
_LEN = struct.Struct(">I")


def identity_seal(_tenant: str, _purpose: str, data: bytes) -> bytes:
    """The default :data:`Sealer`: the record as it is (tests, and callers that seal nothing)."""
    return data


def bad_file() -> ConfigError:
    return ConfigError("unreadable face index file", code=ErrorCode.CONFIG_INVALID)


class SealedGallery:
    """The id map, the sealed snapshot + journal and the lock; subclasses hold the vectors."""

    magic = b""

    def __init__(self, dim: int, path: Path | None, tenant_id: str, seal: Sealer, open_: Sealer):
        self._dim = dim
        self._path = path
        self._tenant = tenant_id
        self._seal, self._open = seal, open_
        self._keys: dict[str, int] = {}
        self._next = 1
        self._journalled = 0
        self.snapshot_every = 10_000
        """Journal records after which the next change writes a fresh snapshot (bounds the
        replay at start-up)."""
        self._lock = threading.RLock()
        self._threads = 1

    def _open_file(self) -> None:
        if self._path is not None:
            try:
                self._load(self._path)
            except ShirenError as exc:
                self._discard(self._path, exc)

    @property
    def dim(self) -> int:
        return self._dim

    # -- what a structure provides -------------------------------------------------------

    def _insert(self, key: int, v: Vector) -> None:
        raise NotImplementedError

    def _insert_many(
        self, entry_ids: list[str], keys: np.ndarray[Any, Any], m: np.ndarray[Any, Any]
    ) -> None:
        raise NotImplementedError

    def _delete(self, key: int) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _dump(self) -> tuple[dict[str, Any], bytes]:
        raise NotImplementedError

    def _restore(self, magic: bytes, meta: dict[str, Any], payload: bytes) -> None:
        raise NotImplementedError

    def search(self, vector: Vector, k: int) -> list[Hit]:
        raise NotImplementedError

    def memory_bytes(self) -> int:
        raise NotImplementedError

    # -- changes ---------------------------------------------------------------------------

    def add(self, entry_id: str, vector: Vector) -> None:
        v = unit(vector, self._dim)
        with self._lock:
            self._apply_add(check_id(entry_id), v)
            self._journal({"op": "add", "id": entry_id}, v)

    def add_many(
        self, entry_ids: list[str], vectors: np.ndarray[Any, Any], threads: int = 1
    ) -> None:
        """Bulk build (benchmarks, rebuilds): one batched insert of new ids, not journalled —
        call :meth:`persist` afterwards."""
        if not entry_ids:
            return
        m = np.asarray(vectors, dtype=np.float32)
        m = m / np.linalg.norm(m, axis=1, keepdims=True)
        with self._lock:
            keys = np.arange(self._next, self._next + len(entry_ids), dtype=np.uint64)
            for entry_id in entry_ids:
                if check_id(entry_id) in self._keys:
                    raise ConfigError("add_many needs new ids", code=ErrorCode.INPUT_INVALID)
            for entry_id, key in zip(entry_ids, keys.tolist(), strict=True):
                self._keys[entry_id] = key
            self._next += len(entry_ids)
            self._threads = threads
            self._insert_many(entry_ids, keys, m)

    def remove(self, entry_id: str) -> bool:
        with self._lock:
            if not self._apply_remove(entry_id):
                return False
            self._journal({"op": "remove", "id": entry_id}, None)
            return True

    def _apply_add(self, entry_id: str, v: Vector) -> None:
        self._apply_remove(entry_id)
        key = self._next
        self._next += 1
        self._insert(key, v)
        self._keys[entry_id] = key

    def _apply_remove(self, entry_id: str) -> bool:
        key = self._keys.pop(entry_id, None)
        if key is None:
            return False
        self._delete(key)
        return True

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._keys

    def ids(self) -> set[str]:
        """Every entry id of this gallery (the service reconciles it with the sealed rows, so a
        stray entry is pruned instead of the gallery being rebuilt)."""
        with self._lock:
            return set(self._keys)

    # -- persistence -----------------------------------------------------------------------

    def persist(self) -> None:
        """Write a sealed snapshot atomically and start an empty journal."""
        if self._path is None:
            return
        with self._lock:
            meta, payload = self._dump()
            meta = {**meta, "next": self._next}
            body = _frame(json.dumps(meta).encode()) + payload
            del payload
            blob = self.magic + self._seal(self._tenant, "index.snapshot", body)
            del body
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
            self._journal_path().unlink(missing_ok=True)
            self._journalled = 0

    def _journal_path(self) -> Path:
        assert self._path is not None
        return self._path.with_suffix(".journal")

    def _journal(self, record: dict[str, str], vector: Vector | None) -> None:
        if self._path is None:
            return
        append_journal(self._journal_path(), self._tenant, self._seal, record, vector)
        self._journalled += 1
        if self._journalled >= self.snapshot_every:
            self.persist()

    def _discard(self, path: Path, exc: ShirenError) -> None:
        """An index file that cannot be read any more is derived data, not a record: sealed
        with a tenant key that a rotation has since retired, or damaged.  Start empty (the
        service rebuilds the galleries from the sealed templates) rather than fail every check
        of the tenant.  The files are moved aside (``*.unreadable``), never deleted, so a wrong
        key in the configuration loses nothing."""
        log.warning("face index file unreadable (%s): set aside, starting empty", exc.code.value)
        self._reset()
        self._keys, self._next = {}, 1
        for old in (path, self._journal_path()):
            if old.exists():
                old.replace(old.with_name(old.name + ".unreadable"))

    def _load(self, path: Path) -> None:
        if path.exists():
            raw = path.read_bytes()
            magic = raw[: len(_MAGIC)]
            if magic not in (_MAGIC, _MAGIC_IVF):
                raise ConfigError("not a shiren face index file", code=ErrorCode.CONFIG_INVALID)
            body = self._open(self._tenant, "index.snapshot", raw[len(_MAGIC) :])
            del raw
            meta_raw, rest = _unframe(body)
            meta = json.loads(meta_raw)
            try:
                self._restore(magic, meta, rest)
            except (ValueError, KeyError) as exc:
                raise bad_file() from exc
            self._next = int(meta["next"])
        journal = self._journal_path()
        if journal.exists():
            self._replay(journal.read_bytes())

    def _replay(self, data: bytes) -> None:
        pos = 0
        while pos + _LEN.size <= len(data):
            (n,) = _LEN.unpack_from(data, pos)
            chunk = data[pos + _LEN.size : pos + _LEN.size + n]
            if len(chunk) < n:  # a torn last write: it never returned, so it never happened
                break
            pos += _LEN.size + n
            record_raw, vec = _unframe(self._open(self._tenant, "index.journal", chunk))
            record = json.loads(record_raw)
            if record["op"] == "add":
                self._apply_add(record["id"], np.frombuffer(vec, dtype=np.float32).copy())
            else:
                self._apply_remove(record["id"])


def append_journal(
    journal: Path, tenant_id: str, seal: Sealer, record: dict[str, str], vector: Vector | None
) -> None:
    """Append one sealed change to a gallery's journal (durable when this returns)."""
    body = _frame(json.dumps(record).encode()) + (b"" if vector is None else vector.tobytes())
    sealed = seal(tenant_id, "index.journal", body)
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "ab") as fh:
        fh.write(_LEN.pack(len(sealed)) + sealed)
        fh.flush()
        os.fsync(fh.fileno())


def _frame(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


def _unframe(data: bytes) -> tuple[bytes, bytes]:
    (n,) = _LEN.unpack_from(data, 0)
    return data[_LEN.size : _LEN.size + n], data[_LEN.size + n :]


__all__ = [
    "SealedGallery",
    "Sealer",
    "append_journal",
    "bad_file",
    "identity_seal",
]

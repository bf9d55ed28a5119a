"""The embedded 1:N index: usearch HNSW in process, persisted next to the SQLite database.

Why usearch (measured in docs/FRAUD.md): a prebuilt wheel (no compiler), native removal of
entries, and the whole index serialises to a byte buffer, so the file on disk can be *sealed with
the tenant key* like every other biometric blob; faiss's HNSW cannot remove entries and hnswlib
ships as a source distribution that needs a C++ compiler on every machine.

Parameters (measured, docs/FRAUD.md): 32 links per node, 64 candidates while inserting (cheap
adds), 512 while searching (recall ≥ 99 % on crowded face templates; queries stay a few ms).

Import order: loading usearch's extension *before* onnxruntime's crashes the process
(segmentation fault inside ``import onnxruntime``; usearch 2.26.6, onnxruntime 1.32.0 wheels), the
other order is fine — so this module imports onnxruntime first (tests/fraud/test_import_order.py).

Persistence: a snapshot (the serialised index plus the id map) and an append-only journal of the
changes since; every record is sealed by the injected :class:`Sealer` (AES-GCM with the tenant
key in the service; the identity in tests that say so).  ``persist()`` writes a new snapshot
atomically and empties the journal; loading replays the journal over the snapshot, so a crash
loses nothing that ``add``/``remove`` returned from.
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
import onnxruntime  # noqa: F401  -- must load before usearch: see below
from usearch.index import Index

from shiren.errors import ConfigError, ErrorCode, ShirenError
from shiren.fraud.index import DIM, FaceIndex, Hit, Vector, check_id, unit

log = logging.getLogger("shiren.fraud")

Sealer = Callable[[str, str, bytes], bytes]
"""``(tenant_id, purpose, data) → blob``: seal (or open) one persisted record."""

_MAGIC = b"SHIX1"
_LEN = struct.Struct(">I")


def _identity(_tenant: str, _purpose: str, data: bytes) -> bytes:
    return data


class HnswIndex:
    """One tenant gallery in a usearch HNSW graph (cosine), with durable snapshot + journal."""

    def __init__(
        self,
        dim: int = DIM,
        *,
        path: Path | None = None,
        tenant_id: str = "",
        seal: Sealer = _identity,
        open_: Sealer = _identity,
        connectivity: int = 32,
        expansion_add: int = 64,
        expansion_search: int = 512,
    ) -> None:
        self._dim = dim
        self._path = path
        self._tenant = tenant_id
        self._seal, self._open = seal, open_
        self._params: dict[str, Any] = {
            "ndim": dim,
            "metric": "cos",
            "dtype": "f32",
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
        }
        self._index = Index(**self._params)
        self._keys: dict[str, int] = {}
        self._ids: dict[int, str] = {}
        self._next = 1
        self._journalled = 0
        self.snapshot_every = 10_000
        """Journal records after which the next change writes a fresh snapshot (bounds the
        replay at start-up)."""
        self._lock = threading.RLock()
        if path is not None:
            try:
                self._load(path)
            except ShirenError as exc:
                self._discard(path, exc)

    @property
    def dim(self) -> int:
        return self._dim

    # -- changes ---------------------------------------------------------------------------

    def add(self, entry_id: str, vector: Vector) -> None:
        v = unit(vector, self._dim)
        with self._lock:
            self._apply_add(check_id(entry_id), v)
            self._journal({"op": "add", "id": entry_id}, v)

    def add_many(
        self, entry_ids: list[str], vectors: np.ndarray[Any, Any], threads: int = 1
    ) -> None:
        """Bulk build (benchmarks, rebuilds): one batched insert, not journalled — call
        :meth:`persist` afterwards.  One thread by default: a deterministic graph."""
        m = np.asarray(vectors, dtype=np.float32)
        m = m / np.linalg.norm(m, axis=1, keepdims=True)
        with self._lock:
            keys = np.arange(self._next, self._next + len(entry_ids), dtype=np.uint64)
            for entry_id, key in zip(entry_ids, keys.tolist(), strict=True):
                if check_id(entry_id) in self._keys:
                    raise ConfigError("add_many needs new ids", code=ErrorCode.INPUT_INVALID)
                self._keys[entry_id] = key
                self._ids[key] = entry_id
            self._next += len(entry_ids)
            self._index.add(keys, m, threads=threads)

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
        self._index.add(key, v)
        self._keys[entry_id] = key
        self._ids[key] = entry_id

    def _apply_remove(self, entry_id: str) -> bool:
        key = self._keys.pop(entry_id, None)
        if key is None:
            return False
        del self._ids[key]
        self._index.remove(key)
        return True

    # -- queries ---------------------------------------------------------------------------

    def search(self, vector: Vector, k: int) -> list[Hit]:
        v = unit(vector, self._dim)
        with self._lock:
            if k <= 0 or not self._keys:
                return []
            found = self._index.search(v, min(k, len(self._keys)))
            keys = np.asarray(found.keys).reshape(-1).tolist()
            dists = np.asarray(found.distances, dtype=np.float64).reshape(-1).tolist()
            return [
                Hit(self._ids[int(key)], round(1.0 - d, 7))
                for key, d in zip(keys, dists, strict=True)
                if int(key) in self._ids
            ]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._keys

    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)

    # -- persistence -----------------------------------------------------------------------

    def persist(self) -> None:
        """Write a sealed snapshot atomically and start an empty journal."""
        if self._path is None:
            return
        with self._lock:
            meta = json.dumps({"params": self._params, "next": self._next, "keys": self._keys})
            saved = self._index.save()
            assert saved is not None  # no path given: the buffer
            body = _frame(meta.encode()) + bytes(saved)
            blob = _MAGIC + self._seal(self._tenant, "index.snapshot", body)
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
        body = _frame(json.dumps(record).encode()) + (b"" if vector is None else vector.tobytes())
        sealed = self._seal(self._tenant, "index.journal", body)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._journal_path(), "ab") as fh:
            fh.write(_LEN.pack(len(sealed)) + sealed)
            fh.flush()
            os.fsync(fh.fileno())
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
        self._index = Index(**self._params)
        self._keys, self._ids, self._next = {}, {}, 1
        for old in (path, self._journal_path()):
            if old.exists():
                old.replace(old.with_name(old.name + ".unreadable"))

    def _load(self, path: Path) -> None:
        if path.exists():
            raw = path.read_bytes()
            if not raw.startswith(_MAGIC):
                raise ConfigError("not a shiren face index file", code=ErrorCode.CONFIG_INVALID)
            body = self._open(self._tenant, "index.snapshot", raw[len(_MAGIC) :])
            meta_raw, rest = _unframe(body)
            meta = json.loads(meta_raw)
            self._params = meta["params"]
            restored = Index.restore(bytearray(rest))
            if restored is None:
                raise ConfigError("unreadable face index file", code=ErrorCode.CONFIG_INVALID)
            self._index = restored
            self._keys = {str(k): int(v) for k, v in meta["keys"].items()}
            self._ids = {v: k for k, v in self._keys.items()}
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


def _frame(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


def _unframe(data: bytes) -> tuple[bytes, bytes]:
    (n,) = _LEN.unpack_from(data, 0)
    return data[_LEN.size : _LEN.size + n], data[_LEN.size + n :]


class EmbeddedProvider:
    """One :class:`HnswIndex` per (tenant, gallery) under ``root`` (beside the SQLite file),
    loaded lazily and kept in memory; files are sealed by ``seal``/``open_``."""

    def __init__(
        self,
        root: Path | None,
        *,
        seal: Sealer = _identity,
        open_: Sealer = _identity,
        dim: int = DIM,
    ) -> None:
        self.root = root
        self.dim = dim
        self._seal, self._open = seal, open_
        self._indexes: dict[tuple[str, str], HnswIndex] = {}
        self._lock = threading.Lock()

    def _path(self, tenant_id: str, gallery: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / check_id(tenant_id) / f"{check_id(gallery)}.shix"

    def index(self, tenant_id: str, gallery: str) -> FaceIndex:
        with self._lock:
            found = self._indexes.get((tenant_id, gallery))
            if found is None:
                found = HnswIndex(
                    self.dim,
                    path=self._path(tenant_id, gallery),
                    tenant_id=tenant_id,
                    seal=self._seal,
                    open_=self._open,
                )
                self._indexes[(tenant_id, gallery)] = found
            return found

    def drop(self, tenant_id: str, gallery: str) -> None:
        with self._lock:
            self._indexes.pop((tenant_id, gallery), None)
            path = self._path(tenant_id, gallery)
            if path is not None:
                path.unlink(missing_ok=True)
                path.with_suffix(".journal").unlink(missing_ok=True)


__all__ = ["EmbeddedProvider", "HnswIndex", "Sealer"]

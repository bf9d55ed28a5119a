"""The embedded 1:N index: in process, persisted next to the SQLite database, sealed.

Two structures behind one sealed snapshot + journal (docs/FRAUD.md has the measurements):

* :class:`IvfIndex` (the default): k-means cells trained on the gallery itself, exact float32
  scores inside the ``nprobe`` nearest cells (:mod:`shiren.fraud.ivf`, pure numpy).  At
  1,000,000 synthetic face templates it finds the exact nearest neighbour for ≥ 99 % of probes
  in a few milliseconds, and an add is a centroid scoring plus an append.
* :class:`HnswIndex`: usearch HNSW (32 links per node, 64 candidates while inserting, 512 while
  searching).  On templates as crowded as dlib's it loses about one nearest neighbour in ten at
  1M; kept for comparison (``shiren bench index --backend hnsw``) and for galleries written by
  earlier versions.

Import order: loading usearch's extension *before* onnxruntime's crashes the process
(segmentation fault inside ``import onnxruntime``; usearch 2.26.6, onnxruntime 1.32.0 wheels), the
other order is fine — so this module imports onnxruntime first (tests/fraud/test_import_order.py).

Persistence: a snapshot (the serialised structure plus the id map) and an append-only journal of
the changes since; every record is sealed by the injected :class:`Sealer` (AES-GCM with the
tenant key in the service; the identity in tests that say so).  ``persist()`` writes a new
snapshot atomically and empties the journal; loading replays the journal over the snapshot, so a
crash loses nothing that ``add``/``remove`` returned from.  The journal records (an id and its
vector, or a removal) are the same for both structures.  Snapshot files start with a magic:
``SHIX1`` is an HNSW snapshot, ``SHIX2`` an IVF one; an :class:`IvfIndex` that finds an HNSW
snapshot (a gallery written before the IVF) migrates it — every vector is read back from the
usearch index and redistributed — and writes an IVF snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  -- must load before usearch: see below
from usearch.index import Index

from shiren.errors import ConfigError, ErrorCode, ShirenError
from shiren.fraud.index import (
    DIM,
    LEGACY_NETWORK,
    FaceIndex,
    Hit,
    Vector,
    check_id,
    is_scoped,
    scoped_gallery,
    unit,
)
from shiren.fraud.ivf import IvfStore

log = logging.getLogger("shiren.fraud")

Sealer = Callable[[str, str, bytes], bytes]
"""``(tenant_id, purpose, data) → blob``: seal (or open) one persisted record."""

_MAGIC = b"SHIX1"
"""HNSW (usearch) snapshot."""
_MAGIC_IVF = b"SHIX2"
"""IVF snapshot."""
_LEN = struct.Struct(">I")


def _identity(_tenant: str, _purpose: str, data: bytes) -> bytes:
    return data


def _bad_file() -> ConfigError:
    return ConfigError("unreadable face index file", code=ErrorCode.CONFIG_INVALID)


class _SealedGallery:
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
        _append_journal(self._journal_path(), self._tenant, self._seal, record, vector)
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
                raise _bad_file() from exc
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


def _hnsw_params(dim: int, connectivity: int, expansion_add: int, expansion_search: int) -> Any:
    return {
        "ndim": dim,
        "metric": "cos",
        "dtype": "f32",
        "connectivity": connectivity,
        "expansion_add": expansion_add,
        "expansion_search": expansion_search,
    }


def _restore_usearch(meta: dict[str, Any], payload: bytes) -> tuple[Index, dict[str, int]]:
    restored = Index.restore(bytearray(payload))
    if restored is None:
        raise _bad_file()
    return restored, {str(k): int(v) for k, v in meta["keys"].items()}


class HnswIndex(_SealedGallery):
    """One tenant gallery in a usearch HNSW graph (cosine), with durable snapshot + journal."""

    magic = _MAGIC

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
        super().__init__(dim, path, tenant_id, seal, open_)
        self._params: dict[str, Any] = _hnsw_params(
            dim, connectivity, expansion_add, expansion_search
        )
        self._index = Index(**self._params)
        self._ids: dict[int, str] = {}
        self._open_file()

    def _reset(self) -> None:
        self._index = Index(**self._params)
        self._ids = {}

    def _insert(self, key: int, v: Vector) -> None:
        self._index.add(key, v)

    def _apply_add(self, entry_id: str, v: Vector) -> None:
        super()._apply_add(entry_id, v)
        self._ids[self._keys[entry_id]] = entry_id

    def _insert_many(
        self, entry_ids: list[str], keys: np.ndarray[Any, Any], m: np.ndarray[Any, Any]
    ) -> None:
        self._ids.update(zip(keys.tolist(), entry_ids, strict=True))
        self._index.add(keys, m, threads=self._threads)

    def _delete(self, key: int) -> None:
        del self._ids[key]
        self._index.remove(key)

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

    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)

    def _dump(self) -> tuple[dict[str, Any], bytes]:
        saved = self._index.save()
        assert saved is not None  # no path given: the buffer
        return {"params": self._params, "keys": self._keys}, bytes(saved)

    def _restore(self, magic: bytes, meta: dict[str, Any], payload: bytes) -> None:
        if magic != _MAGIC:
            raise ConfigError("not an HNSW face index file", code=ErrorCode.CONFIG_INVALID)
        self._params = meta["params"]
        self._index, self._keys = _restore_usearch(meta, payload)
        self._ids = {v: k for k, v in self._keys.items()}


class IvfIndex(_SealedGallery):
    """One tenant gallery in k-means cells with exact scores (:class:`IvfStore`), with durable
    snapshot + journal.  Entry ids map to integer keys; ``_names[key]`` maps back.

    Training: a bulk :meth:`add_many` (rebuilds, benchmarks) trains on the calling thread.  A
    single :meth:`add` that makes the gallery large enough for twice the cells starts the
    training on a background thread (``background_training``, the default) from a copy of the
    rows: the old cells keep serving searches and taking changes meanwhile, the changes are
    also recorded and replayed onto the new cells, which then replace the old ones under the
    lock.  So no request waits for a training; the cost is a third copy of the vectors in
    memory while it runs.  Loading (journal replay) trains on the calling thread."""

    magic = _MAGIC_IVF

    def __init__(
        self,
        dim: int = DIM,
        *,
        path: Path | None = None,
        tenant_id: str = "",
        seal: Sealer = _identity,
        open_: Sealer = _identity,
        background_training: bool = True,
        **store_options: Any,
    ) -> None:
        super().__init__(dim, path, tenant_id, seal, open_)
        self._options = store_options
        self.background_training = background_training
        self._trainer: threading.Thread | None = None
        self._pending: list[tuple[int, Vector | None]] | None = None
        self._train_gate: threading.Event | None = None
        """Tests: the background training waits for this before swapping its cells in."""
        self._ready = False
        self._store = self._new_store()
        self._names: list[str | None] = [None]
        self._open_file()
        self._ready = True

    @property
    def store(self) -> IvfStore:
        return self._store

    def _new_store(self) -> IvfStore:
        store = IvfStore(self._dim, **self._options)
        store.auto_train = False
        return store

    def _reset(self) -> None:
        self._store = self._new_store()
        self._names = [None]

    # -- training --------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        """A background training is running."""
        return self._trainer is not None

    def wait_for_training(self, timeout: float | None = None) -> None:
        trainer = self._trainer
        if trainer is not None:
            trainer.join(timeout)

    def _maybe_train(self) -> None:
        """Called under the lock after each change of size."""
        if self._trainer is not None or not self._store.wants_training():
            return
        if not (self.background_training and self._ready):
            self._store.train()
            return
        keys, x = self._store.export()
        self._pending = []
        self._trainer = threading.Thread(
            target=self._train_in_background,
            args=(self._store, keys, x),
            name="shiren-ivf-training",
            daemon=True,
        )
        self._trainer.start()

    def _train_in_background(self, old: IvfStore, keys: Any, x: Any) -> None:
        try:
            new = old.retrained(keys, x)
            del keys, x
            if self._train_gate is not None:
                self._train_gate.wait()
            with self._lock:
                if self._store is old and self._pending is not None:
                    for key, v in self._pending:
                        if v is None:
                            new.remove(key)
                        else:
                            new.add(key, v)
                    self._store = new
        except Exception:  # the old cells stay: still correct, only slower as they grow
            log.exception("face index training failed; the previous cells stay in use")
        finally:
            with self._lock:
                self._pending = None
                self._trainer = None

    def _name(self, key: int, entry_id: str) -> None:
        if key >= len(self._names):
            self._names.extend([None] * (key + 1 - len(self._names)))
        self._names[key] = entry_id

    def _apply_add(self, entry_id: str, v: Vector) -> None:
        self._apply_remove(entry_id)
        key = self._next
        self._next += 1
        self._name(key, entry_id)
        self._keys[entry_id] = key
        self._store.add(key, v)
        if self._pending is not None:
            self._pending.append((key, v))
        self._maybe_train()

    def _insert_many(
        self, entry_ids: list[str], keys: np.ndarray[Any, Any], m: np.ndarray[Any, Any]
    ) -> None:
        first, last = int(keys[0]), int(keys[-1])
        if last >= len(self._names):
            self._names.extend([None] * (last + 1 - len(self._names)))
        self._names[first : last + 1] = entry_ids
        keys = keys.astype(np.int64)
        self._store.add_batch(keys, m)
        if self._pending is not None:  # a background training is running: it replays these
            self._pending.extend(zip(keys.tolist(), m, strict=True))
        elif self._store.wants_training():
            self._store.train()  # bulk: on this thread

    def _delete(self, key: int) -> None:
        self._names[key] = None
        self._store.remove(key)
        if self._pending is not None:
            self._pending.append((key, None))

    def search(self, vector: Vector, k: int) -> list[Hit]:
        v = unit(vector, self._dim)
        with self._lock:
            if k <= 0 or not self._keys:
                return []
            keys, sims = self._store.search(v, k)
            names = self._names
            return [
                Hit(name, round(float(s), 7))
                for key, s in zip(keys.tolist(), sims.tolist(), strict=True)
                if (name := names[key]) is not None
            ]

    def memory_bytes(self) -> int:
        return self._store.memory_bytes()

    def _dump(self) -> tuple[dict[str, Any], bytes]:
        meta, payload = self._store.state()
        return {"ivf": meta, "keys": self._keys}, payload

    def _restore(self, magic: bytes, meta: dict[str, Any], payload: bytes) -> None:
        keys = {str(k): int(v) for k, v in meta["keys"].items()}
        if magic == _MAGIC_IVF:
            self._store = IvfStore.from_state(meta["ivf"], payload)
            self._store.auto_train = False
        else:  # an HNSW snapshot from an earlier version: migrate every vector
            hnsw, keys = _restore_usearch(meta, payload)
            order = np.asarray(sorted(keys.values()), dtype=np.uint64)
            vectors = np.asarray(hnsw.get(order), dtype=np.float32).reshape(len(order), self._dim)
            del hnsw
            self._store = self._new_store()
            if len(order):
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                self._store.add_batch(order.astype(np.int64), vectors)
                if self._store.wants_training():
                    self._store.train()
            log.info("face index migrated from HNSW to IVF (%d entries)", len(order))
        self._keys = keys
        top = max(keys.values(), default=0)
        self._names = [None] * (top + 1)
        for entry_id, key in keys.items():
            self._names[key] = entry_id

    def _load(self, path: Path) -> None:
        migrated = False
        if path.exists():
            with open(path, "rb") as fh:
                migrated = fh.read(len(_MAGIC)) == _MAGIC
        super()._load(path)
        if migrated:
            self.persist()


def _append_journal(
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


INDEX_KINDS = {"ivf": IvfIndex, "hnsw": HnswIndex}


class EmbeddedProvider:
    """One index per (tenant, gallery) of one network (``network``, ``dim``) under ``root``
    (beside the SQLite file): ``<root>/<tenant>/<gallery>.shix`` (+ ``.journal``), the gallery
    name qualified by :func:`~shiren.fraud.index.scoped_gallery` (``enrolled@mobilefacenet-onnx``;
    dlib's keep ``enrolled``).  Loaded lazily and kept in memory; files are sealed by
    ``seal``/``open_``.  ``kind``: ``ivf`` (default) or ``hnsw``; ``options`` go to each index's
    constructor."""

    def __init__(
        self,
        root: Path | None,
        *,
        seal: Sealer = _identity,
        open_: Sealer = _identity,
        dim: int = DIM,
        network: str = LEGACY_NETWORK,
        kind: str = "ivf",
        options: dict[str, Any] | None = None,
    ) -> None:
        if kind not in INDEX_KINDS:
            raise ConfigError("unknown embedded index kind", code=ErrorCode.CONFIG_INVALID)
        self.root = root
        self.dim = dim
        self.network = network
        self.kind = kind
        self.options = dict(options or {})
        """Constructor options of each index (e.g. ``flat_max``, ``list_size`` of the IVF)."""
        self._seal, self._open = seal, open_
        self._indexes: dict[tuple[str, str], _SealedGallery] = {}
        self._lock = threading.Lock()

    def for_network(self, network: str, dim: int) -> EmbeddedProvider:
        """The galleries of ``network`` (``dim``-d) under the same root, sharing this provider's
        loaded indexes (one object per file in a process)."""
        if (network, dim) == (self.network, self.dim):
            return self
        sibling = EmbeddedProvider(
            self.root,
            seal=self._seal,
            open_=self._open,
            dim=dim,
            network=network,
            kind=self.kind,
            options=self.options,
        )
        sibling._indexes, sibling._lock = self._indexes, self._lock
        return sibling

    def _path(self, tenant_id: str, name: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / check_id(tenant_id) / f"{check_id(name)}.shix"

    def index(self, tenant_id: str, gallery: str) -> FaceIndex:
        name = scoped_gallery(gallery, self.network)
        with self._lock:
            found = self._indexes.get((tenant_id, name))
            if found is None:
                found = INDEX_KINDS[self.kind](
                    self.dim,
                    path=self._path(tenant_id, name),
                    tenant_id=tenant_id,
                    seal=self._seal,
                    open_=self._open,
                    **self.options,
                )
                self._indexes[(tenant_id, name)] = found
            return found

    def drop(self, tenant_id: str, gallery: str) -> None:
        name = scoped_gallery(gallery, self.network)
        with self._lock:
            self._indexes.pop((tenant_id, name), None)
            path = self._path(tenant_id, name)
            if path is not None:
                path.unlink(missing_ok=True)
                path.with_suffix(".journal").unlink(missing_ok=True)

    def remove_everywhere(
        self, tenant_id: str, gallery: str, entry_id: str, *, keep: Iterable[str] = ()
    ) -> int:
        """Remove ``entry_id`` from ``gallery`` of every network but those in ``keep`` (an
        erasure reaches the galleries of a network the service no longer runs).  A gallery
        loaded in this process removes it at once; one only on disk gets a sealed removal
        record appended to its journal (applied when it is next loaded: nothing is read or
        decrypted now).  Returns how many galleries were changed."""
        kept = {scoped_gallery(gallery, n) for n in keep}
        changed = 0
        with self._lock:
            names = {n for t, n in self._indexes if t == tenant_id} | self._on_disk(tenant_id)
            for name in sorted(n for n in names if is_scoped(n, gallery) and n not in kept):
                loaded = self._indexes.get((tenant_id, name))
                if loaded is not None:
                    changed += loaded.remove(entry_id)
                    continue
                path = self._path(tenant_id, name)
                assert path is not None  # on disk
                record = {"op": "remove", "id": entry_id}
                _append_journal(path.with_suffix(".journal"), tenant_id, self._seal, record, None)
                changed += 1
        return changed

    def _on_disk(self, tenant_id: str) -> set[str]:
        """The stored gallery names of ``tenant_id`` with a snapshot or a journal on disk."""
        if self.root is None:
            return set()
        folder = self.root / check_id(tenant_id)
        if not folder.is_dir():
            return set()
        return {p.stem for p in folder.iterdir() if p.suffix in (".shix", ".journal")}


__all__ = ["INDEX_KINDS", "EmbeddedProvider", "HnswIndex", "IvfIndex", "Sealer"]

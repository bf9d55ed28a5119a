"""One tenant gallery in k-means cells with exact scores, persisted by :class:`SealedGallery`.

The embedded default: k-means cells trained on the gallery itself, exact float32 scores inside the
``nprobe`` nearest cells (:class:`~shiren.fraud.ivf.IvfStore`, pure numpy).  At 1,000,000 synthetic
face templates it finds the exact nearest neighbour for ≥ 99 % of probes in a few milliseconds,
and an add is a centroid scoring plus an append (docs/FRAUD.md has the measurements).  A gallery
whose snapshot is an HNSW one (written before the IVF) is migrated on load: every vector is read
back from the usearch index (:mod:`shiren.fraud.hnsw_gallery`, which loads usearch safely) and
redistributed, and an IVF snapshot is written.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from shiren.fraud.hnsw_gallery import restore_usearch
from shiren.fraud.index import DIM, Hit, Vector, unit
from shiren.fraud.ivf import IvfStore
from shiren.fraud.sealed_gallery import (
    _MAGIC,
    _MAGIC_IVF,
    SealedGallery,
    Sealer,
    identity_seal,
)

log = logging.getLogger("shiren.fraud")


class IvfIndex(SealedGallery):
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
        seal: Sealer = identity_seal,
        open_: Sealer = identity_seal,
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
            hnsw, keys = restore_usearch(meta, payload)
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


__all__ = ["IvfIndex"]

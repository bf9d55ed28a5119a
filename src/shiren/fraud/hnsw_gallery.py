"""One tenant gallery in a usearch HNSW graph, persisted by :class:`SealedGallery`.

usearch HNSW (32 links per node, 64 candidates while inserting, 512 while searching).  On
templates as crowded as dlib's it loses about one nearest neighbour in ten at 1M; kept for
comparison (``shiren bench index --backend hnsw``) and for galleries written by earlier versions
(:class:`~shiren.fraud.ivf_gallery.IvfIndex` migrates them with :func:`restore_usearch`).

Import order: loading usearch's extension *before* onnxruntime's crashes the process
(segmentation fault inside ``import onnxruntime``; usearch 2.26.6, onnxruntime 1.32.0 wheels), the
other order is fine — so this module, the one that loads usearch, imports onnxruntime first
(tests/fraud/test_import_order.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # noqa: F401  -- must load before usearch: see the module docstring
from usearch.index import Index

from shiren.errors import ConfigError, ErrorCode
from shiren.fraud.index import DIM, Hit, Vector, unit
from shiren.fraud.sealed_gallery import (
    _MAGIC,
    SealedGallery,
    Sealer,
    bad_file,
    identity_seal,
)


def _hnsw_params(dim: int, connectivity: int, expansion_add: int, expansion_search: int) -> Any:
    return {
        "ndim": dim,
        "metric": "cos",
        "dtype": "f32",
        "connectivity": connectivity,
        "expansion_add": expansion_add,
        "expansion_search": expansion_search,
    }


def restore_usearch(meta: dict[str, Any], payload: bytes) -> tuple[Index, dict[str, int]]:
    restored = Index.restore(bytearray(payload))
    if restored is None:
        raise bad_file()
    return restored, {str(k): int(v) for k, v in meta["keys"].items()}


class HnswIndex(SealedGallery):
    """One tenant gallery in a usearch HNSW graph (cosine), with durable snapshot + journal."""

    magic = _MAGIC

    def __init__(
        self,
        dim: int = DIM,
        *,
        path: Path | None = None,
        tenant_id: str = "",
        seal: Sealer = identity_seal,
        open_: Sealer = identity_seal,
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
        self._index, self._keys = restore_usearch(meta, payload)
        self._ids = {v: k for k, v in self._keys.items()}


__all__ = ["HnswIndex", "restore_usearch"]

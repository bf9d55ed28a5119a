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
other order is fine — so :mod:`shiren.fraud.hnsw_gallery`, the one module that loads usearch,
imports onnxruntime first (tests/fraud/test_import_order.py).

Persistence (:mod:`shiren.fraud.sealed_gallery`): a sealed snapshot plus an append-only sealed
journal, the same for both structures; an :class:`IvfIndex` migrates an HNSW snapshot.  This
module keeps the provider (one index per tenant and gallery, loaded lazily) and the names other
code imports (:class:`HnswIndex`, :class:`IvfIndex`, :data:`Sealer`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode
from shiren.fraud.hnsw_gallery import HnswIndex
from shiren.fraud.index import (
    DIM,
    LEGACY_NETWORK,
    FaceIndex,
    check_id,
    is_scoped,
    scoped_gallery,
)
from shiren.fraud.ivf_gallery import IvfIndex
from shiren.fraud.sealed_gallery import SealedGallery, Sealer, append_journal, identity_seal

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
        seal: Sealer = identity_seal,
        open_: Sealer = identity_seal,
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
        self._indexes: dict[tuple[str, str], SealedGallery] = {}
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
                append_journal(path.with_suffix(".journal"), tenant_id, self._seal, record, None)
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

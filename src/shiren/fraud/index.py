"""The 1:N face index: a Protocol, its result type and the exact (brute-force) reference.

An index holds unit vectors (templates) under string ids, one index per tenant and gallery
(``enrolled`` for the tenant's bound faces, ``blacklist`` for its blacklists).  Entries refer to
ids only: the template itself stays sealed in its table, the index knows nothing else about the
person.  Similarity is the cosine, the same score the verifier uses (``shiren.core.similarity``),
so a threshold means the same thing in 1:1 and 1:N.

Galleries are kept per network (docs/FRAUD.md, "Galleries per network"): templates of two
networks (dlib's 128-d ResNet, MobileFaceNet's 192-d) live in different spaces, so a provider
serves the galleries of one network (``network``, ``dim``) under names qualified by
:func:`scoped_gallery`; dlib's keep their unqualified names (``enrolled``), which is where every
gallery written before this lives.  :meth:`for_network` gives the sibling provider of another
network over the same storage.

Implementations: :class:`ExactIndex` (numpy, exact: the recall reference and the tests'
oracle), :class:`shiren.fraud.embedded.IvfIndex` (the embedded default: k-means cells with exact
scores, in process, persisted next to the SQLite database, sealed with the tenant key),
:class:`shiren.fraud.embedded.HnswIndex` (usearch HNSW, same persistence) and
:class:`shiren.fraud.pgvector.PgVectorIndex` (PostgreSQL + pgvector HNSW, shared by several
workers).  One contract suite runs them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from shiren.errors import ConfigError, ErrorCode, InputError
from shiren.verifier import DLIB

DIM = 128
"""Template dimension of :data:`LEGACY_NETWORK` (dlib's ResNet): the providers' default only; the
service gives its embedder's (``service.verifier.embedder.dim``)."""

LEGACY_NETWORK = DLIB
"""The network of every gallery written before galleries were kept per network: its galleries
keep their unqualified names, so an existing deployment's index files and pgvector rows stay in
use (no rebuild)."""

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


def network_of(embedder_id: str) -> str:
    """The network name of a stored embedder id (``"<name>@sha256:<hex>"`` → ``"<name>"``).

    Galleries and the template rows they follow are matched on this name, not on the whole id:
    a network's weights are pinned by sha256 in the manifest, so one name means one embedding
    space; a retrained network that changes the space ships under a new name."""
    return embedder_id.split("@", 1)[0]


def network_key(network: str) -> str:
    """A short, file- and SQL-safe key of ``network``: the name itself when it is 1-40 of
    ``[a-z0-9._-]``, else ``n`` + 16 hex digits of its SHA-256 (stable across processes)."""
    if _KEY.match(network):
        return network
    return "n" + hashlib.sha256(network.encode()).hexdigest()[:16]


def scoped_gallery(gallery: str, network: str) -> str:
    """The stored name of ``network``'s gallery ``gallery``: ``enrolled`` for
    :data:`LEGACY_NETWORK`, ``enrolled@<network key>`` for any other."""
    if network == LEGACY_NETWORK:
        return gallery
    return f"{gallery}@{network_key(network)}"


Vector = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the entry's id and its cosine similarity to the probe."""

    entry_id: str
    similarity: float


class FaceIndex(Protocol):
    """A tenant's gallery of templates, searchable by cosine similarity."""

    @property
    def dim(self) -> int: ...

    def add(self, entry_id: str, vector: Vector) -> None:
        """Add (or replace) the vector stored under ``entry_id``."""
        ...

    def remove(self, entry_id: str) -> bool:
        """Remove ``entry_id``; ``False`` when it was not there."""
        ...

    def search(self, vector: Vector, k: int) -> list[Hit]:
        """The ``k`` most similar entries, most similar first (fewer when the index is small)."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, entry_id: object) -> bool: ...

    def persist(self) -> None:
        """Make every change durable (a no-op where each change already is)."""
        ...


class IndexProvider(Protocol):
    """The indexes of a deployment: one per (tenant, gallery), of one network."""

    def index(self, tenant_id: str, gallery: str) -> FaceIndex: ...

    def drop(self, tenant_id: str, gallery: str) -> None:
        """Delete a gallery's index entirely (a rebuild starts from nothing)."""
        ...


def unit(vector: Iterable[float] | NDArray[np.floating], dim: int = DIM) -> Vector:
    """``vector`` as a float32 unit vector of length ``dim``; a typed error otherwise."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape != (dim,) or not np.all(np.isfinite(v)):
        raise InputError(
            "a template must be a finite vector of the index dimension",
            code=ErrorCode.INPUT_INVALID,
            detail={"dim": dim, "got": int(v.size)},
        )
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise InputError("a template must not be zero", code=ErrorCode.INPUT_INVALID)
    return (v / norm).astype(np.float32)


def check_id(entry_id: str) -> str:
    if not entry_id or len(entry_id) > 64 or not entry_id.isascii():
        raise InputError("an index entry id must be 1-64 ASCII characters")
    return entry_id


class ExactIndex:
    """Brute force over a float32 matrix: exact, O(n) per query (the recall reference)."""

    def __init__(self, dim: int = DIM) -> None:
        self._dim = dim
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._m = np.zeros((0, dim), dtype=np.float32)
        self._n = 0

    @property
    def dim(self) -> int:
        return self._dim

    def add(self, entry_id: str, vector: Vector) -> None:
        v = unit(vector, self._dim)
        pos = self._pos.get(check_id(entry_id))
        if pos is not None:
            self._m[pos] = v
            return
        if self._n == len(self._m):
            grown = np.zeros((max(16, 2 * self._n), self._dim), dtype=np.float32)
            grown[: self._n] = self._m[: self._n]
            self._m = grown
        self._m[self._n] = v
        self._ids.append(entry_id)
        self._pos[entry_id] = self._n
        self._n += 1

    def add_many(self, entry_ids: list[str], vectors: NDArray[np.float32]) -> None:
        for entry_id, v in zip(entry_ids, vectors, strict=True):
            self.add(entry_id, v)

    def remove(self, entry_id: str) -> bool:
        pos = self._pos.pop(entry_id, None)
        if pos is None:
            return False
        last = self._n - 1
        if pos != last:  # move the last row into the hole
            self._m[pos] = self._m[last]
            moved = self._ids[last]
            self._ids[pos] = moved
            self._pos[moved] = pos
        self._ids.pop()
        self._n -= 1
        return True

    def search(self, vector: Vector, k: int) -> list[Hit]:
        v = unit(vector, self._dim)
        if k <= 0 or self._n == 0:
            return []
        sims = self._m[: self._n] @ v
        k = min(k, self._n)
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [Hit(self._ids[i], float(sims[i])) for i in top]

    def __len__(self) -> int:
        return self._n

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._pos

    def persist(self) -> None:
        return None


class ExactProvider:
    """In-memory exact indexes (tests, and the reference for the others) of one network."""

    def __init__(
        self,
        dim: int = DIM,
        network: str = LEGACY_NETWORK,
        *,
        _shared: dict[tuple[str, str], ExactIndex] | None = None,
    ) -> None:
        self.dim = dim
        self.network = network
        self._indexes: dict[tuple[str, str], ExactIndex] = {} if _shared is None else _shared

    def for_network(self, network: str, dim: int) -> ExactProvider:
        """The galleries of ``network`` (``dim``-d) in the same memory."""
        if (network, dim) == (self.network, self.dim):
            return self
        return ExactProvider(dim, network, _shared=self._indexes)

    def index(self, tenant_id: str, gallery: str) -> FaceIndex:
        name = scoped_gallery(gallery, self.network)
        return self._indexes.setdefault((tenant_id, name), ExactIndex(self.dim))

    def drop(self, tenant_id: str, gallery: str) -> None:
        self._indexes.pop((tenant_id, scoped_gallery(gallery, self.network)), None)

    def remove_everywhere(
        self, tenant_id: str, gallery: str, entry_id: str, *, keep: Iterable[str] = ()
    ) -> int:
        """Remove ``entry_id`` from ``gallery`` of every network but those in ``keep``."""
        kept = {scoped_gallery(gallery, n) for n in keep}
        return sum(
            index.remove(entry_id)
            for (tenant, name), index in list(self._indexes.items())
            if tenant == tenant_id and name not in kept and is_scoped(name, gallery)
        )


def provider_for(provider: IndexProvider, network: str, dim: int) -> IndexProvider:
    """``provider``'s view of ``network``'s galleries (``dim``-d): its ``for_network`` sibling
    when it has one; a provider without it (a wrapper, a test double) is taken as it is, unless
    it says it holds another dimension (a typed configuration error, not a 500 per request)."""
    scope = getattr(provider, "for_network", None)
    if callable(scope):
        scoped: IndexProvider = scope(network, dim)
        return scoped
    held = getattr(provider, "dim", None)
    if isinstance(held, int) and held != dim:
        raise ConfigError(
            "the face index holds another template dimension than the embedder's",
            code=ErrorCode.CONFIG_INVALID,
            detail={"index_dim": held, "embedder_dim": dim},
        )
    return provider


def is_scoped(name: str, gallery: str) -> bool:
    """Whether the stored gallery ``name`` is ``gallery`` of some network."""
    return name == gallery or name.startswith(f"{gallery}@")


__all__ = [
    "DIM",
    "LEGACY_NETWORK",
    "ExactIndex",
    "ExactProvider",
    "FaceIndex",
    "Hit",
    "IndexProvider",
    "Vector",
    "check_id",
    "is_scoped",
    "network_key",
    "network_of",
    "provider_for",
    "scoped_gallery",
    "unit",
]

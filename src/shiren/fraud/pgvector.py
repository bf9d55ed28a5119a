"""The server-backed 1:N index: PostgreSQL + pgvector, one table per dimension shared by every
worker.

A ``vector`` column has one fixed dimension, so each template dimension has its own table:
``face_index_entries`` for 128-d (dlib's ResNet: the table every gallery was in before galleries
were kept per network) and ``face_index_entries_<dim>`` for any other (``_192``: MobileFaceNet).
Two networks of one dimension share a table, their galleries told apart by the stored gallery
name (:func:`~shiren.fraud.index.scoped_gallery`: ``enrolled@mobilefacenet-onnx``).

Rows are ``(tenant_id, gallery, entry_id, embedding vector(dim))`` with an HNSW index using
``vector_cosine_ops``; a search filters on tenant and gallery and orders by the cosine distance
``<=>``.  pgvector ≥ 0.8's *iterative* index scans keep returning candidates until the filter is
satisfied, so one tenant's results are not starved by another tenant's rows sharing the graph.
Every change commits at once: all workers see it at their next query (no replica to sync).

The table is created by :meth:`PgVectorProvider.ensure` (``CREATE EXTENSION vector`` needs the
extension installed on the server: ``scripts/install_pgvector.sh``), not by the Alembic chain:
the SQLite deployments never have it.  The vectors in this table are in the clear (pgvector must
read them to index them); see docs/FRAUD.md for what that means under PIPL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from shiren.fraud.index import (
    DIM,
    LEGACY_NETWORK,
    FaceIndex,
    Hit,
    Vector,
    check_id,
    scoped_gallery,
    unit,
)

TABLE = "face_index_entries"
"""The 128-d table (dlib's ResNet; every gallery before galleries were kept per network)."""
_TABLES = re.compile(r"^face_index_entries(_[0-9]{1,4})?$")


def table_for(dim: int) -> str:
    """The table holding ``dim``-d vectors (pgvector's HNSW indexes up to 2,000 dimensions)."""
    if not 1 <= dim <= 2000:
        raise ValueError("a pgvector face index holds 1-2000 dimensions")
    return TABLE if dim == DIM else f"{TABLE}_{int(dim)}"


def _literal(v: Vector) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in v.tolist()) + "]"


class PgVectorIndex:
    """One tenant gallery inside the shared pgvector table."""

    def __init__(self, engine: Engine, tenant_id: str, gallery: str, dim: int = DIM) -> None:
        self._engine = engine
        self._tenant = check_id(tenant_id)
        self._gallery = check_id(gallery)
        self._dim = dim
        self._table = table_for(dim)
        self.ef_search = 100

    @property
    def dim(self) -> int:
        return self._dim

    def _where(self) -> dict[str, Any]:
        return {"t": self._tenant, "g": self._gallery}

    def add(self, entry_id: str, vector: Vector) -> None:
        v = unit(vector, self._dim)
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {self._table} (tenant_id, gallery, entry_id, embedding) "
                    "VALUES (:t, :g, :e, CAST(:v AS vector)) "
                    "ON CONFLICT (tenant_id, gallery, entry_id) "
                    "DO UPDATE SET embedding = EXCLUDED.embedding"
                ),
                {**self._where(), "e": check_id(entry_id), "v": _literal(v)},
            )

    def add_many(self, entry_ids: list[str], vectors: np.ndarray[Any, Any]) -> None:
        rows = [
            {**self._where(), "e": check_id(e), "v": _literal(unit(v, self._dim))}
            for e, v in zip(entry_ids, vectors, strict=True)
        ]
        with self._engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {self._table} (tenant_id, gallery, entry_id, embedding) "
                    "VALUES (:t, :g, :e, CAST(:v AS vector))"
                ),
                rows,
            )

    def remove(self, entry_id: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                text(
                    f"DELETE FROM {self._table} WHERE tenant_id=:t AND gallery=:g AND entry_id=:e"
                ),
                {**self._where(), "e": entry_id},
            )
        return bool(getattr(result, "rowcount", 0))

    def search(self, vector: Vector, k: int) -> list[Hit]:
        v = unit(vector, self._dim)
        if k <= 0:
            return []
        with self._engine.begin() as conn:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), k)}"))
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = conn.execute(
                text(
                    f"SELECT entry_id, 1 - (embedding <=> CAST(:v AS vector)) AS sim "
                    f"FROM {self._table} WHERE tenant_id=:t AND gallery=:g "
                    "ORDER BY embedding <=> CAST(:v AS vector) LIMIT :k"
                ),
                {**self._where(), "v": _literal(v), "k": int(k)},
            ).all()
        hits = [Hit(str(r[0]), round(float(r[1]), 7)) for r in rows]
        # relaxed_order may return near-ties slightly out of order: restore it
        return sorted(hits, key=lambda h: -h.similarity)

    def __len__(self) -> int:
        with self._engine.connect() as conn:
            n = conn.execute(
                text(f"SELECT count(*) FROM {self._table} WHERE tenant_id=:t AND gallery=:g"),
                self._where(),
            ).scalar_one()
        return int(n)

    def __contains__(self, entry_id: object) -> bool:
        if not isinstance(entry_id, str):
            return False
        with self._engine.connect() as conn:
            row = conn.execute(
                text(
                    f"SELECT 1 FROM {self._table} WHERE tenant_id=:t AND gallery=:g AND entry_id=:e"
                ),
                {**self._where(), "e": entry_id},
            ).first()
        return row is not None

    def ids(self) -> set[str]:
        """Every entry id of this gallery (the service reconciles it with the sealed rows)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT entry_id FROM {self._table} WHERE tenant_id=:t AND gallery=:g"),
                self._where(),
            ).scalars()
            return {str(r) for r in rows}

    def persist(self) -> None:
        return None  # every change has committed


ENSURE_LOCK = 0x5348_4952_454E_0002
"""PostgreSQL advisory-lock key held while creating the extension, table and index."""


class PgVectorProvider:
    """The galleries of one network (``network``, ``dim``) in the ``dim``-d pgvector table on
    ``engine`` (PostgreSQL only)."""

    def __init__(self, engine: Engine, dim: int = DIM, network: str = LEGACY_NETWORK) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the pgvector index needs PostgreSQL")
        self.engine = engine
        self.dim = dim
        self.network = network
        self.table = table_for(dim)

    def for_network(self, network: str, dim: int) -> PgVectorProvider:
        """The galleries of ``network`` (``dim``-d) on the same database, their table created
        now if missing (:meth:`ensure`: a deployment switching networks needs the new
        dimension's table before its first request)."""
        if (network, dim) == (self.network, self.dim):
            return self
        sibling = PgVectorProvider(self.engine, dim, network)
        sibling.ensure()
        return sibling

    def ensure(self) -> None:
        """Create the extension, this dimension's table and its HNSW index if missing
        (idempotent, and safe when several workers start at once: ``IF NOT EXISTS`` alone is
        not — two concurrent ``CREATE EXTENSION`` (or ``CREATE TABLE``) both pass the check and
        one fails on the catalogue's unique key)."""
        table = self.table
        with self.engine.begin() as conn:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({ENSURE_LOCK})"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {table} ("
                    "tenant_id varchar(64) NOT NULL, gallery varchar(64) NOT NULL, "
                    f"entry_id varchar(64) NOT NULL, embedding vector({int(self.dim)}) NOT NULL, "
                    "PRIMARY KEY (tenant_id, gallery, entry_id))"
                )
            )
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} "
                    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
                )
            )

    def index(self, tenant_id: str, gallery: str) -> FaceIndex:
        name = scoped_gallery(gallery, self.network)
        return PgVectorIndex(self.engine, tenant_id, name, self.dim)

    def drop(self, tenant_id: str, gallery: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(f"DELETE FROM {self.table} WHERE tenant_id=:t AND gallery=:g"),
                {"t": tenant_id, "g": scoped_gallery(gallery, self.network)},
            )

    def tables(self) -> list[str]:
        """Every face index table of the database (one per dimension ever used)."""
        with self.engine.connect() as conn:
            names = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
            return sorted(str(n) for n in names if _TABLES.match(str(n)))

    def remove_everywhere(
        self, tenant_id: str, gallery: str, entry_id: str, *, keep: Iterable[str] = ()
    ) -> int:
        """Remove ``entry_id`` from ``gallery`` of every network (every dimension's table) but
        those in ``keep``: an erasure or a sweep reaches the galleries of a network the service
        no longer runs (their vectors are in the clear).  Returns the rows deleted."""
        kept = sorted({scoped_gallery(gallery, n) for n in keep})
        deleted = 0
        with self.engine.begin() as conn:
            for table in self.tables():
                result = conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE tenant_id=:t AND entry_id=:e "
                        "AND (gallery=:g OR left(gallery, :n)=:p) AND NOT (gallery = ANY(:keep))"
                    ),
                    {
                        "t": tenant_id,
                        "e": entry_id,
                        "g": gallery,
                        "n": len(gallery) + 1,
                        "p": f"{gallery}@",
                        "keep": kept,
                    },
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted


__all__ = ["ENSURE_LOCK", "TABLE", "PgVectorIndex", "PgVectorProvider", "table_for"]

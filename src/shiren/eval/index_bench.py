"""``shiren bench index``: the 1:N face index at scale — add time, query latency, memory, recall.

The gallery is ``n`` synthetic templates from :class:`shiren.fraud.synthetic.GalleryModel`
(crowded like real dlib templates, not spread over the sphere), generated in seeded chunks so
the full matrix is never held twice: pass 1 adds each chunk to the index (batched, all cores)
and keeps the rows the queries are made from; pass 2 regenerates the same chunks to find each
query's exact nearest neighbour (the recall reference).  Then, one thread:

* ``query`` — p50/p95/p99 of single searches (k nearest) for ``queries`` probes, each another
  capture of a gallery person;
* ``add`` — p50/p95/p99 of single inserts of ``adds`` new people into the full index (what an
  enrolment does), beside the batched build rate;
* ``memory`` — resident set before and after the build, and what the index says it holds;
* ``recall@1`` — how often the index's first hit is the exact nearest neighbour.

Latencies are wall-clock (``query``, ``add``) and this thread's CPU time (``query_cpu``,
``add_cpu``): on a shared machine the wall-clock tail includes time spent waiting for a core,
the CPU time does not; the report carries the load average so a reader can tell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from shiren.eval.bench import rss_mb
from shiren.fraud.embedded import HnswIndex, IvfIndex
from shiren.fraud.index import ExactIndex
from shiren.fraud.synthetic import F32, GalleryModel

CHUNK = 100_000
BACKEND_NAMES = {"ivf": "embedded-ivf", "hnsw": "usearch-hnsw", "pgvector": "pgvector-hnsw"}


def _chunks(model: GalleryModel, n: int, seed: int) -> Iterator[tuple[int, F32]]:
    for i, start in enumerate(range(0, n, CHUNK)):
        rng = np.random.default_rng([seed, i])
        yield start, model.sample(min(CHUNK, n - start), rng)


def _pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 4),
        "p95_ms": round(float(np.percentile(a, 95)), 4),
        "p99_ms": round(float(np.percentile(a, 99)), 4),
        "max_ms": round(float(a.max()), 4),
        "count": len(ms),
    }


def _make_index(backend: str, database_url: str | None) -> Any:
    if backend == "ivf":
        return IvfIndex()
    if backend == "hnsw":
        return HnswIndex()
    if backend == "exact":
        return ExactIndex()
    from shiren.fraud.pgvector import PgVectorProvider
    from shiren.storage.sql import make_engine

    if not database_url:
        raise ValueError("the pgvector backend needs a PostgreSQL database URL")
    provider = PgVectorProvider(make_engine(database_url))
    provider.ensure()
    provider.drop("bench", "bench")
    return provider.index("bench", "bench")


def run_index_bench(
    n: int,
    *,
    queries: int = 1000,
    adds: int = 1000,
    k: int = 10,
    seed: int = 7,
    backend: str = "ivf",
    threads: int = 0,
    database_url: str | None = None,
) -> dict[str, Any]:
    model = GalleryModel.default()
    rng = np.random.default_rng([seed, 999])
    sources = np.sort(rng.choice(n, size=min(queries, n), replace=False))
    before = rss_mb()
    index: Any = _make_index(backend, database_url)
    picked: list[F32] = []
    build_start = time.perf_counter()
    for start, chunk in _chunks(model, n, seed):
        ids = [str(start + j) for j in range(len(chunk))]
        if isinstance(index, HnswIndex | IvfIndex):
            index.add_many(ids, chunk, threads=threads)
        else:
            for lo in range(0, len(ids), 5000):
                index.add_many(ids[lo : lo + 5000], chunk[lo : lo + 5000])
        inside = sources[(sources >= start) & (sources < start + len(chunk))] - start
        picked.extend(chunk[inside])
    build_s = time.perf_counter() - build_start
    after = rss_mb()
    probes = model.probes(np.asarray(picked, dtype=np.float32), rng)
    exact_sim = np.full(len(probes), -2.0)
    exact_id = np.zeros(len(probes), dtype=np.int64)
    for start, chunk in _chunks(model, n, seed):  # pass 2: the exact nearest neighbours
        sims = probes @ chunk.T
        best = sims.argmax(axis=1)
        val = sims[np.arange(len(probes)), best]
        better = val > exact_sim
        exact_sim[better] = val[better]
        exact_id[better] = best[better] + start
    latencies, cpu, hits, sim_gap = [], [], 0, []
    for i, p in enumerate(probes):
        t, c = time.perf_counter(), time.thread_time()
        found = index.search(p, k)
        latencies.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        hits += int(found[0].entry_id == str(exact_id[i]))
        sim_gap.append(exact_sim[i] - found[0].similarity)
    extra = model.sample(adds, rng)
    add_ms, add_cpu = [], []
    for j, v in enumerate(extra):
        t, c = time.perf_counter(), time.thread_time()
        index.add(f"new{j}", v)
        add_ms.append((time.perf_counter() - t) * 1000)
        add_cpu.append((time.thread_time() - c) * 1000)
    structure: dict[str, Any] | None = None
    if isinstance(index, IvfIndex):
        store = index.store
        structure = {
            "nlist": store.nlist,
            "nprobe": store.nprobe,
            "trained_at": store.trained_at,
            "trainings": store.training_log,
            "flat_max": store.flat_max,
            "list_size": store.list_size,
            "probe_factor": store.probe_factor,
        }
    return {
        "backend": BACKEND_NAMES.get(backend, backend),
        "structure": structure,
        "n": n,
        "dim": 128,
        "k": k,
        "seed": seed,
        "gallery_model": model.summary(),
        "build": {"seconds": round(build_s, 2), "per_vector_ms": round(build_s / n * 1000, 4)},
        "add": _pct(add_ms),
        "add_cpu": _pct(add_cpu),
        "query": _pct(latencies),
        "query_cpu": _pct(cpu),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "recall_at_1": round(hits / len(probes), 5),
        "queries": len(probes),
        "max_similarity_gap": round(float(max(sim_gap)), 6),
        "memory": {
            "before_mb": before["rss_mb"],
            "after_build_mb": after["rss_mb"],
            "index_mb": round(after["rss_mb"] - before["rss_mb"], 1),
            "peak_rss_mb": rss_mb()["peak_rss_mb"],
            "reported_by_index_mb": round(index.memory_bytes() / 2**20, 1)
            if isinstance(index, HnswIndex | IvfIndex)
            else None,
        },
        "targets": {
            "add_p99_ms_max": 1.0,
            "query_p99_ms_max": 20.0,
            "index_mb_max": 1536,
            "recall_at_1_min": 0.99,
        },
    }


__all__ = ["run_index_bench"]

"""An inverted-file (IVF) store of unit vectors: k-means cells, exact float32 scores to finish.

Why (measured, docs/FRAUD.md): dlib templates crowd into a cone, where an HNSW graph built with
cheap inserts loses about one nearest neighbour in ten at a million entries.  Here the gallery
is split into cells around k-means centroids *trained on the gallery itself*; a query scores the
centroids and scans the ``nprobe`` nearest cells.  The only approximations are which cells are
scanned and a two-stage scan inside them:

* vectors are stored centred on the gallery mean and rotated onto its principal axes (an
  orthonormal basis, so nothing is lost: ``x·q = m·q + y·(Bᵀq)``), split into the 64 leading
  coordinates (*head*) and the rest (*tail*);
* a query scores every scanned row on the head only (half the memory traffic), keeps the best
  ``rerank`` (64) rows and scores those exactly (head + tail + the mean term): the similarities
  returned are the exact cosines.  On the synthetic face gallery the exact nearest neighbour is
  among the 16 best head scores for every probe at 300,000 entries;
* ``nprobe = ceil(4·√nlist)`` finds the exact nearest neighbour for ≥ 99.8 % of probes from
  200,000 to 1,000,000 entries.

Life cycle:

* small galleries (``< flat_max``) have no centroids and no rotation: one cell, an exact scan;
* adds assign the vector to its nearest centroid and append it to that cell (amortised O(1)
  besides the centroid scores); removals swap the cell's last row into the hole;
* when the gallery has grown enough for twice as many cells (``list_size`` entries per cell,
  at most ``max_lists`` cells), :meth:`train` re-estimates mean and axes and re-runs k-means on
  a sample, then redistributes every vector.  This is the one slow operation (seconds at 10⁵,
  about a minute at 10⁶ on this machine), once each time the gallery doubles: inside the add
  that crosses the size (``auto_train``), or, as :class:`shiren.fraud.embedded.IvfIndex` does
  for single adds, on a background thread (:meth:`retrained` builds new cells from a copy
  while this store keeps serving).

Pure numpy, no native library beside numpy's own (no import-order trap).  A query runs on the
calling thread only (``einsum``: numpy's own loops, not BLAS, whose threads would contend with
the service's other work for the cores); training uses BLAS matrix products (all cores).
Keys are non-negative integers chosen by the caller (:class:`shiren.fraud.embedded.IvfIndex`
maps entry ids onto them).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]

FLAT_MAX = 20_000
"""Below this size the store is one exact cell (a scan of ≤ 10 MB)."""
LIST_SIZE = 256
"""Target entries per cell when (re)training."""
MAX_LISTS = 4096
PROBE_FACTOR = 4.0
"""``nprobe = ceil(PROBE_FACTOR · √nlist)`` (docs/FRAUD.md: recall against exact search)."""
RERANK = 64
"""Rows scored exactly after the head-only scan (at least ``k``)."""
HEAD = 64
"""Leading principal coordinates scanned first."""
SAMPLE_PER_LIST = 40
TRAIN_ITERATIONS = 8
_CHUNK = 4096


def _assign(x: F32, centroids: F32, half_norms: F32) -> I64:
    """Nearest centroid (L2) of each row of ``x``: argmax of ``x·c - |c|²/2``."""
    out = np.empty(len(x), dtype=np.int64)
    for lo in range(0, len(x), _CHUNK):
        scores = x[lo : lo + _CHUNK] @ centroids.T
        scores -= half_norms
        out[lo : lo + _CHUNK] = scores.argmax(axis=1)
    return out


def kmeans(x: F32, nlist: int, *, iterations: int, seed: int) -> F32:
    """Plain Lloyd iterations from ``nlist`` distinct random rows (empty cells keep their
    centroid)."""
    rng = np.random.default_rng(seed)
    centroids: F32 = x[rng.choice(len(x), nlist, replace=False)].astype(np.float32)
    for _ in range(iterations):
        half = 0.5 * np.einsum("ij,ij->i", centroids, centroids)
        a = _assign(x, centroids, half)
        counts = np.bincount(a, minlength=nlist)
        order = np.argsort(a, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        nonempty = counts > 0
        sums = np.add.reduceat(x[order].astype(np.float64), starts[nonempty], axis=0)
        centroids[nonempty] = (sums / counts[nonempty, None]).astype(np.float32)
    return centroids


def principal_axes(x: F32) -> tuple[F32, F32]:
    """Mean and a full orthonormal basis (columns), by decreasing variance."""
    mean = x.mean(axis=0, dtype=np.float64)
    centred = x.astype(np.float64) - mean
    _, vectors = np.linalg.eigh(centred.T @ centred)
    basis = np.ascontiguousarray(vectors[:, ::-1], dtype=np.float32)
    return mean.astype(np.float32), basis


class IvfStore:
    """Cells of (key, vector) rows; search returns keys with exact inner products.  Not
    thread-safe (a query reuses one scratch buffer): :class:`shiren.fraud.embedded.IvfIndex`
    serialises every call under its lock."""

    def __init__(
        self,
        dim: int,
        *,
        flat_max: int = FLAT_MAX,
        list_size: int = LIST_SIZE,
        max_lists: int = MAX_LISTS,
        probe_factor: float = PROBE_FACTOR,
        rerank: int = RERANK,
        head: int = HEAD,
        seed: int = 0,
    ) -> None:
        self.dim = dim
        self.flat_max = flat_max
        self.list_size = list_size
        self.max_lists = max_lists
        self.probe_factor = probe_factor
        self.rerank = rerank
        self.head = min(head, dim)
        self.seed = seed
        self.trained_at = 0
        self.trainings = 0
        self.training_log: list[dict[str, float]] = []
        """Each (re)training in this process: size, cells, seconds (benchmarks report it)."""
        self.auto_train = True
        """Train inside the add that makes :meth:`wants_training` true (``False``: the owner
        decides when, e.g. :class:`shiren.fraud.embedded.IvfIndex` in the background)."""
        self._mean: F32 | None = None
        self._basis: F32 | None = None
        self._mean_b: F32 = np.zeros(dim, dtype=np.float32)
        self._centroids: F32 | None = None
        self._half: F32 = np.zeros(1, dtype=np.float32)
        self._reset_cells(1)
        self._where_list = np.full(16, -1, dtype=np.int32)
        self._where_pos = np.zeros(16, dtype=np.int32)
        self._n = 0
        self._buf: F32 = np.empty(0, dtype=np.float32)

    # -- shape -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def nlist(self) -> int:
        return len(self._sizes)

    @property
    def nprobe(self) -> int:
        if self._centroids is None:
            return 1
        return min(self.nlist, math.ceil(self.probe_factor * math.sqrt(self.nlist)))

    def memory_bytes(self) -> int:
        total = sum(a.nbytes for cells in (self._heads, self._tails, self._keys) for a in cells)
        total += self._where_list.nbytes + self._where_pos.nbytes + self._buf.nbytes
        for extra in (self._centroids, self._basis):
            if extra is not None:
                total += extra.nbytes
        return int(total)

    def _target_lists(self, n: int) -> int:
        if n < self.flat_max:
            return 1
        return int(min(n, self.max_lists, max(16, n // self.list_size)))

    def options(self) -> dict[str, Any]:
        return {
            "flat_max": self.flat_max,
            "list_size": self.list_size,
            "max_lists": self.max_lists,
            "probe_factor": self.probe_factor,
            "rerank": self.rerank,
            "head": self.head,
            "seed": self.seed,
        }

    def wants_training(self) -> bool:
        """Large enough for twice the cells (or for cells at all)."""
        target = self._target_lists(self._n)
        return target > 1 and target >= 2 * self.nlist

    # -- coordinates -----------------------------------------------------------------------

    def _rotate(self, x: F32) -> F32:
        """Stored coordinates ``(x - m)·B`` (the raw vector while untrained)."""
        if self._basis is None or self._mean is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        out: F32 = ((x - self._mean) @ self._basis).astype(np.float32)
        return out

    def _unrotate(self, y: F32) -> F32:
        if self._basis is None or self._mean is None:
            return y
        out: F32 = (y @ self._basis.T + self._mean).astype(np.float32)
        return out

    # -- changes ---------------------------------------------------------------------------

    def _grow_where(self, key: int) -> None:
        if key < len(self._where_list):
            return
        size = max(key + 1, 2 * len(self._where_list))
        wl = np.full(size, -1, dtype=np.int32)
        wl[: len(self._where_list)] = self._where_list
        wp = np.zeros(size, dtype=np.int32)
        wp[: len(self._where_pos)] = self._where_pos
        self._where_list, self._where_pos = wl, wp

    def _cells_of(self, y: F32) -> I64:
        """Nearest centroid of each stored-coordinate row."""
        if self._centroids is None:
            return np.zeros(len(y), dtype=np.int64)
        if len(y) == 1:
            scores = np.einsum("ij,j->i", self._centroids, y[0])
            scores -= self._half
            return np.asarray([int(scores.argmax())], dtype=np.int64)
        return _assign(y, self._centroids, self._half)

    def _append(self, cell: int, keys: I64, rows: F32) -> None:
        size, m, h = self._sizes[cell], len(keys), self.head
        if size + m > len(self._keys[cell]):
            cap = max(16, size + m, int(len(self._keys[cell]) * 1.5))
            heads = np.empty((cap, h), dtype=np.float32)
            heads[:size] = self._heads[cell][:size]
            tails = np.empty((cap, self.dim - h), dtype=np.float32)
            tails[:size] = self._tails[cell][:size]
            ks = np.empty(cap, dtype=np.int64)
            ks[:size] = self._keys[cell][:size]
            self._heads[cell], self._tails[cell], self._keys[cell] = heads, tails, ks
        self._heads[cell][size : size + m] = rows[:, :h]
        self._tails[cell][size : size + m] = rows[:, h:]
        self._keys[cell][size : size + m] = keys
        self._where_list[keys] = cell
        self._where_pos[keys] = np.arange(size, size + m, dtype=np.int32)
        self._sizes[cell] = size + m

    def add(self, key: int, v: F32) -> None:
        """Add a unit vector under a new key (the caller never reuses a live key)."""
        self.add_batch(np.asarray([key], dtype=np.int64), v[None, :])

    def add_batch(self, keys: I64, rows: F32) -> None:
        if len(keys) == 0:
            return
        self._grow_where(int(keys.max()))
        y = self._rotate(rows)
        self._distribute(keys, y, self._cells_of(y))
        self._n += len(keys)
        if self.auto_train and self.wants_training():
            self.train()

    def _distribute(self, keys: I64, y: F32, cells: I64) -> None:
        if len(keys) == 1:
            self._append(int(cells[0]), keys, y)
            return
        order = np.argsort(cells, kind="stable")
        counts = np.bincount(cells, minlength=self.nlist)
        lo = 0
        for cell in np.flatnonzero(counts).tolist():
            hi = lo + int(counts[cell])
            idx = order[lo:hi]
            self._append(cell, keys[idx], y[idx])
            lo = hi

    def remove(self, key: int) -> bool:
        if key >= len(self._where_list) or self._where_list[key] < 0:
            return False
        cell, pos = int(self._where_list[key]), int(self._where_pos[key])
        last = self._sizes[cell] - 1
        if pos != last:
            moved = int(self._keys[cell][last])
            self._heads[cell][pos] = self._heads[cell][last]
            self._tails[cell][pos] = self._tails[cell][last]
            self._keys[cell][pos] = moved
            self._where_pos[moved] = pos
        self._sizes[cell] = last
        self._where_list[key] = -1
        self._n -= 1
        return True

    # -- training --------------------------------------------------------------------------

    def _stored(self) -> tuple[I64, F32]:
        """Every (key, stored row), cell by cell."""
        sizes = self._sizes
        keys = np.concatenate([k[:s] for k, s in zip(self._keys, sizes, strict=True)])
        y = np.empty((len(keys), self.dim), dtype=np.float32)
        pos = 0
        for head, tail, s in zip(self._heads, self._tails, sizes, strict=True):
            y[pos : pos + s, : self.head] = head[:s]
            y[pos : pos + s, self.head :] = tail[:s]
            pos += s
        return keys, y

    def export(self) -> tuple[I64, F32]:
        """Every (key, vector), cell by cell."""
        keys, y = self._stored()
        return keys, self._unrotate(y)

    def train(self) -> None:
        """(Re)train mean, axes and centroids on a sample of the gallery; redistribute every
        row (in place, on the calling thread)."""
        keys, x = self.export()
        self._reset_cells(1)
        self._train_on(keys, x)

    def retrained(self, keys: I64, x: F32) -> IvfStore:
        """A new store holding ``(keys, x)`` (an :meth:`export` of this one), trained for their
        number; this store is not touched (so it can keep serving while this runs)."""
        new = IvfStore(self.dim, **self.options())
        new.auto_train = self.auto_train
        new.trainings, new.training_log = self.trainings, self.training_log
        if len(keys):
            new._grow_where(int(keys.max()))
        new._n = len(keys)
        new._train_on(keys, x)
        return new

    def _train_on(self, keys: I64, x: F32) -> None:
        started = time.perf_counter()
        nlist = self._target_lists(self._n)
        self._mean = self._basis = self._centroids = None
        if nlist > 1:
            rng = np.random.default_rng(self.seed + self.trainings)
            take = min(len(x), SAMPLE_PER_LIST * nlist)
            sample = x[np.sort(rng.choice(len(x), take, replace=False))]
            self._set_axes(*principal_axes(sample))
            sample = self._rotate(sample)
            centroids = kmeans(
                sample, nlist, iterations=TRAIN_ITERATIONS, seed=self.seed + self.trainings
            )
            del sample
            self._set_centroids(centroids)
        y = self._rotate(x)
        del x
        self._distribute(keys, y, self._cells_of(y))
        self.trained_at = self._n
        self.trainings += 1
        seconds = round(time.perf_counter() - started, 3)
        self.training_log.append({"n": self._n, "nlist": self.nlist, "seconds": seconds})

    def _reset_cells(self, nlist: int) -> None:
        self._heads: list[F32] = [np.zeros((0, self.head), dtype=np.float32)] * nlist
        self._tails: list[F32] = [np.zeros((0, self.dim - self.head), dtype=np.float32)] * nlist
        self._keys: list[I64] = [np.zeros(0, dtype=np.int64)] * nlist
        self._sizes: list[int] = [0] * nlist

    def _set_axes(self, mean: F32, basis: F32) -> None:
        self._mean, self._basis = mean, basis
        self._mean_b = (mean @ basis).astype(np.float32)

    def _set_centroids(self, centroids: F32) -> None:
        self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self._half = (0.5 * np.einsum("ij,ij->i", centroids, centroids)).astype(np.float32)
        self._reset_cells(len(centroids))

    # -- queries ---------------------------------------------------------------------------

    def search(self, v: F32, k: int) -> tuple[I64, F32]:
        """The ``k`` best keys and their inner products with ``v``, best first."""
        if self._n == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self._basis is None or self._mean is None or self._centroids is None:
            return self._exact(v, k, list(range(self.nlist)))
        qb = (v @ self._basis).astype(np.float32)  # Bᵀq: x·q = m·q + y·Bᵀq
        scores = np.einsum("ij,j->i", self._centroids, qb - self._mean_b)
        scores -= self._half
        p = self.nprobe
        if p >= self.nlist:
            cells = list(range(self.nlist))
        else:
            cells = np.argpartition(scores, self.nlist - p)[self.nlist - p :].tolist()
        return self._two_stage(qb, float(self._mean @ v), k, cells)

    def _exact(self, v: F32, k: int, cells: list[int]) -> tuple[I64, F32]:
        """Untrained: raw vectors, exact scores over every row."""
        h = self.head
        sims = [
            np.einsum("ij,j->i", self._heads[c][:s], v[:h])
            + np.einsum("ij,j->i", self._tails[c][:s], v[h:])
            for c in cells
            if (s := self._sizes[c])
        ]
        keys = [self._keys[c][:s] for c in cells if (s := self._sizes[c])]
        all_sims, all_keys = np.concatenate(sims), np.concatenate(keys)
        return _top(all_keys, all_sims, k)

    def _two_stage(self, qb: F32, mq: float, k: int, cells: list[int]) -> tuple[I64, F32]:
        h, sizes, heads = self.head, self._sizes, self._heads
        total = sum([sizes[c] for c in cells])
        if total < min(k, self._n) and len(cells) < self.nlist:  # k wider than the cells
            return self._two_stage(qb, mq, k, list(range(self.nlist)))
        if len(self._buf) < total:
            self._buf = np.empty(max(total, 2 * len(self._buf)), dtype=np.float32)
        buf, qh = self._buf, qb[:h]
        starts: list[int] = []
        used: list[int] = []
        pos = 0
        for c in cells:  # stage 1: head scores of every row of the scanned cells
            s = sizes[c]
            if s:
                np.einsum("ij,j->i", heads[c][:s], qh, out=buf[pos : pos + s])
                starts.append(pos)
                used.append(c)
                pos += s
        scan = buf[:pos]
        r = min(pos, max(self.rerank, k))
        picked = _at_least_best(scan, r)
        begin = np.asarray(starts)
        which = np.searchsorted(begin, picked, side="right") - 1
        offsets = (picked - begin[which]).tolist()
        keys = np.empty(len(picked), dtype=np.int64)
        tails = np.empty((len(picked), self.dim - h), dtype=np.float32)
        for i, (w, o) in enumerate(zip(which.tolist(), offsets, strict=True)):
            c = used[w]
            keys[i] = self._keys[c][o]
            tails[i] = self._tails[c][o]
        exact = scan[picked] + np.einsum("ij,j->i", tails, qb[h:])  # stage 2: exact scores
        exact += np.float32(mq)
        return _top(keys, exact, k)

    # -- persistence -----------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], bytes]:
        """Settings and the rows as one buffer: mean, axes, centroids, cell sizes, keys,
        stored rows."""
        keys, y = self._stored()
        meta = {
            "dim": self.dim,
            "flat_max": self.flat_max,
            "list_size": self.list_size,
            "max_lists": self.max_lists,
            "probe_factor": self.probe_factor,
            "rerank": self.rerank,
            "head": self.head,
            "seed": self.seed,
            "trained_at": self.trained_at,
            "trainings": self.trainings,
            "nlist": self.nlist if self._centroids is not None else 0,
            "n": len(keys),
        }
        parts: list[bytes] = []
        if self._mean is not None and self._basis is not None:
            parts += [self._mean.tobytes(), self._basis.tobytes()]
        if self._centroids is not None:
            parts.append(self._centroids.tobytes())
        parts.append(np.asarray(self._sizes, dtype=np.int64).tobytes())
        return meta, b"".join([*parts, keys.tobytes(), y.tobytes()])

    @classmethod
    def from_state(cls, meta: dict[str, Any], data: bytes | memoryview) -> IvfStore:
        store = cls(
            int(meta["dim"]),
            flat_max=int(meta["flat_max"]),
            list_size=int(meta["list_size"]),
            max_lists=int(meta["max_lists"]),
            probe_factor=float(meta["probe_factor"]),
            rerank=int(meta["rerank"]),
            head=int(meta["head"]),
            seed=int(meta["seed"]),
        )
        dim, nlist, n = store.dim, int(meta["nlist"]), int(meta["n"])
        buf = memoryview(data)
        pos = 0

        def take(dtype: Any, count: int) -> NDArray[Any]:
            nonlocal pos
            size = np.dtype(dtype).itemsize * count
            if pos + size > len(buf):
                raise ValueError("truncated IVF state")
            out = np.frombuffer(buf[pos : pos + size], dtype=dtype).copy()
            pos += size
            return out

        if nlist:
            store._set_axes(take(np.float32, dim), take(np.float32, dim * dim).reshape(dim, dim))
            store._set_centroids(take(np.float32, nlist * dim).reshape(nlist, dim))
        sizes = take(np.int64, max(1, nlist))
        keys = take(np.int64, n)
        y = take(np.float32, n * dim).reshape(n, dim)
        if pos != len(buf) or int(sizes.sum()) != n:
            raise ValueError("inconsistent IVF state")
        if n:
            store._grow_where(int(keys.max()))
            store._distribute(keys, y, np.repeat(np.arange(len(sizes)), sizes))
        store._n = n
        store.trained_at = int(meta["trained_at"])
        store.trainings = int(meta["trainings"])
        return store


def _at_least_best(scan: F32, r: int) -> I64:
    """Positions of at least the ``r`` highest values of ``scan`` (ties and a loose threshold
    may add a few more; never fewer).  A full partition of ~10⁵ values costs about a
    millisecond; a threshold guessed from every 16th value, checked by counting, costs a tenth.
    """
    n = len(scan)
    if r >= n:
        return np.arange(n)
    sample = scan[::16]
    want = min(len(sample), 2 * r // 16 + 1)  # about the 2r-th highest overall
    guess = np.partition(sample, len(sample) - want)[len(sample) - want]
    picked = np.flatnonzero(scan >= guess)
    if len(picked) < r or len(picked) > 16 * r:  # a bad guess: the exact partition
        picked = np.flatnonzero(scan >= np.partition(scan, n - r)[n - r])
    return picked


def _top(keys: I64, sims: F32, k: int) -> tuple[I64, F32]:
    k = min(k, len(sims))
    top = np.argpartition(sims, len(sims) - k)[len(sims) - k :]
    top = top[np.argsort(-sims[top], kind="stable")]
    return keys[top], sims[top]


__all__ = ["IvfStore", "kmeans", "principal_axes"]

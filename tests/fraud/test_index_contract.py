"""One contract for every FaceIndex: exact (numpy), the embedded indexes (persisted and sealed):
IVF (the default; also with tiny cells, so that the small galleries here are trained and
scanned cell by cell, not flat) and usearch HNSW, and PostgreSQL + pgvector (a fresh database;
fails in CI when unavailable) — each with dlib's 128-d templates and MobileFaceNet's 192-d ones
(galleries per network: the providers of two networks over one storage never mix)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from shiren.errors import ConfigError, InputError
from shiren.fraud.embedded import EmbeddedProvider, HnswIndex, IvfIndex
from shiren.fraud.index import (
    LEGACY_NETWORK,
    ExactProvider,
    IndexProvider,
    network_key,
    provider_for,
    scoped_gallery,
)
from shiren.fraud.pgvector import PgVectorProvider, table_for
from shiren.fraud.sealed_gallery import _MAGIC, _MAGIC_IVF
from shiren.fraud.synthetic import GalleryModel
from shiren.privacy import CipherContext, DecryptError, new_data_key, open_, seal
from shiren.storage.sql import make_engine
from tests.storage.conftest import _unavailable, fresh_pg_database

KINDS = ("exact", "embedded", "ivf-cells", "hnsw", "pgvector")
NETWORKS = {128: LEGACY_NETWORK, 192: "mobilefacenet-onnx"}
"""Template dimension → the network that makes it (dlib's ResNet, MobileFaceNet)."""
TINY_CELLS = {"flat_max": 24, "list_size": 8}
"""IVF settings under which 24+ entries are already split into cells (≥ 16 of them)."""
Reopen = Callable[[], IndexProvider]


def _sealers() -> tuple[Callable[[str, str, bytes], bytes], Callable[[str, str, bytes], bytes]]:
    key = new_data_key()

    def s(tenant: str, purpose: str, data: bytes) -> bytes:
        return seal(key, data, CipherContext(tenant, "face_index", purpose, "file"))

    def o(tenant: str, purpose: str, blob: bytes) -> bytes:
        return open_(key, blob, CipherContext(tenant, "face_index", purpose, "file"))

    return s, o


@contextmanager
def _provider(kind: str, tmp_path: Path, dim: int) -> Iterator[tuple[IndexProvider, Reopen]]:
    """A fresh provider of ``kind`` for ``dim``-d templates (of the network making them), and
    how to open the same storage again (a restart, another worker)."""
    net = NETWORKS[dim]
    if kind == "exact":
        exact = ExactProvider(dim, net)
        yield exact, lambda: exact
    elif kind in ("embedded", "ivf-cells", "hnsw"):
        s, o = _sealers()
        choices: dict[str, dict[str, Any]] = {
            "embedded": {},
            "ivf-cells": {"kind": "ivf", "options": TINY_CELLS},
            "hnsw": {"kind": "hnsw"},
        }
        options = choices[kind]

        def make() -> IndexProvider:
            return EmbeddedProvider(tmp_path, seal=s, open_=o, dim=dim, network=net, **options)

        yield make(), make
    else:
        with fresh_pg_database() as url:
            engine = make_engine(url)
            provider = PgVectorProvider(engine, dim, net)
            try:
                provider.ensure()
            except Exception as exc:  # extension missing: scripts/install_pgvector.sh
                engine.dispose()
                _unavailable(f"pgvector: {type(exc).__name__}")
            try:
                yield provider, lambda: PgVectorProvider(engine, dim, net)
            finally:
                engine.dispose()


@pytest.fixture(params=[(k, d) for k in KINDS for d in NETWORKS], ids=lambda p: f"{p[0]}-{p[1]}")
def made(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[IndexProvider, Reopen]]:
    kind, dim = request.param
    with _provider(kind, tmp_path, dim) as found:
        yield found


def _vectors(n: int, seed: int = 0, dim: int = 128) -> np.ndarray:
    return GalleryModel.default(dim).sample(n, np.random.default_rng(seed))


def _dim(provider: IndexProvider) -> int:
    return int(provider.dim)  # type: ignore[attr-defined]


def test_add_search_remove(made: tuple[IndexProvider, Reopen]) -> None:
    provider, _ = made
    index = provider.index("t1", "enrolled")
    m = _vectors(50, dim=_dim(provider))
    for i, v in enumerate(m):
        index.add(f"e{i}", v)
    assert len(index) == 50
    assert "e7" in index
    assert "nope" not in index
    hits = index.search(m[7], 5)
    assert hits[0].entry_id == "e7"
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    assert len(hits) == 5
    assert index.remove("e7") is True
    assert index.remove("e7") is False
    assert "e7" not in index
    assert len(index) == 49
    assert all(h.entry_id != "e7" for h in index.search(m[7], 10))
    assert len(index.search(m[0], 500)) == 49


def test_replace_keeps_one_entry(made: tuple[IndexProvider, Reopen]) -> None:
    provider, _ = made
    index = provider.index("t1", "enrolled")
    a, b = _vectors(2, seed=3, dim=_dim(provider))
    index.add("x", a)
    index.add("x", b)
    assert len(index) == 1
    hit = index.search(b, 3)
    assert [h.entry_id for h in hit] == ["x"]
    assert hit[0].similarity == pytest.approx(1.0, abs=1e-4)


def test_tenants_and_galleries_are_isolated(made: tuple[IndexProvider, Reopen]) -> None:
    provider, _ = made
    v = _vectors(1, seed=4, dim=_dim(provider))[0]
    provider.index("t1", "enrolled").add("a", v)
    provider.index("t1", "blacklist").add("b", v)
    provider.index("t2", "enrolled").add("c", v)
    assert [h.entry_id for h in provider.index("t1", "enrolled").search(v, 5)] == ["a"]
    assert [h.entry_id for h in provider.index("t1", "blacklist").search(v, 5)] == ["b"]
    assert [h.entry_id for h in provider.index("t2", "enrolled").search(v, 5)] == ["c"]
    assert provider.index("t3", "enrolled").search(v, 5) == []
    provider.drop("t1", "enrolled")
    assert len(provider.index("t1", "enrolled")) == 0
    assert len(provider.index("t1", "blacklist")) == 1


def test_bad_vectors_are_typed_errors(made: tuple[IndexProvider, Reopen]) -> None:
    index = made[0].index("t1", "enrolled")
    dim = _dim(made[0])
    other = 320 - dim  # the other network's dimension (128 ↔ 192)
    for bad in (np.zeros(dim), np.ones(64), np.ones(other), np.full(dim, np.nan)):
        with pytest.raises(InputError):
            index.add("x", bad.astype(np.float32))
        with pytest.raises(InputError):
            index.search(bad.astype(np.float32), 1)


def test_survives_a_reopen(made: tuple[IndexProvider, Reopen]) -> None:
    provider, reopen = made
    index = provider.index("t1", "enrolled")
    m = _vectors(30, seed=5, dim=_dim(provider))
    for i, v in enumerate(m[:20]):
        index.add(f"e{i}", v)
    index.persist()  # snapshot ...
    for i, v in enumerate(m[20:], start=20):
        index.add(f"e{i}", v)  # ... then journalled changes
    index.remove("e3")
    again = reopen().index("t1", "enrolled")
    assert len(again) == 29
    assert "e3" not in again
    assert again.search(m[25], 1)[0].entry_id == "e25"
    assert again.search(m[10], 1)[0].entry_id == "e10"


@pytest.mark.parametrize("kind", KINDS)
def test_two_networks_over_one_storage_never_mix(kind: str, tmp_path: Path) -> None:
    """dlib's galleries and MobileFaceNet's share a folder / database, never an index: each
    network searches its own entries only, a probe of the other's dimension is a typed error,
    a restart keeps them apart, dropping one leaves the other, and an erasure
    (``remove_everywhere``) reaches both unless a network is kept."""
    with _provider(kind, tmp_path, 128) as (dlib, reopen):
        mfn = provider_for(dlib, NETWORKS[192], 192)
        assert provider_for(dlib, LEGACY_NETWORK, 128) is dlib
        assert provider_for(mfn, NETWORKS[192], 192) is mfn
        old, new = _vectors(5, seed=1, dim=128), _vectors(5, seed=2, dim=192)
        for i in range(5):
            dlib.index("t1", "enrolled").add(f"s{i}", old[i])
            mfn.index("t1", "enrolled").add(f"s{i}", new[i])
        mfn.index("t1", "blacklist").add("x", new[0])
        for provider in (dlib, mfn):
            provider.index("t1", "enrolled").persist()
        assert len(dlib.index("t1", "enrolled")) == len(mfn.index("t1", "enrolled")) == 5
        assert len(dlib.index("t1", "blacklist")) == 0
        assert mfn.index("t1", "enrolled").search(new[3], 1)[0].entry_id == "s3"
        assert dlib.index("t1", "enrolled").search(old[3], 1)[0].entry_id == "s3"
        with pytest.raises(InputError):
            dlib.index("t1", "enrolled").search(new[3], 1)
        with pytest.raises(InputError):
            mfn.index("t1", "enrolled").search(old[3], 1)

        again = reopen()  # a restart (or another worker): still apart
        again_mfn = provider_for(again, NETWORKS[192], 192)
        assert again_mfn.index("t1", "enrolled").search(new[4], 1)[0].entry_id == "s4"
        assert len(again.index("t1", "blacklist")) == 0
        assert again.remove_everywhere("t1", "enrolled", "s1") == 2  # type: ignore[attr-defined]
        kept = again_mfn.remove_everywhere(  # type: ignore[attr-defined]
            "t1", "enrolled", "s2", keep={LEGACY_NETWORK}
        )
        assert kept == 1
        again_mfn.drop("t1", "blacklist")
        later = reopen()
        later_mfn = provider_for(later, NETWORKS[192], 192)
        assert {"s1", "s2"} & _ids(later_mfn.index("t1", "enrolled")) == set()
        assert "s1" not in later.index("t1", "enrolled")
        assert "s2" in later.index("t1", "enrolled")
        assert len(later_mfn.index("t1", "enrolled")) == 3
        assert len(later_mfn.index("t1", "blacklist")) == 0
        assert len(later.index("t1", "enrolled")) == 4


def _ids(index: Any) -> set[str]:
    return {h.entry_id for h in index.search(np.ones(index.dim, dtype=np.float32), 50)}


def test_stored_names_are_per_network(tmp_path: Path) -> None:
    """dlib keeps the names every gallery had before (``enrolled.shix``; the 128-d pgvector
    table); another network's are qualified by a short, file- and SQL-safe key."""
    assert scoped_gallery("enrolled", LEGACY_NETWORK) == "enrolled"
    assert scoped_gallery("enrolled", "mobilefacenet-onnx") == "enrolled@mobilefacenet-onnx"
    odd = network_key("Some Net/v2 (fp16)")
    assert odd == network_key("Some Net/v2 (fp16)")
    assert odd.startswith("n")
    assert len(odd) == 17
    assert (table_for(128), table_for(192)) == ("face_index_entries", "face_index_entries_192")
    dlib = EmbeddedProvider(tmp_path)
    provider_for(dlib, "mobilefacenet-onnx", 192).index("t1", "enrolled").add(
        "a", _vectors(1, dim=192)[0]
    )
    dlib.index("t1", "enrolled").add("a", _vectors(1)[0])
    names = sorted(p.name for p in (tmp_path / "t1").iterdir())
    assert names == ["enrolled.journal", "enrolled@mobilefacenet-onnx.journal"]


def test_a_provider_of_another_dimension_is_a_config_error() -> None:
    class Wrapped:  # no for_network: taken as it is, unless its dimension says otherwise
        dim = 128

        def index(self, tenant_id: str, gallery: str) -> Any: ...

        def drop(self, tenant_id: str, gallery: str) -> None: ...

    with pytest.raises(ConfigError):
        provider_for(Wrapped(), "mobilefacenet-onnx", 192)
    plain = Wrapped()
    assert provider_for(plain, LEGACY_NETWORK, 128) is plain


def test_recall_against_exact(made: tuple[IndexProvider, Reopen]) -> None:
    provider, _ = made
    model = GalleryModel.default(_dim(provider))
    rng = np.random.default_rng(11)
    gallery = model.sample(3000, rng)
    probes = model.probes(gallery[:200], rng)
    index = provider.index("t1", "enrolled")
    if hasattr(index, "add_many"):
        index.add_many([f"g{i}" for i in range(len(gallery))], gallery)
    else:  # pragma: no cover - every shipped index has add_many
        for i, v in enumerate(gallery):
            index.add(f"g{i}", v)
    if isinstance(index, IvfIndex | HnswIndex):
        index.add_many([], gallery[:0])  # an empty batch is a no-op
        assert len(index) == len(gallery)
    exact = (probes @ gallery.T).argmax(axis=1)
    found = [index.search(p, 1)[0].entry_id for p in probes]
    recall = np.mean([f == f"g{e}" for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.99


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_embedded_file_is_sealed(tmp_path: Path, kind: str) -> None:
    s, o = _sealers()
    v = _vectors(1, seed=9)[0]
    index = EmbeddedProvider(tmp_path, seal=s, open_=o, kind=kind).index("t1", "enrolled")
    index.add("a", v)
    index.persist()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert v.tobytes()[:16] not in raw  # no plaintext float run from the vector
    _, wrong = _sealers()
    with pytest.raises(DecryptError):  # another key cannot open it …
        wrong("t1", "index.snapshot", next(tmp_path.rglob("*.shix")).read_bytes()[len(_MAGIC) :])
    # … and the index, which is derived data (rebuilt from the sealed templates), starts empty
    # rather than failing every check; the unreadable file is set aside, not deleted
    reopened = EmbeddedProvider(tmp_path, seal=s, open_=wrong, kind=kind).index("t1", "enrolled")
    assert len(reopened) == 0
    assert list(tmp_path.rglob("*.unreadable"))


@pytest.mark.parametrize("dim", list(NETWORKS))
def test_pgvector_uses_hnsw(tmp_path: Path, dim: int) -> None:
    with _provider("pgvector", tmp_path, dim) as (provider, _):
        assert isinstance(provider, PgVectorProvider)
        with provider.engine.connect() as conn:
            defs = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename=:t"), {"t": provider.table}
            ).scalars()
            assert any("hnsw" in d and "vector_cosine_ops" in d for d in defs)


def test_embedded_journal_turns_into_snapshots(tmp_path: Path) -> None:
    s, o = _sealers()
    index = EmbeddedProvider(tmp_path, seal=s, open_=o).index("t1", "enrolled")
    assert isinstance(index, IvfIndex)  # the default embedded index
    index.snapshot_every = 5
    m = _vectors(12, seed=2)
    for i, v in enumerate(m):
        index.add(f"e{i}", v)
    snapshot = tmp_path / "t1" / "enrolled.shix"
    assert snapshot.exists()
    assert snapshot.with_suffix(".journal").exists()  # the 2 changes after the last snapshot
    again = EmbeddedProvider(tmp_path, seal=s, open_=o).index("t1", "enrolled")
    assert len(again) == 12
    assert again.search(m[11], 1)[0].entry_id == "e11"


def test_ivf_cells_keep_exact_scores_through_changes_and_reopen(tmp_path: Path) -> None:
    """A trained IVF (cells, not flat): adds one by one retrain it as it grows; removals and
    replacements move rows between cells; a reopen (snapshot + journal) gives the same
    answers; every score is the exact cosine and recall against exact search holds."""
    s, o = _sealers()
    opts = {"flat_max": 100, "list_size": 10, "background_training": False}
    index = EmbeddedProvider(tmp_path, seal=s, open_=o, options=opts).index("t1", "enrolled")
    assert isinstance(index, IvfIndex)
    model = GalleryModel.default()
    rng = np.random.default_rng(21)
    gallery = model.sample(1400, rng)
    for i, v in enumerate(gallery[:700]):
        index.add(f"g{i}", v)
    trainings = index.store.trainings
    assert trainings >= 3  # at 100, then each time the cells could double (16 → 32 → 64)
    assert index.store.nlist >= 64
    assert index.store.nprobe < index.store.nlist
    index.persist()
    index.add_many([f"g{i}" for i in range(700, 1400)], gallery[700:])
    assert index.store.trainings > trainings  # 1,400 entries: 140 cells wanted
    index.persist()
    for i in range(0, 1400, 7):  # removals and replacements after the snapshot: journalled
        assert index.remove(f"g{i}") is True
    replaced = model.sample(50, rng)
    for j, v in enumerate(replaced):
        index.add(f"g{j * 7 + 1}", v)
    alive = {f"g{i}": gallery[i] for i in range(1400) if i % 7}
    alive.update({f"g{j * 7 + 1}": v for j, v in enumerate(replaced)})
    probes = model.probes(np.asarray(list(alive.values())[:300]), rng)

    again = EmbeddedProvider(tmp_path, seal=s, open_=o, options=opts).index("t1", "enrolled")
    assert isinstance(again, IvfIndex)
    assert len(again) == len(index) == len(alive)
    assert again.store.nlist == index.store.nlist
    names = list(alive)
    matrix = np.asarray([alive[n] for n in names])
    hits_found = 0
    for p in probes:
        first = index.search(p, 5)
        assert again.search(p, 5) == first
        sims = matrix @ (p / np.linalg.norm(p))
        for h in first:  # the exact cosine of the entry named
            assert h.similarity == pytest.approx(float(sims[names.index(h.entry_id)]), abs=1e-5)
        hits_found += first[0].entry_id == names[int(sims.argmax())]
    assert hits_found / len(probes) >= 0.99
    for name in ("g0", "g7", "g14"):
        assert name not in again
        assert all(h.entry_id != name for h in again.search(gallery[int(name[1:])], 10))
    for name in names[::40]:  # every stored row still finds itself first
        assert again.search(alive[name], 1)[0].entry_id == name


def test_hnsw_gallery_migrates_to_ivf(tmp_path: Path) -> None:
    """A gallery written by the HNSW index (snapshot ``SHIX1`` + journal) opens as an IVF:
    every entry kept, journal replayed, an IVF snapshot written in its place (sealed)."""
    s, o = _sealers()
    m = _vectors(40, seed=13)
    old = EmbeddedProvider(tmp_path, seal=s, open_=o, kind="hnsw").index("t1", "enrolled")
    assert isinstance(old, HnswIndex)
    for i, v in enumerate(m[:30]):
        old.add(f"e{i}", v)
    old.persist()
    for i, v in enumerate(m[30:], start=30):
        old.add(f"e{i}", v)
    old.remove("e5")
    snapshot = tmp_path / "t1" / "enrolled.shix"
    assert snapshot.read_bytes().startswith(_MAGIC)

    new = EmbeddedProvider(tmp_path, seal=s, open_=o).index("t1", "enrolled")
    assert isinstance(new, IvfIndex)
    assert len(new) == 39
    assert "e5" not in new
    for i in (0, 17, 29, 30, 39):
        hit = new.search(m[i], 1)[0]
        assert hit.entry_id == f"e{i}"
        assert hit.similarity == pytest.approx(1.0, abs=1e-5)
    assert snapshot.read_bytes().startswith(_MAGIC_IVF)
    assert not snapshot.with_suffix(".journal").exists()
    again = EmbeddedProvider(tmp_path, seal=s, open_=o).index("t1", "enrolled")
    assert len(again) == 39
    assert again.search(m[39], 1)[0].entry_id == "e39"


def test_damaged_ivf_snapshot_is_set_aside(tmp_path: Path) -> None:
    """A truncated snapshot (which the identity sealer cannot detect) is derived data: set
    aside, the index starts empty for the service to rebuild."""
    index = EmbeddedProvider(tmp_path).index("t1", "enrolled")
    for i, v in enumerate(_vectors(10, seed=14)):
        index.add(f"e{i}", v)
    index.persist()
    snapshot = tmp_path / "t1" / "enrolled.shix"
    snapshot.write_bytes(snapshot.read_bytes()[:-100])
    reopened = EmbeddedProvider(tmp_path).index("t1", "enrolled")
    assert len(reopened) == 0
    assert (tmp_path / "t1" / "enrolled.shix.unreadable").exists()


def test_ivf_trains_in_the_background_without_losing_changes() -> None:
    """The add that calls for more cells returns at once; the old cells keep answering while
    the training runs; adds, replacements and removals made meanwhile are all in the new cells
    that replace them."""
    model = GalleryModel.default()
    rng = np.random.default_rng(31)
    gallery = model.sample(260, rng)
    index = IvfIndex(flat_max=100, list_size=10)
    gate = threading.Event()
    index._train_gate = gate  # hold the trainer before it swaps its cells in
    for i, v in enumerate(gallery[:100]):
        index.add(f"g{i}", v)
    assert index.training  # the 100th add started it and returned
    assert index.store.nlist == 1  # still the flat cell
    for i, v in enumerate(gallery[100:200], start=100):
        index.add(f"g{i}", v)
    index.add_many([f"g{i}" for i in range(200, 260)], gallery[200:])
    for i in range(0, 260, 9):
        index.remove(f"g{i}")
    replaced = model.sample(10, rng)
    for j, v in enumerate(replaced):
        index.add(f"g{j * 9 + 2}", v)
    assert index.search(gallery[50], 1)[0].entry_id == "g50"  # served by the old cells
    gate.set()
    index.wait_for_training(timeout=60)
    assert not index.training
    assert index.store.trainings == 1
    assert index.store.nlist == 16  # trained at 100 entries: 16 cells
    alive = {f"g{i}": gallery[i] for i in range(260) if i % 9}
    alive.update({f"g{j * 9 + 2}": v for j, v in enumerate(replaced)})
    assert len(index) == len(index.store) == len(alive)
    for name, v in alive.items():
        hit = index.search(v, 1)[0]
        assert hit.entry_id == name
        assert hit.similarity == pytest.approx(1.0, abs=1e-5)
    for i in range(0, 260, 9):
        assert all(h.entry_id != f"g{i}" for h in index.search(gallery[i], 20))


def test_ivf_candidate_cut_never_drops_a_best_row() -> None:
    """The stage-1 cut keeps at least the r best head scores, whatever the distribution."""
    from shiren.fraud.ivf import _at_least_best

    rng = np.random.default_rng(5)
    cases = [
        rng.normal(size=5000).astype(np.float32),
        np.sort(rng.normal(size=3000)).astype(np.float32),  # the best all at the end
        np.full(2000, 0.5, dtype=np.float32),  # all tied
        rng.normal(size=40).astype(np.float32),  # fewer rows than the cut
    ]
    for scan in cases:
        for r in (1, 10, 64):
            picked = _at_least_best(scan, r)
            assert len(picked) >= min(r, len(scan))
            best = np.sort(scan)[::-1][: min(r, len(scan))]
            assert np.sort(scan[picked])[::-1][: len(best)].tolist() == best.tolist()

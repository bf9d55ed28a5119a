"""The enrolled-gallery reader (``shiren.service.gallery_calibration``) against a real service on
SQLite and in memory, with fake models: which templates it opens (the latest live one of the
current network per subject, never an erased subject's, never another tenant's), and the report
built on it (``shiren.eval.population``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shiren.errors import StateError
from shiren.eval.population import MIN_SUBJECTS, ReportCache, population_report
from shiren.service.app import ShirenService
from shiren.service.gallery_calibration import read_gallery
from shiren.service.keys import ServiceKeys
from shiren.service.matching import network_of
from shiren.storage.memory import MemoryStore
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.service.fixtures import FakeClock
from tests.service.gallery_support import FAKE_THRESHOLD, bind_face, fake_engine, random_faces

DLIB = "dlib-resnet-v1-onnx@sha256:" + "ab" * 32


@pytest.fixture(params=["sqlite", "memory"])
def service(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    store: Any
    if request.param == "memory":
        store = MemoryStore()
    else:
        sql = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
        migrate(sql)
        store = SqlStore(sql)
    return ShirenService(
        store=store, keys=ServiceKeys.generate(), engine=fake_engine(), clock=clock
    )


def test_network_of_reads_the_name_before_the_digest() -> None:
    assert network_of(DLIB) == "dlib-resnet-v1-onnx"
    assert network_of("mobilefacenet-onnx@sha256:00") == "mobilefacenet-onnx"


def test_reader_opens_the_latest_live_current_network_template_per_subject(
    service: ShirenService, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender A")
    other, _ = service.create_tenant("lender B")
    now = clock()
    faces = random_faces(8, seed=3)
    expected: dict[str, np.ndarray[Any, Any]] = {}
    for i in range(4):  # plain subjects, one of them from before subject keys
        s = bind_face(service, tenant, faces[i], now - timedelta(days=9), legacy_key=i == 0)
        expected[s.id] = faces[i]
    # re-bound: the older template is superseded by the newer one
    twice = bind_face(service, tenant, faces[4], now - timedelta(days=5))
    bind_face(service, tenant, faces[5], now - timedelta(days=1), subject=twice)
    expected[twice.id] = faces[5]
    # a subject with a dlib template and a newer current one: the current one is used
    mixed = bind_face(service, tenant, np.ones(128, np.float32), now, embedder=DLIB)
    bind_face(service, tenant, faces[6], now - timedelta(days=2), subject=mixed)
    expected[mixed.id] = faces[6]
    # left out: dlib only, expired, erased, another tenant's
    bind_face(service, tenant, np.ones(128, np.float32), now, embedder=DLIB)
    bind_face(service, tenant, faces[7], now - timedelta(days=400), expires_at=now - timedelta(1))
    erased = bind_face(service, tenant, faces[7], now - timedelta(days=3))
    with service.store() as uow:  # the row alone (erasure also deletes templates)
        uow.subjects.erase(tenant.id, erased.id, now)
        uow.commit()
    gone = bind_face(service, tenant, faces[7] * 2, now - timedelta(days=3))
    service.erase_subject(tenant, gone.id)  # the real erasure
    bind_face(service, other, faces[7], now)

    gallery = read_gallery(service, tenant.id)

    assert gallery.network == "fake-embedder"
    assert gallery.metric == "cosine"
    assert gallery.n_subjects == len(expected) == 6
    assert gallery.n_other_network == 1
    assert gallery.n_other_shape == 0
    want = np.stack([expected[k] for k in sorted(expected)])
    np.testing.assert_array_equal(gallery.templates, want)
    assert gallery.threshold == FAKE_THRESHOLD  # no shipped value for the fake network
    assert gallery.duplicate_cutoff == service.fraud.policy.duplicate_threshold


def test_reader_logs_counts_only(
    service: ShirenService, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tenant, _ = service.create_tenant("lender A")
    faces = random_faces(3, seed=5)
    for face in faces:
        bind_face(service, tenant, face, clock())
    with caplog.at_level(logging.DEBUG, logger="shiren.service.gallery"):
        read_gallery(service, tenant.id)
    text = caplog.text
    assert "subjects=3" in text
    for face in faces:
        assert f"{face[0]:.4f}" not in text
        assert face.tobytes().hex()[:16] not in text


def test_unknown_tenant_is_not_found(service: ShirenService) -> None:
    with pytest.raises(StateError):
        read_gallery(service, "0" * 32)


def test_population_report_on_a_small_gallery(service: ShirenService, clock: FakeClock) -> None:
    tenant, _ = service.create_tenant("lender A")
    empty = population_report(service, tenant.id)
    assert (empty["n_subjects"], empty["report"], empty["enough"]) == (0, None, False)
    faces = random_faces(12, seed=7)
    faces[11] = faces[10] * 1.01  # one person under two ID numbers: cosine 1.0
    for face in faces:
        bind_face(service, tenant, face, clock())
    result = population_report(service, tenant.id, targets=(1e-2,))
    rep = result["report"]
    assert result["n_subjects"] == 12
    assert MIN_SUBJECTS > 12
    assert result["enough"] is False
    assert rep["n_pairs_possible"] == 66
    assert rep["n_probable_duplicates_excluded"] == 1
    assert rep["n_pairs_used"] == 65
    assert rep["current"]["threshold"] == FAKE_THRESHOLD
    assert rep["proposals"][0]["insufficient"] is True  # 65 < 3 / 1e-2


def test_report_cache_reuses_then_expires(service: ShirenService, clock: FakeClock) -> None:
    tenant, _ = service.create_tenant("lender A")
    for face in random_faces(3, seed=9):
        bind_face(service, tenant, face, clock())
    ticks = [0.0]
    cache = ReportCache(ttl_s=60, clock=lambda: ticks[0])
    first = cache.get(service, tenant.id)
    bind_face(service, tenant, random_faces(1, seed=10)[0], clock())
    ticks[0] = 59.0
    assert cache.get(service, tenant.id) is first
    ticks[0] = 61.0
    assert cache.get(service, tenant.id)["n_subjects"] == 4

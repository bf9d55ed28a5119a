"""Galleries per network (docs/FRAUD.md): a deployment whose galleries were built with dlib's
128-d templates, then served by a service on MobileFaceNet (192-d), on SQLite (embedded index
files, sealed) and PostgreSQL (pgvector, a table per dimension).

Fake models of both networks (the real ones' names and dimensions; a template is a fixed
projection of the fake embedder's thumbnail, so one image always gives one template): what is
tested is which galleries the templates go to, not how faces compare.  The 192-d service

* starts with empty galleries and rebuilds them from 192-d rows only, never crashing on a 128-d
  row, reference or blacklist entry, and reports what it skips (``stale_counts``, counts only);
* keeps the 128-d galleries intact (nothing stored is lost) and reaches them at an erasure;
* never compares a 192-d probe with a 128-d template (duplicate search, same ID number other
  face, blacklist), while its own galleries find duplicates and blacklisted faces as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest

from shiren.core.geometry import FloatArray
from shiren.core.similarity import Metric
from shiren.domain import idnumber
from shiren.domain.entities import SubjectStatus, Template, Tenant, new_id
from shiren.errors import StateError
from shiren.fraud.embedded import EmbeddedProvider
from shiren.fraud.index import LEGACY_NETWORK, IndexProvider, provider_for
from shiren.fraud.pgvector import PgVectorProvider
from shiren.liveness.check import LivenessChecker
from shiren.models.fake import (
    FakeAligner,
    FakeDetector,
    FakeEmbedder,
    FakeLandmarker,
    fake_info,
)
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.fraud import BLACKLIST, ENROLLED, REFERENCES, FraudGuard, index_sealers
from shiren.service.keys import ServiceKeys
from shiren.verifier import MOBILEFACENET, TEMPLATE_VERSION, Verifier, VerifierConfig
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, NAME
from tests.storage.conftest import _unavailable, open_backend

NETWORKS = {128: LEGACY_NETWORK, 192: MOBILEFACENET}
THRESHOLD = 0.3
"""The fake verifiers' threshold (no calibrated value ships for fake templates)."""


class NetworkEmbedder:
    """A fake of one network: its name and dimension, templates a fixed random projection of
    :class:`FakeEmbedder`'s (so equal images give equal templates)."""

    metric: Metric = "cosine"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.info = fake_info(NETWORKS[dim], (32, 32))
        self.chip_size = 32
        self._base = FakeEmbedder()
        rng = np.random.default_rng(dim)
        self._projection = rng.standard_normal((FakeEmbedder.dim, dim)).astype(np.float32)

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        out: FloatArray = (self._base.embed(chips) @ self._projection).astype(np.float32)
        return out


def network_engine(dim: int) -> Engine:
    verifier = Verifier(
        detector=FakeDetector(),
        landmarker=FakeLandmarker(),
        aligner=FakeAligner(),
        embedder=NetworkEmbedder(dim),
        config=VerifierConfig(threshold=THRESHOLD),
    )
    checker = LivenessChecker(verifier=verifier, tracker=cast(Any, None), pad=None)
    return Engine(verifier, checker)


@dataclass
class Deployment:
    """One database and face index storage; :meth:`service` starts a service on it (a new
    process, here with the network of ``dim``)."""

    store: Any
    keys: ServiceKeys
    clock: FakeClock
    backend: str
    sql: Any
    root: Path

    def provider(self, svc: ShirenService) -> IndexProvider:
        """What the production wiring gives the service (``bootstrap.face_indexes``): dlib's
        provider, which the service's :class:`FraudGuard` scopes to its own network."""
        if self.backend == "postgresql":
            provider = PgVectorProvider(self.sql)
            provider.ensure()
            return provider
        seal_, open_ = index_sealers(svc.vault, svc.store)
        return EmbeddedProvider(self.root, seal=seal_, open_=open_)

    def service(self, dim: int) -> ShirenService:
        svc = ShirenService(
            store=self.store, keys=self.keys, engine=network_engine(dim), clock=self.clock
        )
        svc.fraud.indexes = self.provider(svc)
        return svc


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
) -> Iterator[Deployment]:
    with open_backend(request.param, tmp_path) as backend:
        sql = backend.engine
        if request.param == "postgresql":
            try:
                PgVectorProvider(sql).ensure()  # type: ignore[arg-type]
            except Exception as exc:  # extension missing: scripts/install_pgvector.sh
                _unavailable(f"pgvector: {type(exc).__name__}")
        yield Deployment(
            backend.factory,
            ServiceKeys.generate(),
            clock,
            request.param,
            sql,
            tmp_path / "shiren.db.faces",
        )


def _id(n: int) -> str:
    first17 = f"11010519800101{n:03d}"
    return first17 + idnumber.check_character(first17)


def _photo(name: str, idx: int = 1) -> bytes:
    return lfw(name, idx).read_bytes()


def _enrol(svc: ShirenService, tenant: Tenant, image: bytes, ref: str, id_number: str) -> Any:
    subject, _ = svc.enrol(
        tenant,
        external_ref=ref,
        name=NAME,
        id_number=id_number,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=image,
    )
    return subject


def _bind(svc: ShirenService, tenant: Tenant, subject: Any, image: bytes) -> bytes:
    """Bind ``svc``'s template of ``image`` to ``subject`` as a passed capture does (the row,
    then the gallery write after the commit); the capture itself needs real liveness models."""
    template = svc.verifier.analyze(image).template.astype(np.float32).tobytes()
    key = svc.vault.subject_key(tenant, subject)
    template_id = new_id()
    with svc.store() as uow:
        uow.templates.add(
            Template(
                id=template_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                template_enc=svc.vault.seal(
                    key, tenant, "templates", "template_enc", template_id, template
                ),
                embedder=svc.embedder_id,
                template_version=int(TEMPLATE_VERSION),
                created_at=svc.clock(),
            )
        )
        uow.subjects.set_status(tenant.id, subject.id, SubjectStatus.ENROLLED)
        uow.commit()
    svc.fraud.bound(tenant, subject.id, template)
    return template


def _blacklist(svc: ShirenService, tenant: Tenant, image: bytes) -> str:
    entry = svc.blacklists.add(
        tenant,
        list_name="fraud",
        reason="confirmed_fraud",
        evidence_ref="case-1",
        added_by="analyst",
        image=image,
    )
    return str(entry["id"])


def _codes(svc: ShirenService, tenant: Tenant, subject_id: str) -> list[tuple[str, Any]]:
    with svc.store() as uow:
        found = uow.findings.list_for_subject(tenant.id, subject_id)
    return [
        (f.code, f.evidence.get("other_subject_id") or f.evidence.get("entry_id")) for f in found
    ]


def _ids(svc: ShirenService, provider: IndexProvider, tenant: Tenant, gallery: str) -> set[str]:
    index = provider.index(tenant.id, gallery)
    listing = getattr(index, "ids", None)
    if callable(listing):
        return set(listing())
    return {h.entry_id for h in index.search(np.ones(index.dim, np.float32), 100)}


def test_a_dlib_deployment_served_by_mobilefacenet_never_mixes_the_networks(
    deployment: Deployment, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # -- dlib (128-d): one pending subject, one bound subject, one blacklisted face ---------
    old = deployment.service(128)
    assert (old.fraud.network, old.fraud.dim) == (LEGACY_NETWORK, 128)
    tenant, _ = old.create_tenant("lender")
    pending = _enrol(old, tenant, _photo("Naoto_Kan"), "p1", _id(1))
    bound = _enrol(old, tenant, _photo("Jennifer_Reilly"), "b1", _id(2))
    _bind(old, tenant, bound, _photo("Jennifer_Reilly"))
    listed = _blacklist(old, tenant, _photo("Aaron_Sorkin"))
    legacy = {name: _ids(old, old.fraud.indexes, tenant, name) for name in (ENROLLED, BLACKLIST)}
    legacy[REFERENCES] = _ids(old, old.fraud.indexes, tenant, REFERENCES)
    assert legacy == {ENROLLED: {bound.id}, REFERENCES: {pending.id}, BLACKLIST: {listed}}
    old.fraud.indexes.index(tenant.id, ENROLLED).persist()
    clock.advance(60)

    # -- the same deployment, now on MobileFaceNet (192-d) --------------------------------
    new = deployment.service(192)
    assert (new.fraud.network, new.fraud.dim) == (MOBILEFACENET, 192)
    caplog.set_level(logging.WARNING, logger="shiren.fraud")
    healed = new.fraud.reconcile_all(tenant)  # 128-d rows: skipped, never a crash
    assert [(h.gallery, h.added, h.removed) for h in healed] == [
        (ENROLLED, 0, 0),
        (REFERENCES, 0, 0),
        (BLACKLIST, 0, 0),
    ]
    for name in (ENROLLED, REFERENCES, BLACKLIST):
        assert len(new.fraud.indexes.index(tenant.id, name)) == 0
    assert new.fraud.stale_counts(tenant) == {ENROLLED: 1, REFERENCES: 1, BLACKLIST: 1}
    skipped = [r.getMessage() for r in caplog.records if "another network" in r.getMessage()]
    assert skipped
    assert all("count=1" in m for m in skipped)
    # the dlib galleries are still there, untouched (and still dlib's: a rollback uses them)
    dlib_view = provider_for(deployment.provider(new), LEGACY_NETWORK, 128)
    assert {n: _ids(new, dlib_view, tenant, n) for n in legacy} == legacy

    # the same faces again: compared with 192-d entries only (none yet), so nothing is found
    # and nothing fails — not the duplicate search, the same-ID check nor the blacklist
    again = _enrol(new, tenant, _photo("Naoto_Kan"), "p2", _id(3))
    same_id = _enrol(new, tenant, _photo("Naoto_Kan", 2), "b2", _id(2))  # bound's ID number
    listed_again = _enrol(new, tenant, _photo("Aaron_Sorkin"), "x1", _id(4))
    for subject in (again, same_id, listed_again):
        assert _codes(new, tenant, subject.id) == []
    assert _ids(new, new.fraud.indexes, tenant, REFERENCES) == {
        again.id,
        same_id.id,
        listed_again.id,
    }

    # the 192-d galleries work as before: a duplicate, a same-ID other face, a blacklist hit
    dup = _enrol(new, tenant, _photo("Naoto_Kan"), "p3", _id(5))
    assert _codes(new, tenant, dup.id) == [("fraud.duplicate_face", again.id)]
    _bind(new, tenant, same_id, _photo("Naoto_Kan", 2))
    other_face = _enrol(new, tenant, _photo("Jennifer_Reilly"), "b3", _id(2))
    assert ("fraud.id_number_other_face", same_id.id) in _codes(new, tenant, other_face.id)
    entry = _blacklist(new, tenant, _photo("Aaron_Sorkin"))
    hit = _enrol(new, tenant, _photo("Aaron_Sorkin"), "x2", _id(6))
    assert ("fraud.blacklist_hit", entry) in _codes(new, tenant, hit.id)
    assert new.fraud.stale_counts(tenant)[BLACKLIST] == 1  # the dlib entry: still reported

    # a dlib-only subject cannot be blacklisted by its bound face: it would match nothing
    with pytest.raises(StateError) as caught:
        new.blacklists.add(
            tenant,
            list_name="fraud",
            reason="confirmed_fraud",
            evidence_ref="case-2",
            added_by="analyst",
            subject_id=bound.id,
        )
    assert caught.value.detail == {"reason": "other_network"}

    # an erasure reaches the dlib galleries too (their vectors would outlive the subject)
    new.erase_subject(tenant, bound.id)
    new.erase_subject(tenant, pending.id)
    fresh_dlib = provider_for(deployment.provider(new), LEGACY_NETWORK, 128)
    assert _ids(new, fresh_dlib, tenant, ENROLLED) == set()
    assert _ids(new, fresh_dlib, tenant, REFERENCES) == set()
    assert _ids(new, fresh_dlib, tenant, BLACKLIST) == {listed}

    # a restart finds nothing to heal, and the skipped dlib blacklist entry does not make
    # every check reconcile the blacklist gallery again
    new.fraud.indexes = deployment.provider(new)
    assert [(h.added, h.removed) for h in new.fraud.reconcile_all(tenant)] == [(0, 0)] * 3
    calls: list[str] = []
    real = FraudGuard.reconcile

    def counted(self: FraudGuard, uow: Any, tenant_: Tenant, name: str, **kw: Any) -> Any:
        calls.append(name)
        return real(self, uow, tenant_, name, **kw)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(FraudGuard, "reconcile", counted)
        _enrol(new, tenant, _photo("Naoto_Kan", 3), "p4", _id(7))
    assert calls == []


def test_a_template_of_another_dimension_is_skipped_not_a_500(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """Hooks given a template of another network (a caller's mistake, a row in transit) skip
    the 1:N work with a count-only log line; the request is not failed."""
    svc = deployment.service(192)
    tenant, _ = svc.create_tenant("lender")
    subject = _enrol(svc, tenant, _photo("Naoto_Kan"), "p1", _id(1))
    wrong = np.ones(128, dtype=np.float32).tobytes()
    caplog.set_level(logging.WARNING, logger="shiren.fraud")
    svc.fraud.bound(tenant, subject.id, wrong)
    svc.fraud.enrolled(tenant, subject.id, wrong)
    with svc.store() as uow:
        assert svc.fraud.on_enrol(uow, tenant, subject, wrong, svc.clock()) == []
    assert subject.id not in svc.fraud.indexes.index(tenant.id, ENROLLED)
    lines = [r.getMessage() for r in caplog.records if "another dimension" in r.getMessage()]
    assert len(lines) == 3
    assert all("count=1" in line for line in lines)

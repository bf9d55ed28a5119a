"""A service on fake models and faces bound straight into storage, for the gallery calibration
tests (reader, CLI, console): the sealing is the service's own (subject keys, AEAD context), only
the capture that would normally produce the template is skipped."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import numpy as np

from shiren.domain.entities import Subject, SubjectStatus, Template, Tenant, new_id
from shiren.liveness.check import LivenessChecker
from shiren.models.fake import FakeAligner, FakeDetector, FakeEmbedder, FakeLandmarker
from shiren.privacy import new_data_key, wrap_subject_key
from shiren.service.app import Engine, ShirenService
from shiren.verifier import TEMPLATE_VERSION, Verifier, VerifierConfig

FAKE_THRESHOLD = 0.3
"""The fake verifier's threshold (no calibrated value ships for the fake embedder)."""
DIM = FakeEmbedder.dim


def fake_engine() -> Engine:
    """Fake detector, landmarks, aligner and embedder (``fake-embedder``, cosine, 64-d); the
    liveness checker is never run here."""
    verifier = Verifier(
        detector=FakeDetector(),
        landmarker=FakeLandmarker(),
        aligner=FakeAligner(),
        embedder=FakeEmbedder(),
        config=VerifierConfig(threshold=FAKE_THRESHOLD),
    )
    checker = LivenessChecker(verifier=verifier, tracker=cast(Any, None), pad=None)
    return Engine(verifier, checker)


def bind_face(
    service: ShirenService,
    tenant: Tenant,
    vector: np.ndarray[Any, Any],
    at: datetime,
    *,
    subject: Subject | None = None,
    embedder: str | None = None,
    expires_at: datetime | None = None,
    legacy_key: bool = False,
) -> Subject:
    """Bind ``vector`` as a template of ``subject`` (a new enrolled subject when ``None``), sealed
    as the service seals it; ``legacy_key``: a subject from before subject keys."""
    with service.store() as uow:
        if subject is None:
            subject_id = new_id()
            wrapped = (
                None
                if legacy_key
                else wrap_subject_key(
                    service.vault.tenant_key(tenant), tenant.id, subject_id, new_data_key()
                )
            )
            subject = Subject(
                id=subject_id,
                tenant_id=tenant.id,
                external_ref=f"ref-{subject_id[:12]}",
                created_at=at,
                status=SubjectStatus.ENROLLED,
                wrapped_key=wrapped,
            )
            uow.subjects.add(subject)
        template_id = new_id()
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        key = service.vault.subject_key(tenant, subject)
        uow.templates.add(
            Template(
                id=template_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                template_enc=service.vault.seal(
                    key, tenant, "templates", "template_enc", template_id, blob
                ),
                embedder=embedder or service.embedder_id,
                template_version=int(TEMPLATE_VERSION),
                created_at=at,
                expires_at=expires_at,
            )
        )
        uow.commit()
    return subject


def random_faces(n: int, seed: int, dim: int = DIM) -> np.ndarray[Any, Any]:
    """``n`` isotropic random templates (independent uniform directions)."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)

"""Reviewer evidence (issue 17): a few keyframes of a check sent to manual review, kept sealed
for the console's reviewers when the tenant's policy asks for it
(:class:`~shiren.domain.review_evidence.ReviewEvidencePolicy`, off by default).

* **Which frames** — the ones the match fused (the stillest near-frontal frames of the capture,
  :mod:`shiren.service.matching`), then frames spread over the capture when it found fewer (no
  face, a failed liveness check): at most ``keyframes``, in time order.
* **What is kept** — each frame re-encoded as a JPEG (at most :data:`MAX_SIDE_PX` on its long
  side, no metadata: the upload's own bytes, with whatever EXIF a phone wrote, are never kept),
  sealed with the *subject's* key and bound to its ``evidence`` row (erasure shreds it), with an
  expiry ``days`` after the check.
* **When it goes** — in the unit of work that decides the review
  (:meth:`shiren.service.reviews.Reviews.decide`), or by the retention sweep at its expiry,
  or with the subject's face data (erasure, consent withdrawal).
* **Who sees it** — :func:`open_keyframe` for the console, which checks the role and audits each
  view (``console.evidence_viewed``: ids only, never the image).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image

from shiren.core.geometry import RGBImage
from shiren.domain.entities import Check, Evidence, ReviewStatus, Subject, Tenant, new_id
from shiren.domain.review_evidence import MAX_KEYFRAMES, ReviewEvidencePolicy
from shiren.errors import ErrorCode, StateError
from shiren.service.vault import KeyVault
from shiren.storage.ports import UnitOfWork

MAX_SIDE_PX = 640
"""Long side of a kept frame: enough to compare a face with a reference by eye."""
JPEG_QUALITY = 85
EVIDENCE_TABLE, EVIDENCE_COLUMN = "evidence", "image_enc"


def pick_keyframes(frames: int, used: Sequence[int], keep: int) -> list[int]:
    """Indices (time order) of at most ``keep`` (≤ 3) of ``frames`` frames: those in ``used``
    first, then the first, middle and last frames until there are ``keep``."""
    keep = min(keep, MAX_KEYFRAMES, frames)
    picks = list(dict.fromkeys(i for i in used if 0 <= i < frames))[:keep]
    for i in (0, frames // 2, frames - 1, frames // 4, (3 * frames) // 4):
        if len(picks) >= keep:
            break
        if i not in picks:
            picks.append(i)
    return sorted(picks)


def encode_keyframe(image: RGBImage) -> bytes:
    """``image`` (H×W×3 RGB) as a metadata-free JPEG, its long side at most
    :data:`MAX_SIDE_PX`."""
    picture = Image.fromarray(image, "RGB")
    picture.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def keyframe_jpegs(
    policy: ReviewEvidencePolicy,
    tenant: Tenant,
    images: Sequence[RGBImage],
    used: Sequence[int],
) -> list[bytes]:
    """The JPEGs a check of ``tenant`` sent to review keeps (none when its policy keeps none)."""
    keep = policy.keyframes_for(tenant.id)
    if keep <= 0 or not images:
        return []
    return [encode_keyframe(images[i]) for i in pick_keyframes(len(images), used, keep)]


def keep_keyframes(
    uow: UnitOfWork,
    vault: KeyVault,
    tenant: Tenant,
    subject: Subject,
    check: Check,
    jpegs: Sequence[bytes],
    days: int,
) -> int:
    """Store ``jpegs`` as the check's evidence rows (sealed with the subject's key, expiring
    ``days`` after the check) in ``uow``; how many."""
    for jpeg in jpegs:
        row_id = new_id()
        sealed = vault.seal_field(tenant, subject, EVIDENCE_TABLE, EVIDENCE_COLUMN, row_id, jpeg)
        uow.evidence.add(
            Evidence(
                id=row_id,
                tenant_id=tenant.id,
                check_id=check.id,
                image_enc=sealed,
                expires_at=check.created_at + timedelta(days=days),
                created_at=check.created_at,
            )
        )
    return len(jpegs)


@dataclass(frozen=True, slots=True)
class KeptFrame:
    """One kept keyframe, opened for a reviewer: the JPEG and the ids its view is audited with."""

    jpeg: bytes
    subject_id: str
    check_id: str


def open_keyframe(
    uow: UnitOfWork,
    vault: KeyVault,
    tenant: Tenant,
    review_id: str,
    evidence_id: str,
    now: datetime,
) -> KeptFrame:
    """The kept keyframe ``evidence_id`` of the open review ``review_id``: ``record.not_found``
    unless both are the tenant's, the frame is the review's check's, the review is still open and
    the frame within its expiry (the sweep may not have run yet)."""
    item = uow.reviews.get(tenant.id, review_id)
    row = uow.evidence.get(tenant.id, evidence_id)
    if (
        item is None
        or item.status is ReviewStatus.CLOSED
        or row is None
        or row.check_id != item.check_id
        or row.expires_at <= now
    ):
        raise _missing()
    check = uow.checks.get(tenant.id, item.check_id)
    subject = uow.subjects.get(tenant.id, check.subject_id) if check is not None else None
    if check is None or subject is None:
        raise _missing()
    jpeg = vault.open_field(tenant, subject, EVIDENCE_TABLE, EVIDENCE_COLUMN, row.id, row.image_enc)
    return KeptFrame(jpeg, subject.id, check.id)


def _missing() -> StateError:
    return StateError(
        "keyframe not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": "evidence"}
    )


def kept_keyframes(uow: UnitOfWork, tenant_id: str, check_id: str, now: datetime) -> list[Evidence]:
    """The check's kept keyframes still within their expiry, oldest first."""
    return [e for e in uow.evidence.list_for_check(tenant_id, check_id) if e.expires_at > now]


__all__ = [
    "JPEG_QUALITY",
    "MAX_SIDE_PX",
    "KeptFrame",
    "encode_keyframe",
    "keep_keyframes",
    "kept_keyframes",
    "keyframe_jpegs",
    "open_keyframe",
    "pick_keyframes",
]

"""The injection check inside a check: measure, judge, and say what the tenant's mode makes of it.

:func:`shiren.liveness.injection.assess_injection` needs, besides the frames and the challenge,
what only the service knows:

* ``started_not_before`` — the latest moment the server *knows* to precede the filming: the
  session's creation (its challenge did not exist before), the first capture-page consent
  recorded for the subject after it (the page records consent before it films; a consent that
  carried over from an earlier attempt predates the session and does not count), and — for an
  upload through the capture page — the page's first fetch of the challenge
  (``Session.challenge_sent_at``: the page cannot film an answer to a challenge it has not
  seen), whichever is latest.  A lender's own client got the challenge with the session's
  creation, so its uploads are not bounded by a fetch.  ``received_at`` — the upload's arrival
  (the check's own clock reading).  Together they bound how much filming the upload can
  honestly claim (``timing.upload_too_early``);
* the ``FaceSignals`` of the liveness check (from its memo: no model runs again), for the
  flash features;
* the page's camera label, if the page sent it (a weak signal only; never stored — only whether
  it names a virtual camera);
* who uploaded: the capture page (its timer's facts are judged) or a lender's client through
  the API, or a recording (record-and-upload, sampled by the server): the page's timer facts are
  not judged.

The result goes to the decision through the tenant's mode (:mod:`shiren.domain.injection_policy`)
and, whatever the mode (but ``off``), into the check's audit line as ``injection``: the mode,
its effect, each feature's value, line and whether it fired — numbers and codes, never pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiren.domain.entities import Session, Tenant
from shiren.domain.injection_policy import (
    InjectionMode,
    InjectionPolicy,
    InjectionVerdict,
    load_injection_policy,
    verdict,
)
from shiren.liveness.challenge import Challenge, Variant
from shiren.liveness.frames import FrameSequence
from shiren.liveness.injection import InjectionResult, Source, assess_injection
from shiren.liveness.injection_config import DEFAULT_INJECTION_THRESHOLDS, InjectionThresholds
from shiren.liveness.injection_timing import UploadTiming
from shiren.liveness.memo import CaptureMemo
from shiren.liveness.signals import FaceSignals, face_signals
from shiren.service.capture_texts import CONSENT_PURPOSE
from shiren.service.context import Context

log = logging.getLogger("shiren.service")

MAX_CAMERA_LABEL = 256
"""The longest camera label a submission may carry (``MediaStreamTrack.label`` is a device
name: "FaceTime HD Camera (Built-in)", "OBS Virtual Camera")."""


@dataclass(frozen=True, slots=True)
class InjectionOutcome:
    """One capture's injection result, the mode it was judged under and what that made of it."""

    mode: InjectionMode
    result: InjectionResult
    verdict: InjectionVerdict
    source: Source
    started_from: str
    """What bounded the start: ``session``, ``consent`` or ``fetch`` (the page's first fetch of
    the challenge)."""

    def evidence(self) -> dict[str, Any]:
        """For the check's audit line (numbers and codes only)."""
        effect = "fail" if self.verdict.fails else ("review" if self.verdict.review else "none")
        return {
            "mode": self.mode.value,
            "effect": effect,
            "source": self.source,
            "started_from": self.started_from,
            **self.result.evidence(),
        }


class InjectionGuard:
    """Runs the injection check for :class:`shiren.service.checks.Checks` (module docstring)."""

    def __init__(
        self,
        ctx: Context,
        *,
        policy: InjectionPolicy | None = None,
        thresholds: InjectionThresholds = DEFAULT_INJECTION_THRESHOLDS,
    ) -> None:
        self._ctx = ctx
        self.policy = policy or load_injection_policy()
        """The modes (the policy's ``[injection]``; tests and operators may replace it)."""
        self.thresholds = thresholds

    def assess(
        self,
        tenant: Tenant,
        session: Session,
        challenge: Challenge,
        sequence: FrameSequence,
        memo: CaptureMemo,
        at: datetime,
        *,
        camera_label: str | None = None,
        source: Source = "api",
    ) -> InjectionOutcome | None:
        """The injection outcome of one capture (None: the tenant's mode is ``off``, or the
        capture cannot be measured — too few frames)."""
        mode = self.policy.mode_for(tenant.id)
        if mode is InjectionMode.OFF or len(sequence) < 2:
            return None
        started, started_from = self._started_not_before(tenant, session, at, source == "page")
        if challenge.variant is Variant.RECORDED:
            source = "api"  # sampled by the server: no page timer to judge
        result = assess_injection(
            challenge,
            sequence,
            signals=_signals(memo, sequence),
            upload=UploadTiming(started.timestamp(), at.timestamp()),
            camera_label=(camera_label or "")[:MAX_CAMERA_LABEL] or None,
            thresholds=self.thresholds,
            source=source,
        )
        judged = verdict(mode, suspected=result.suspected, review_suggested=result.review_suggested)
        if result.suspected or result.review_suggested:
            log.info(
                f"injection tenant={tenant.id} session={session.id} mode={mode.value} "
                f"suspected={result.suspected} sub_kinds={','.join(result.sub_kinds)}"
            )
        return InjectionOutcome(mode, result, judged, source, started_from)

    def _started_not_before(
        self, tenant: Tenant, session: Session, at: datetime, page: bool
    ) -> tuple[datetime, str]:
        """The latest of the session's creation, the first page consent after it and (``page``:
        the capture page uploaded) the page's first fetch of the challenge; and which it was."""
        with self._ctx.store() as uow:
            consents = uow.consents.list_for_subject(tenant.id, session.subject_id)
        after = [
            c.granted_at
            for c in consents
            if c.purpose == CONSENT_PURPOSE and session.created_at <= c.granted_at <= at
        ]
        bounds = [(session.created_at, "session")]
        if after:
            bounds.append((min(after), "consent"))
        sent = session.challenge_sent_at
        if page and sent is not None and session.created_at <= sent <= at:
            bounds.append((sent, "fetch"))
        return max(reversed(bounds), key=lambda bound: bound[0])  # a tie: the page's own step


def _signals(memo: CaptureMemo, sequence: FrameSequence) -> FaceSignals | None:
    """The liveness check's face signals (from its memo; rebuilt from its tracked meshes when
    the memo has only those; None: the frames were not tracked)."""
    if memo.signals is not None and len(memo.signals.meshes) == len(sequence):
        return memo.signals
    if len(memo.meshes) != len(sequence):
        return None
    return face_signals(list(memo.meshes), list(sequence.times_ms), sequence.size)


__all__ = ["MAX_CAMERA_LABEL", "InjectionGuard", "InjectionOutcome"]

"""Judging one capture: the centre of 实人认证.

``submit`` consumes the session (single use), checks liveness against the signed challenge,
matches the stillest frames with the reference (enrolment) or the bound template (step-up) on
the network those were made with, applies the retry limits and lock-outs, lets the anti-fraud
findings move the decision, and records it (:mod:`shiren.service.recorder`).

Order matters, and each step is where it is for a reason:

* the upload is decoded *before* the session is consumed: an unreadable upload is the client's
  mistake and must not burn the session;
* the lock-outs are read *before* consuming it too: when the shared counters (Redis) are down the
  check fails closed (503) and the borrower can retry the same session;
* everything after the session is marked used counts as an attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from shiren.domain.decisions import FALLBACKS, Outcome, RetryRules, apply_injection, decide
from shiren.domain.entities import (
    LendingEvent,
    Session,
    SessionPurpose,
    SessionStatus,
    Subject,
    Tenant,
)
from shiren.errors import ErrorCode, InputError, StateError
from shiren.liveness.challenge import Challenge, load_challenge
from shiren.liveness.check import LivenessChecker
from shiren.liveness.frames import FrameSequence
from shiren.liveness.injection import Source
from shiren.liveness.memo import CaptureMemo
from shiren.liveness.result import LivenessResult
from shiren.privacy import redact
from shiren.reasons import ReasonCode
from shiren.service.answers import decode_answer, judge
from shiren.service.consent import require_active_consent
from shiren.service.context import Context
from shiren.service.fraud import FraudGuard
from shiren.service.fraud import adjust as fraud_adjust
from shiren.service.injection import InjectionGuard
from shiren.service.matching import FaceMatcher, MatchOutcome, StoredFace, reference_network
from shiren.service.ratelimit import AttemptCounter
from shiren.service.recorder import Judged, Recorder
from shiren.service.validation import is_id, not_found, require_subject
from shiren.service.views import CheckView

log = logging.getLogger("shiren.service")


def counter_keys(session: Session, subject: Subject, device: str | None) -> list[str]:
    """The attempt counters one capture counts against: the subject, and the device when the
    lending event named one (hashed: device ids are the lender's, not ours to keep)."""
    return attempt_keys(session.tenant_id, subject.id, device)


def flash_unseen(liveness: LivenessResult) -> bool:
    """Whether liveness failed only because the colour flash's reflection was too weak to
    measure (``liveness.colour_inconclusive``), every other required signal having passed."""
    colour = liveness.signals.get("colour")
    if liveness.passed or colour is None or not colour.required or colour.passed:
        return False
    if ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE not in colour.reasons:
        return False
    return all(s.passed for k, s in liveness.signals.items() if s.required and k != "colour")


def attempt_keys(tenant_id: str, subject_id: str, device: str | None) -> list[str]:
    """:func:`counter_keys` from the ids alone (a lending event has no session yet)."""
    keys = [f"{tenant_id}:subject:{subject_id}"]
    if device:
        keys.append(f"{tenant_id}:device:{hashlib.sha256(device.encode()).hexdigest()}")
    return keys


class Checks:
    """The capture-judging use case (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        *,
        checker: LivenessChecker,
        matcher: FaceMatcher,
        counter: AttemptCounter,
        rules: RetryRules,
        fraud: FraudGuard,
        recorder: Recorder,
    ) -> None:
        self._ctx = ctx
        self._checker = checker
        self._matcher = matcher
        self.counter = counter
        self.rules = rules
        self._fraud = fraud
        self._recorder = recorder
        self.injection = InjectionGuard(ctx)
        """The injection check and the tenants' modes (issue 17; tests may replace its
        ``policy``)."""

    def submit(
        self,
        tenant: Tenant,
        session_id: str,
        *,
        nonce: str,
        frames: Sequence[bytes],
        times_ms: Sequence[float],
        now: datetime | None = None,
        client_ip: str | None = None,
        camera_label: str | None = None,
        source: Source = "api",
        recording: bytes | None = None,
        lang: str = "zh-CN",
    ) -> CheckView:
        """Judge one capture of ``session_id`` (see the module docstring): the page's frames,
        or — for a ``recorded`` or ``read_digits`` challenge, and only for those — the
        borrower's ``recording`` (:mod:`.answers`; ``lang``: the digits' language)."""
        at = now or self._ctx.clock()
        session, subject, event = self._open_session(tenant, session_id, nonce, at)
        challenge = load_challenge(session.challenge_json)
        # decode before consuming: an unreadable upload must not burn the session
        answer = decode_answer(
            challenge,
            frames=frames,
            times_ms=times_ms,
            recording=recording,
            limits=self._checker.config.frames,
            nonce=nonce,
        )
        sequence = answer.sequence
        device = event.device_id if event is not None else None
        keys = counter_keys(session, subject, device)
        # lock-outs read BEFORE consuming: shared counters down fails closed, session kept
        locked = max(self.counter.locked_for(k, at.timestamp()) for k in keys)
        with self._ctx.store() as uow:
            uow.sessions.mark_used(tenant.id, session_id, nonce)
            uow.commit()
        if locked > 0:
            judged = Judged(Outcome.FALLBACK, (ReasonCode.LIMIT_LOCKED.value,))
            check = self._recorder.record(tenant, session, subject, at, judged)
            return CheckView(check, Outcome.FALLBACK, FALLBACKS, locked)
        memo = CaptureMemo()
        with self._ctx.models_lock:
            liveness = judge(
                self._checker, challenge, answer, now=at.timestamp(), memo=memo, lang=lang
            )
            matched = self._match(tenant, session, subject, sequence, challenge, memo)
        # A recording (record-and-upload) is not assessed for injection: none of the features
        # applies — no page timer, no page JPEG grid (the server decoded and sampled the video),
        # no flash.  What binds it is the session's fresh actions and the level's rule.
        injection = (
            None
            if recording is not None
            else self.injection.assess(
                tenant,
                session,
                challenge,
                sequence,
                memo,
                at,
                camera_label=camera_label,
                source=source,
            )
        )
        recent = max(self.counter.failures(k, self.rules.window_s, at.timestamp()) for k in keys)
        daily_key = f"{tenant.id}:id:{subject.id_pseudonym or subject.id}"
        decision = decide(
            liveness_passed=liveness.passed,
            liveness_reasons=tuple(r.value for r in liveness.reasons) + matched.reasons,
            similarity=matched.similarity,
            threshold=matched.threshold,
            recent_failures=recent,
            daily_attempts=self.counter.add_daily(daily_key, at.timestamp()),
            rules=self.rules,
            grey_threshold=matched.grey_threshold,
            flash_unseen=flash_unseen(liveness),
            without_flash=self._checker.config.level(liveness.level).without_flash,
        )
        decision = apply_injection(decision, None if injection is None else injection.verdict)
        # anti-fraud: findings become reasons and move the decision (review/reject)
        first = sequence.frames[0].image if sequence.frames else None
        findings = self._fraud.on_capture(
            tenant,
            session,
            subject,
            matched.live_template,
            first,
            at,
            device_id=device,
            client_ip=client_ip,
        )
        decision = fraud_adjust(decision, findings)
        self._count(keys, decision.outcome, decision.retry_after_s, at)
        judged = Judged(
            decision.outcome,
            decision.reasons,
            liveness,
            matched.similarity,
            matched.bind_template,
            matched,
            capture=sequence,  # kept frames for the reviewers only if the policy asks
            injection=None if injection is None else injection.evidence(),
        )
        check = self._recorder.record(tenant, session, subject, at, judged)
        self._fraud.record(tenant, subject, check.id, findings, at)
        log.info(
            redact(
                f"check decided tenant={tenant.id} session={session.id} "
                f"decision={decision.outcome.value} reasons={','.join(decision.reasons)}"
            )
        )
        return CheckView(check, decision.outcome, decision.fallbacks, decision.retry_after_s)

    def _open_session(
        self, tenant: Tenant, session_id: str, nonce: str, at: datetime
    ) -> tuple[Session, Subject, LendingEvent | None]:
        """The session, its subject and its lending event, if the session may take a capture
        now: not used, the nonce matching, the consent active, not expired (an expired one is
        marked so)."""
        with self._ctx.store() as uow:
            session = uow.sessions.get(tenant.id, session_id) if is_id(session_id) else None
            if session is None:
                raise not_found("session")
            if session.status is SessionStatus.USED:
                raise StateError("session already used", code=ErrorCode.SESSION_ALREADY_USED)
            if not hmac.compare_digest(session.nonce.encode(), nonce.encode("utf-8", "replace")):
                raise InputError("session nonce does not match", code=ErrorCode.CHALLENGE_INVALID)
            require_active_consent(uow, tenant.id, session.subject_id)
            if session.status is SessionStatus.EXPIRED or at > session.expires_at:
                if session.status is SessionStatus.OPEN:
                    uow.sessions.expire(tenant.id, session_id)
                    uow.commit()
                raise StateError("session expired", code=ErrorCode.SESSION_EXPIRED)
            subject = require_subject(uow, tenant.id, session.subject_id)
            event = (
                uow.lending_events.get(tenant.id, session.event_id) if session.event_id else None
            )
        return session, subject, event

    def _count(
        self, keys: list[str], outcome: Outcome, retry_after_s: int | None, at: datetime
    ) -> None:
        """A pass clears the counters; anything else counts a failure (and locks out when the
        decision says so)."""
        if outcome is Outcome.PASS:
            for k in keys:
                self.counter.clear(k)
            return
        for k in keys:
            self.counter.add_failure(k, self.rules.window_s, at.timestamp())
        if retry_after_s:
            for k in keys:
                self.counter.lock(k, retry_after_s, at.timestamp())

    def _match(
        self,
        tenant: Tenant,
        session: Session,
        subject: Subject,
        sequence: FrameSequence,
        challenge: Challenge,
        memo: CaptureMemo | None = None,
    ) -> MatchOutcome:
        """Match the capture's still frames with the subject's references (enrolment) or bound
        templates (step-up), on the network those were made with (:mod:`.matching`)."""
        with self._ctx.store() as uow:
            if session.purpose is SessionPurpose.ENROL:
                refs = uow.references.list_for_subject(tenant.id, session.subject_id)
                rows = [(r.id, "references", r.embedder, r.template_enc) for r in refs]
            else:
                temps = uow.templates.list_for_subject(tenant.id, session.subject_id)
                rows = [(t.id, "templates", t.embedder, t.template_enc) for t in temps]
        vault = self._ctx.vault
        verifier = self._matcher.verifier
        network, dim = verifier.embedder.info.name, verifier.embedder.dim
        key = vault.subject_key(tenant, subject) if rows else None
        stored = []
        for row_id, table, embedder, blob in rows:
            assert key is not None
            raw = vault.open(key, tenant, table, "template_enc", row_id, blob)
            vector = np.frombuffer(raw, dtype=np.float32)
            found = reference_network(embedder, len(vector), network, dim)
            stored.append(StoredFace(row_id, table, found, vector))
        same_network = self._checker.verifier.embedder is verifier.embedder
        return self._matcher.match(
            stored,
            sequence,
            challenge,
            memo if same_network else None,
            enrolment=session.purpose is SessionPurpose.ENROL,
            default_threshold=session.threshold,
        )


__all__ = ["Checks", "counter_keys"]

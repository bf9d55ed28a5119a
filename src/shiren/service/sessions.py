"""Capture sessions: opening one with a signed random challenge, and reading sessions and checks.

A session is single-use and short-lived (``session_ttl_s``, 5 minutes by default).  Its
challenge carries a server nonce and expiry and is signed with the challenge key, so a capture
can answer only the session it was asked for; its capture token opens the borrower's capture
page (``/capture/<token>``) without the lender's API key.  The match threshold is fixed when the
session opens, from the policy's match profile, so a policy change never moves a running
session's bar.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from shiren.domain.decisions import RetryRules
from shiren.domain.entities import Session, SessionPurpose, SessionStatus, Tenant, new_id
from shiren.liveness.challenge import Variant, load_challenge
from shiren.liveness.config import Level, LivenessConfig
from shiren.service.capture_token import issue as issue_capture_token
from shiren.service.context import Context
from shiren.service.engine import ChallengeDrawer, random_challenge
from shiren.service.validation import is_id, not_found
from shiren.service.views import CheckView, SessionView, check_view
from shiren.storage.ports import UnitOfWork
from shiren.thresholds import default_threshold
from shiren.verifier import PROFILES, Verifier


class Sessions:
    """Opens sessions inside a caller's unit of work; reads sessions and checks."""

    def __init__(
        self,
        ctx: Context,
        *,
        verifier: Verifier,
        liveness: LivenessConfig,
        rules: RetryRules,
        ttl_s: int = 300,
        draw: ChallengeDrawer = random_challenge,
    ) -> None:
        self._ctx = ctx
        self._verifier = verifier
        self._liveness = liveness
        self.rules = rules
        self.ttl = timedelta(seconds=ttl_s)
        self.draw = draw

    def threshold(self, profile: str) -> float:
        """The match threshold of a policy profile on this engine's network (a profile of
        another network falls back to this engine's own threshold)."""
        chosen = PROFILES.get(profile, PROFILES["standard"])
        network = self._verifier.embedder.info.name
        if chosen.embedder != network:
            return self._verifier.threshold
        return default_threshold(network, views=chosen.views)

    def open(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject_id: str,
        purpose: SessionPurpose,
        level: str,
        profile: str,
        now: datetime,
        event_id: str | None = None,
        variant: Variant = Variant.LIVE,
    ) -> SessionView:
        """A new session in ``uow`` (it commits with the caller's change); ``variant``
        ``read_digits`` where the event's policy requires reading the digits aloud."""
        threshold = self.threshold(profile)
        return self._create(
            uow, tenant, subject_id, purpose, level, threshold, now, event_id, variant
        )

    def reopen(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        old: Session,
        now: datetime,
        variant: Variant = Variant.LIVE,
    ) -> SessionView:
        """The next attempt after ``old``: what the lender's policy decided for it (purpose,
        level, match threshold, lending event) with a fresh signed challenge and nonce, of
        ``variant`` (the light ladder's motion-only retry, the record-and-upload fallback)."""
        return self._create(
            uow,
            tenant,
            old.subject_id,
            old.purpose,
            old.level,
            old.threshold,
            now,
            old.event_id,
            variant,
        )

    def _create(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject_id: str,
        purpose: SessionPurpose,
        level: str,
        threshold: float,
        now: datetime,
        event_id: str | None,
        variant: Variant = Variant.LIVE,
    ) -> SessionView:
        expires = now + self.ttl
        key = self._ctx.vault.keys.challenge_key
        drawn = self.draw(self._liveness, Level(level), now.timestamp(), variant)
        challenge = replace(
            drawn, nonce=secrets.token_hex(16), expires_at=round(expires.timestamp(), 3)
        ).signed(key)
        session = Session(
            id=new_id(),
            tenant_id=tenant.id,
            subject_id=subject_id,
            purpose=purpose,
            challenge_json=json.dumps(challenge.to_dict(), sort_keys=True),
            nonce=challenge.nonce,
            level=Level(level).value,
            threshold=threshold,
            created_at=now,
            expires_at=expires,
            event_id=event_id,
        )
        uow.sessions.add(session)
        token = issue_capture_token(key, tenant.id, session.id, expires)
        return SessionView(session, challenge, capture_token=token)

    def view(self, tenant: Tenant, session: Session, check_id: str | None = None) -> SessionView:
        """The view of a stored session (an open one past its expiry reads as expired), with a
        fresh capture token."""
        if session.status is SessionStatus.OPEN and self._ctx.clock() > session.expires_at:
            session = replace(session, status=SessionStatus.EXPIRED)
        key = self._ctx.vault.keys.challenge_key
        token = issue_capture_token(key, tenant.id, session.id, session.expires_at)
        return SessionView(
            session, load_challenge(session.challenge_json), check_id, capture_token=token
        )

    def challenge_sent(self, tenant: Tenant, session: Session) -> None:
        """Record that the capture page has the open ``session``'s challenge now, the first time
        only (a session already marked, or no longer open, is not written).  The lender's own
        copy left with the session's creation (its response carries the challenge), so only the
        page's fetch is a moment of its own: the injection check's bound on a page upload."""
        if session.challenge_sent_at is not None or session.status is not SessionStatus.OPEN:
            return
        with self._ctx.store() as uow:
            uow.sessions.mark_challenge_sent(tenant.id, session.id, self._ctx.clock())
            uow.commit()

    def get(self, tenant: Tenant, session_id: str) -> SessionView:
        """The tenant's session ``session_id`` with its latest check id."""
        with self._ctx.store() as uow:
            session = uow.sessions.get(tenant.id, session_id) if is_id(session_id) else None
            if session is None:
                raise not_found("session")
            checks = uow.checks.list_for_session(tenant.id, session_id)
        return self.view(tenant, session, checks[-1].id if checks else None)

    def check(self, tenant: Tenant, check_id: str) -> CheckView:
        """The tenant's check ``check_id``."""
        with self._ctx.store() as uow:
            check = uow.checks.get(tenant.id, check_id) if is_id(check_id) else None
        if check is None:
            raise not_found("check")
        return check_view(check, self.rules)


__all__ = ["Sessions"]

"""The 实人认证 service: one object per process that holds the rooms and answers for them.

:class:`ShirenService` is the façade the HTTP layer (:mod:`shiren.api`), the CLI and the capture
page talk to.  It holds no rule of its own: it builds the use cases — each in its own module,
named for what it does — over one shared :class:`~shiren.service.context.Context` (storage, the
key vault, the audit journal, the clock) and hands each only the collaborators it needs:

================================  ===========================================================
room                              what it does
================================  ===========================================================
:mod:`.tenants`                   tenants, API-key authentication, webhook settings
:mod:`.enrolment`                 a subject from the lender's data and a reference photo
:mod:`.id_cards`                  the ID card at enrolment: read, checked, its portrait
:mod:`.step_up`                   does a lending event need a face check, and how strong
:mod:`.sessions`                  capture sessions with signed challenges; reading checks
:mod:`.checks`                    judging one capture (liveness, match, limits, anti-fraud)
:mod:`.recorder`                  recording a decided check; binding a face
:mod:`.reviews`                   the review queue (face and non-face cases)
:mod:`.subjects`                  erasure and export
:mod:`.consent`                   consent withdrawal
:mod:`.blacklist`                 the lender's blacklists
:mod:`.fallback` / :mod:`.payout`  the non-face path; payout-card ownership (AML)
:mod:`.fraud` / :mod:`.galleries`  the anti-fraud checks and the 1:N galleries
:mod:`.retention`                 the retention sweep and the stored-face count
:mod:`.vault` / :mod:`.journal`   keys (sealing, opening) and the audit log / webhooks
================================  ===========================================================

Models are loaded once (:class:`~shiren.service.engine.Engine`, by
:mod:`shiren.service.bootstrap`, the composition root) and shared by every request; raw images
are never stored (the reference photo and the capture frames become templates and scores in
memory and are dropped); log lines carry ids and codes only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from shiren.audit import VerifyResult
from shiren.connectors import Connectors
from shiren.connectors.sandbox import sandbox_connectors
from shiren.domain.decisions import RetryRules
from shiren.domain.entities import Subject, Tenant, utcnow
from shiren.domain.policy import StepUpPolicy, load_policy
from shiren.fraud.embedded import EmbeddedProvider
from shiren.fraud.index import IndexProvider
from shiren.fraud.policy import FraudPolicy
from shiren.liveness.check import LivenessChecker, MemoryReplayGuard, ReplayGuard
from shiren.liveness.injection import Source
from shiren.service.blacklist import Blacklists
from shiren.service.card_capture import CardCaptures
from shiren.service.checks import Checks
from shiren.service.connectors import refuse_sandbox_in_production
from shiren.service.consent import Consents
from shiren.service.context import Clock, Context
from shiren.service.engine import ChallengeDrawer, Engine, random_challenge
from shiren.service.enrolment import Enrolment
from shiren.service.fallback import FallbackService
from shiren.service.fraud import FraudGuard
from shiren.service.id_cards import CardEvidence, IdCards
from shiren.service.journal import Journal, append_audit, verify_audit
from shiren.service.keys import ServiceKeys
from shiren.service.matching import FaceMatcher
from shiren.service.payout import PayoutService
from shiren.service.ratelimit import AttemptCounter, MemoryCounter
from shiren.service.recorder import Recorder
from shiren.service.retention import (
    DEFAULT_REVIEW_CANDIDATE_TTL_DAYS,
    STORED_FACES_FILING_THRESHOLD,
    STORED_FACES_WARNING,
    StoredFaces,
    sweep,
)
from shiren.service.reviews import Reviews
from shiren.service.rotation import rotate_master_key
from shiren.service.sessions import Sessions
from shiren.service.ssrf import Resolver, system_resolver
from shiren.service.step_up import StepUp
from shiren.service.subjects import Subjects
from shiren.service.tenants import Tenants, create_tenant, hash_api_key
from shiren.service.validation import ConsentIn
from shiren.service.vault import KeyVault
from shiren.service.views import (
    CheckView,
    RotationResult,
    SessionView,
    StepUpView,
    SweepResult,
)
from shiren.storage.ports import UnitOfWorkFactory


def _session_checker(
    engine: Engine, keys: ServiceKeys, replay_guard: ReplayGuard | None
) -> LivenessChecker:
    """The engine's checker, verifying challenge signatures with the service's key and
    remembering frame fingerprints, so the same frames under a new nonce are caught.  (Tests
    that assemble several sessions from ONE recording switch the guard off: to it they are
    replays, which is exactly what it is for; a dedicated test checks that it fires.)"""
    base = engine.checker
    return LivenessChecker(
        verifier=base.verifier,
        tracker=base.tracker,
        pad=base.pad,
        config=base.config,
        key=keys.challenge_key,
        replay_guard=replay_guard,
        parallel=base.parallel,
        recogniser=base.recogniser,
    )


class ShirenService:
    """The rooms of the service over injected storage, models, counters and clock."""

    def __init__(
        self,
        *,
        store: UnitOfWorkFactory,
        keys: ServiceKeys,
        engine: Engine,
        counter: AttemptCounter | None = None,
        clock: Clock = utcnow,
        policy: StepUpPolicy | None = None,
        rules: RetryRules | None = None,
        session_ttl_s: int = 300,
        draw: ChallengeDrawer = random_challenge,
        ready_check: Callable[[], None] | None = None,
        detect_replays: bool = True,
        replay_guard: ReplayGuard | None = None,
        on_erased: Callable[[], None] | None = None,
        stored_faces_warning: int = STORED_FACES_FILING_THRESHOLD,
        production: bool = False,
        resolver: Resolver = system_resolver,
        review_candidate_ttl_days: int = DEFAULT_REVIEW_CANDIDATE_TTL_DAYS,
        connectors: Connectors | None = None,
        face_index: IndexProvider | None = None,
        fraud_policy: FraudPolicy | None = None,
        vault: KeyVault | None = None,
        second_factor_threshold: float | None = None,
        id_cards: IdCards | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.vault = vault or KeyVault(keys)
        self.journal = Journal(keys)
        self.ctx = Context(store, self.vault, self.journal, clock)
        self.verifier = engine.verifier
        guard = (replay_guard or MemoryReplayGuard()) if detect_replays else None
        self.checker = _session_checker(engine, keys, guard)
        self.policy = policy or load_policy()
        self.review_candidate_ttl_days = review_candidate_ttl_days
        self._ready_check = ready_check
        # outside checks (SMS, bank card, authority): the sandbox only outside production
        self.connectors = refuse_sandbox_in_production(
            connectors or sandbox_connectors(), production=production
        )
        info = self.verifier.embedder.info
        self.embedder_id = f"{info.name}@sha256:{info.sha256}"
        # probes from several frames; subjects keep working across network changes
        self.matcher = FaceMatcher(self.verifier)
        if second_factor_threshold is not None:  # a lender's own grey zone
            self.matcher.second_factor = second_factor_threshold
        counter = counter if counter is not None else MemoryCounter()
        rules = rules or RetryRules()
        self._build_rooms(
            counter, rules, session_ttl_s, draw, on_erased, stored_faces_warning, face_index,
            fraud_policy, id_cards,
        )  # fmt: skip
        self.tenants = Tenants(self.ctx, production=production, resolver=resolver)

    def _build_rooms(
        self,
        counter: AttemptCounter,
        rules: RetryRules,
        session_ttl_s: int,
        draw: ChallengeDrawer,
        on_erased: Callable[[], None] | None,
        stored_faces_warning: int,
        face_index: IndexProvider | None,
        fraud_policy: FraudPolicy | None,
        id_cards: IdCards | None,
    ) -> None:
        ctx = self.ctx
        self.fraud = FraudGuard(
            ctx,
            verifier=self.verifier,
            counter=counter,
            indexes=face_index or EmbeddedProvider(None),
            policy=fraud_policy,
        )
        self.stored_faces = StoredFaces(self.store, stored_faces_warning)
        self.sessions = Sessions(
            ctx,
            verifier=self.verifier,
            liveness=self.checker.config,
            rules=rules,
            ttl_s=session_ttl_s,
            draw=draw,
        )
        self.recorder = Recorder(
            ctx,
            fraud=self.fraud,
            stored_faces=self.stored_faces,
            policy=self.policy,
            embedder_id=self.embedder_id,
        )
        self.checks = Checks(
            ctx,
            checker=self.checker,
            matcher=self.matcher,
            counter=counter,
            rules=rules,
            fraud=self.fraud,
            recorder=self.recorder,
        )
        self.id_cards = id_cards or IdCards()  # the OCR models load on the first card
        self.enrolment = Enrolment(
            ctx,
            verifier=self.verifier,
            sessions=self.sessions,
            fraud=self.fraud,
            policy=self.policy,
            embedder_id=self.embedder_id,
            cards=self.id_cards,
        )
        self.card_captures = CardCaptures(ctx, self.enrolment)
        self.step_up = StepUp(ctx, sessions=self.sessions, policy=self.policy, counter=counter)
        self.fallbacks = FallbackService(
            store=self.store,
            keys=self.keys,
            connectors=self.connectors,
            clock=lambda: ctx.clock(),  # noqa: PLW0108 - the clock tests move later
            vault=self.vault,
        )
        self.payouts = PayoutService(
            store=self.store,
            keys=self.keys,
            connectors=self.connectors,
            clock=lambda: ctx.clock(),  # noqa: PLW0108 - the clock tests move later
            vault=self.vault,
        )
        self.reviews = Reviews(ctx, recorder=self.recorder, fallbacks=self.fallbacks)
        self.subjects = Subjects(ctx, fraud=self.fraud, rules=rules, on_erased=on_erased)
        self.consents = Consents(ctx, on_erased=on_erased)
        self.blacklists = Blacklists(ctx, verifier=self.verifier, fraud=self.fraud)

    # -- what tests and operators tune at run time (one value, every room) ------------------

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.ctx.clock = value

    @property
    def rules(self) -> RetryRules:
        return self.checks.rules

    @rules.setter
    def rules(self, value: RetryRules) -> None:
        self.checks.rules = self.subjects.rules = value
        self.sessions.rules = value

    @property
    def draw(self) -> ChallengeDrawer:
        return self.sessions.draw

    @draw.setter
    def draw(self, value: ChallengeDrawer) -> None:
        self.sessions.draw = value

    @property
    def counter(self) -> AttemptCounter:
        return self.checks.counter

    @property
    def session_ttl(self) -> timedelta:
        return self.sessions.ttl

    @property
    def models_lock(self) -> Any:
        """The face tracker keeps per-video state: one capture is analysed at a time."""
        return self.ctx.models_lock

    @property
    def stored_faces_warning(self) -> int:
        return self.stored_faces.threshold

    @stored_faces_warning.setter
    def stored_faces_warning(self, value: int) -> None:
        self.stored_faces.threshold = value

    @property
    def production(self) -> bool:
        """Production refuses plain-http webhook URLs (development allows http to localhost)."""
        return self.tenants.production

    @production.setter
    def production(self, value: bool) -> None:
        self.tenants.production = value

    @property
    def resolver(self) -> Resolver:
        """Resolves webhook hosts for the SSRF guard (:mod:`shiren.service.ssrf`)."""
        return self.tenants.resolver

    @resolver.setter
    def resolver(self, value: Resolver) -> None:
        self.tenants.resolver = value

    # -- the use cases, by the names the API and the CLI call -------------------------------

    hash_api_key = staticmethod(hash_api_key)

    def create_tenant(self, name: str) -> tuple[Tenant, str]:
        return self.tenants.create(name)

    def authenticate(self, api_key: str) -> Tenant:
        return self.tenants.authenticate(api_key)

    def set_webhook(self, tenant: Tenant, url: str, secret: str | None = None) -> dict[str, str]:
        return self.tenants.set_webhook(tenant, url, secret)

    def tenant_ids(self) -> list[str]:
        return self.tenants.ids()

    def tenant_row(self, tenant_id: str) -> Tenant | None:
        return self.vault.tenant_row(tenant_id)

    def enrol(
        self,
        tenant: Tenant,
        *,
        external_ref: str,
        name: str,
        id_number: str,
        consent: ConsentIn,
        reference_image: bytes,
        reference_kind: str = "id_card",
        device_id: str | None = None,
        client_ip: str | None = None,
    ) -> tuple[Subject, SessionView]:
        """See :meth:`shiren.service.enrolment.Enrolment.enrol`."""
        return self.enrolment.enrol(
            tenant,
            external_ref=external_ref,
            name=name,
            id_number=id_number,
            consent=consent,
            reference_image=reference_image,
            reference_kind=reference_kind,
            device_id=device_id,
            client_ip=client_ip,
        )

    def enrol_with_card(
        self,
        tenant: Tenant,
        *,
        external_ref: str,
        consent: ConsentIn,
        id_card_front: bytes,
        id_card_back: bytes | None = None,
        name: str | None = None,
        id_number: str | None = None,
        device_id: str | None = None,
        client_ip: str | None = None,
    ) -> tuple[Subject, SessionView, CardEvidence]:
        """See :meth:`shiren.service.enrolment.Enrolment.enrol_with_card`."""
        return self.enrolment.enrol_with_card(
            tenant,
            external_ref=external_ref,
            consent=consent,
            id_card_front=id_card_front,
            id_card_back=id_card_back,
            name=name,
            id_number=id_number,
            device_id=device_id,
            client_ip=client_ip,
        )

    def start_step_up(
        self,
        tenant: Tenant,
        subject_id: str,
        *,
        event_type: str,
        amount_minor: int = 0,
        currency: str = "CNY",
        device_id: str | None = None,
    ) -> StepUpView:
        """See :meth:`shiren.service.step_up.StepUp.start`."""
        return self.step_up.start(
            tenant,
            subject_id,
            event_type=event_type,
            amount_minor=amount_minor,
            currency=currency,
            device_id=device_id,
        )

    def get_session(self, tenant: Tenant, session_id: str) -> SessionView:
        return self.sessions.get(tenant, session_id)

    def get_check(self, tenant: Tenant, check_id: str) -> CheckView:
        return self.sessions.check(tenant, check_id)

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
        """See :meth:`shiren.service.checks.Checks.submit`."""
        return self.checks.submit(
            tenant,
            session_id,
            nonce=nonce,
            frames=frames,
            times_ms=times_ms,
            now=now,
            client_ip=client_ip,
            camera_label=camera_label,
            source=source,
            recording=recording,
            lang=lang,
        )

    def list_reviews(
        self, tenant: Tenant, status: str = "open", *, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self.reviews.queue(tenant, status, limit=limit)

    def decide_review(
        self, tenant: Tenant, item_id: str, *, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """See :meth:`shiren.service.reviews.Reviews.decide`."""
        return self.reviews.decide(tenant, item_id, outcome=outcome, reviewer=reviewer, note=note)

    def erase_subject(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        return self.subjects.erase(tenant, subject_id)

    def export_subject(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        return self.subjects.export(tenant, subject_id)

    def withdraw_consent(
        self, tenant: Tenant, subject_id: str, *, purpose: str, version: str | None
    ) -> dict[str, Any]:
        return self.consents.withdraw(tenant, subject_id, purpose=purpose, version=version)

    def sweep(self, now: datetime | None = None) -> SweepResult:
        """Enforce retention (:func:`shiren.service.retention.sweep`); swept faces leave the
        1:N galleries."""
        return sweep(
            self.store,
            self.keys.audit_key,
            now or self.clock(),
            review_candidate_ttl_days=self.review_candidate_ttl_days,
            on_faces_deleted=self.fraud.swept,
        )

    def stats(self, tenant: Tenant) -> dict[str, int]:
        return self.stored_faces.of_tenant(tenant)

    def warnings(self) -> list[dict[str, Any]]:
        return self.stored_faces.warnings()

    def audit_verify(self, tenant_id: str) -> VerifyResult:
        """Verify a tenant's whole chain (hashes, links and MACs under the audit key)."""
        return self.journal.verify(self.store, tenant_id)

    def ready(self) -> dict[str, bool]:
        """Readiness: storage answers and the models are loaded."""
        checks = {"models": self.verifier is not None and self.checker is not None}
        try:
            if self._ready_check is not None:
                self._ready_check()
            else:
                with self.store() as uow:
                    uow.tenants.get("0" * 32)
            checks["database"] = True
        except Exception:  # readiness reports a failure, it never raises
            checks["database"] = False
        return checks


__all__ = [
    "STORED_FACES_FILING_THRESHOLD",
    "STORED_FACES_WARNING",
    "ChallengeDrawer",
    "CheckView",
    "ConsentIn",
    "Engine",
    "RotationResult",
    "SessionView",
    "ShirenService",
    "StepUpView",
    "SweepResult",
    "append_audit",
    "create_tenant",
    "hash_api_key",
    "random_challenge",
    "rotate_master_key",
    "sweep",
    "verify_audit",
]

"""The use cases of the 实人认证 service: tenants, enrolment, step-up, capture sessions, checks,
erasure, export and audit verification.

One :class:`ShirenService` per process.  It holds the storage (a unit-of-work factory), the engine
models — loaded ONCE, since loading costs seconds and a per-request load would make every request
slow — the attempt counters and a clock.  The HTTP layer (``shiren.api``) only translates
requests into these calls, so everything here is testable without HTTP, on memory, SQLite or
PostgreSQL alike.

Privacy rules kept here (storage cannot keep them, it never sees plaintext):

* ID numbers, names and templates are sealed with the *subject's* own data key (AES-256-GCM,
  bound to their row and column) before they reach storage; the subject key is stored only
  wrapped by the tenant key (``Subject.wrapped_key``), so erasure deletes it and every copy of
  that subject's ciphertext — replicas, WAL, backups — becomes unreadable (crypto-shredding).
  Subjects enrolled before subject keys existed (``wrapped_key`` NULL) stay sealed with the
  tenant key.  ID numbers are also stored as a keyed, tenant-scoped pseudonym so that the daily
  cap and duplicate checks work without decrypting.
* Raw images are never stored: the reference photo and the capture frames are turned into
  templates and scores in memory and dropped.
* Audit payloads go through :func:`shiren.audit.check_payload` (no biometrics, no ID numbers).
* Log lines carry ids and codes only, formatted through :func:`shiren.privacy.redact`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from shiren.audit import AuditEvent as PureAuditEvent
from shiren.audit import ChainedEvent, VerifyResult, canonical_bytes, compute_hash, compute_mac
from shiren.audit import verify as verify_chain
from shiren.connectors import Connectors  # issue 6
from shiren.connectors.sandbox import sandbox_connectors  # issue 6
from shiren.domain import idnumber
from shiren.domain.decisions import Outcome, RetryRules, decide
from shiren.domain.entities import (
    AuditDraft,
    Check,
    Consent,
    Decision,
    LendingEvent,
    Reference,
    ReferenceKind,
    ReviewItem,
    ReviewOutcome,
    ReviewStatus,
    Session,
    SessionPurpose,
    SessionStatus,
    StepUpDecided,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    new_id,
    utcnow,
)
from shiren.domain.fallback import FallbackFlow, FallbackStatus
from shiren.domain.policy import (
    EventType,
    LendingEventIn,
    Requirement,
    StepUpPolicy,
    SubjectState,
    decide_step_up,
    load_policy,
)
from shiren.errors import ErrorCode, InputError, StateError
from shiren.fraud.embedded import EmbeddedProvider  # anti-fraud (issue 6)
from shiren.fraud.index import IndexProvider
from shiren.fraud.policy import FraudPolicy
from shiren.liveness.challenge import Challenge, draw_challenge, load_challenge
from shiren.liveness.check import (
    LivenessChecker,
    LivenessResult,
    MemoryReplayGuard,
    ReplayGuard,
)
from shiren.liveness.config import Level, LivenessConfig, load_config
from shiren.liveness.frames import FrameSequence, from_encoded
from shiren.liveness.memo import CaptureMemo
from shiren.messages import message
from shiren.privacy import (
    CipherContext,
    DataKey,
    DecryptError,
    new_data_key,
    open_,
    redact,
    seal,
    unwrap_subject_key,
    wrap_subject_key,
    wrapped_kek_id,
)
from shiren.privacy import pseudonym as make_pseudonym
from shiren.reasons import ReasonCode
from shiren.service import tenantkeys
from shiren.service.capture_token import issue as issue_capture_token
from shiren.service.connectors import refuse_sandbox_in_production, resolve_connectors
from shiren.service.consent import (
    find_reenrolment,
    gate_requirement,
    has_active_consent,
    opens_session,
    reenrol,
    require_active_consent,
    review_not_bound_reason,
)
from shiren.service.fraud import FraudGuard, index_sealers
from shiren.service.fraud import adjust as fraud_adjust
from shiren.service.keys import ServiceKeys, resolve_keys
from shiren.service.matching import FaceMatcher, MatchOutcome, StoredFace, reference_network
from shiren.service.ratelimit import AttemptCounter, MemoryCounter, RedisCounter
from shiren.service.settings import Settings, check_production
from shiren.service.ssrf import Resolver, system_resolver
from shiren.service.webhooks import (
    Event,
    enqueue_event,
    guard_url,
    new_secret,
    seal_secret,
)
from shiren.storage.ports import (
    ChainLink,
    UnitOfWork,
    UnitOfWorkFactory,
    erase_subject_biometrics,
    sweep_retention,
)
from shiren.thresholds import default_threshold
from shiren.verifier import PROFILES, TEMPLATE_VERSION, Verifier

log = logging.getLogger("shiren.service")

Clock = Callable[[], datetime]
ChallengeDrawer = Callable[[LivenessConfig, Level, float], Challenge]
"""Draws an (unsigned) challenge for a level at a time; the service signs it.  Production uses
the CSPRNG draw; tests inject one restricted to what their recording can answer."""

MAX_EXTERNAL_REF = 128
STORED_FACES_FILING_THRESHOLD = 100_000
"""Stored faces (bound templates, all tenants) at which an operator must file with the
regulator; the service warns when the deployment reaches it (``Settings.stored_faces_warning``)."""
STORED_FACES_WARNING = "stored_faces.filing_threshold"
MAX_NAME_CHARS = 64
DEFAULT_REVIEW_CANDIDATE_TTL_DAYS = 30
API_KEY_PREFIX = "shk"


def random_challenge(config: LivenessConfig, level: Level, now: float) -> Challenge:
    """The production drawer: :func:`draw_challenge` from the OS CSPRNG."""
    return draw_challenge(config, level, now=now)


# -- small value objects the API serialises ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentIn:
    purpose: str
    version: str
    text_sha256: str
    retention_days: int
    client: str = ""


@dataclass(frozen=True, slots=True)
class SessionView:
    session: Session
    challenge: Challenge
    check_id: str | None = None
    capture_token: str | None = None
    """Opens this session's capture page (``/capture/<token>``) without the lender's key."""

    def to_dict(self) -> dict[str, Any]:
        s = self.session
        return {
            "id": s.id,
            "subject_id": s.subject_id,
            "purpose": s.purpose.value,
            "level": s.level,
            "status": s.status.value,
            "nonce": s.nonce,
            "created_at": s.created_at.isoformat(),
            "expires_at": s.expires_at.isoformat(),
            "challenge": self.challenge.to_dict(),
            "check_id": self.check_id,
            "capture_token": self.capture_token,
        }


@dataclass(frozen=True, slots=True)
class CheckView:
    check: Check
    outcome: Outcome
    fallbacks: tuple[str, ...] = ()
    retry_after_s: int | None = None

    def to_dict(self, lang: str = "zh-CN") -> dict[str, Any]:
        c = self.check
        tips = [{"code": r, "message": message(r, lang)} for r in c.reasons if _known_reason(r)]
        return {
            "id": c.id,
            "session_id": c.session_id,
            "subject_id": c.subject_id,
            "decision": c.decision.value,
            "reasons": list(c.reasons),
            "tips": tips,
            "fallbacks": list(self.fallbacks),
            "retry_after_s": self.retry_after_s,
            "liveness_score": c.liveness_score,
            "match_score": c.match_score,
            "policy_version": c.policy_version,
            "created_at": c.created_at.isoformat(),
        }


def _known_reason(code: str) -> bool:
    try:
        message(code, "en")
    except KeyError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class StepUpView:
    event: LendingEvent
    requirement: Requirement
    session: SessionView | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event.id,
            "requirement": self.requirement.to_dict(),
            "session": None if self.session is None else self.session.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one retention sweep did, summed over tenants (counts only: no ids)."""

    templates: int = 0
    evidence: int = 0
    sessions: int = 0
    tenants: int = 0
    """Tenants that had anything to sweep (each got one ``retention.swept`` audit event)."""
    review_candidates: int = 0
    """Captured faces of pending reviews cleared (older than the review-candidate TTL)."""

    def to_dict(self) -> dict[str, int]:
        return {
            "templates": self.templates,
            "evidence": self.evidence,
            "sessions_expired": self.sessions,
            "tenants": self.tenants,
            "review_candidates": self.review_candidates,
        }


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What one master-key rotation run did (key ids are names, not secrets)."""

    key_id: str
    """The master key every tenant key is now wrapped by."""
    rewrapped: int = 0
    already_current: int = 0
    failed: tuple[str, ...] = ()
    """Tenant ids whose wrapped key could not be opened (its master key is not in the ring)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "rewrapped": self.rewrapped,
            "already_current": self.already_current,
            "failed": list(self.failed),
        }


@dataclass(frozen=True, slots=True)
class Engine:
    """The loaded models: the standard-profile verifier and a liveness checker sharing it."""

    verifier: Verifier
    checker: LivenessChecker

    @classmethod
    def load(cls, settings: Settings | None = None) -> Engine:
        """Load the real models once (checksums verified): the ``standard`` profile, or the
        network ``settings`` name (a lender's own, by manifest).  Without the PAD weights the
        levels that require the passive signal fail closed (``liveness.passive_unavailable``)."""
        config = PROFILES["standard"].config()
        if settings is not None and (settings.embedder or settings.match_threshold is not None):
            config = replace(
                config,
                embedder=settings.embedder or config.embedder,
                model_manifest=Path(settings.model_manifest) if settings.model_manifest else None,
                threshold=settings.match_threshold,
            )
        verifier = Verifier.from_config(config)
        liveness = load_config()
        network = verifier.embedder.info.name
        if settings is not None and network not in liveness.identity.by_network:
            # a lender's own network: the keyframes of one session must score at least its
            # second-factor threshold (or its pass threshold): dlib's 0.92 means nothing there
            floor = settings.second_factor_threshold
            identity = replace(
                liveness.identity,
                by_network={
                    **liveness.identity.by_network,
                    network: verifier.threshold if floor is None else floor,
                },
            )
            liveness = replace(liveness, identity=identity)
        checker = LivenessChecker.from_config(liveness, verifier=verifier, parallel=True)
        return cls(verifier, checker)


@dataclass
class _Caches:
    deks: dict[tuple[str, bytes], tuple[DataKey, ...]] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    """The last tenant row each key was taken from, for code that holds only a tenant id (the
    face index's file sealers) and runs inside an open unit of work: reading the row again
    would open a second one, which SQLite's single writer answers with "database is locked"."""


# -- the service -----------------------------------------------------------------------------


class ShirenService:
    """Use cases over injected storage, models, counters and clock (see the module docstring)."""

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
    ) -> None:
        self.review_candidate_ttl_days = review_candidate_ttl_days
        self.store = store
        self.resolver = resolver
        """Resolves webhook hosts for the SSRF guard (:mod:`shiren.service.ssrf`)."""
        # issue 6: outside checks (SMS, bank card, authority); sandbox only outside production
        self.connectors = refuse_sandbox_in_production(
            connectors or sandbox_connectors(), production=production
        )
        self.keys = keys
        self.verifier = engine.verifier
        base = engine.checker
        # The checker verifies the challenge signature with the service's key, and remembers
        # frame fingerprints so the same frames under a new nonce are caught.  (Tests that
        # assemble several sessions from ONE recording switch this off: to the guard they are
        # replays, which is exactly what it is for; a dedicated test checks that it fires.)
        self.checker = LivenessChecker(
            verifier=base.verifier,
            tracker=base.tracker,
            pad=base.pad,
            config=base.config,
            key=keys.challenge_key,
            replay_guard=(replay_guard or MemoryReplayGuard()) if detect_replays else None,
            parallel=base.parallel,
        )
        self.counter: AttemptCounter = counter if counter is not None else MemoryCounter()
        self.clock = clock
        self.policy = policy or load_policy()
        self.rules = rules or RetryRules()
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.draw = draw
        self._ready_check = ready_check
        self._on_erased = on_erased
        """Run after an erasure commits (SQLite: fold the WAL, so the deleted ciphertext is gone
        from disk too, not only from the tables)."""
        self._models_lock = threading.Lock()
        """The face tracker keeps per-video state: one capture is analysed at a time."""
        self._caches = _Caches()
        self.stored_faces_warning = stored_faces_warning
        self.production = production
        """Production refuses plain-http webhook URLs (development allows http to localhost)."""
        self._over_faces_threshold = False
        """Whether the last count was at/over the threshold: the log warning fires on the
        transition only, not on every readiness probe."""
        info = self.verifier.embedder.info
        self.embedder_id = f"{info.name}@sha256:{info.sha256}"
        # issue 14: probes from several frames; subjects keep working across network changes
        self.matcher = FaceMatcher(self.verifier)
        # anti-fraud (issue 6): 1:N index (in memory unless given), blacklists, identity graph
        self.fraud = FraudGuard(self, face_index or EmbeddedProvider(None), fraud_policy)

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine | None = None) -> ShirenService:
        """The production wiring: SQL storage (migrated), keys, Redis counters and replay guard
        when ``SHIREN_REDIS_URL`` is set (several workers then share retry counts and recent
        capture fingerprints), real models."""
        from shiren.storage.sql import SqlStore, checkpoint_sqlite, make_engine, migrate

        check_production(settings)  # test-only settings never reach production
        keys = resolve_keys(settings)  # fails fast on missing/weak keys in production
        sql = make_engine(settings.database_url)
        migrate(sql)
        counter: AttemptCounter
        replay_guard: ReplayGuard | None = None  # in process unless Redis is shared
        if settings.redis_url:
            from shiren.service.redis_guard import connect
            from shiren.service.replay import RedisReplayGuard

            client = connect(settings.redis_url)  # fails closed: typed 503, never a 500
            counter = RedisCounter(client, prefix=settings.redis_prefix)
            replay_guard = RedisReplayGuard(client, prefix=settings.redis_prefix)
        else:
            counter = MemoryCounter()

        def ping() -> None:
            with sql.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        service = cls(
            store=SqlStore(sql),
            keys=keys,
            engine=_engine_for(settings, engine or Engine.load(settings)),
            counter=counter,
            replay_guard=replay_guard,
            session_ttl_s=settings.session_ttl_s,
            ready_check=ping,
            on_erased=lambda: checkpoint_sqlite(sql),
            stored_faces_warning=settings.stored_faces_warning,
            production=settings.env == "production",
            review_candidate_ttl_days=settings.review_candidate_ttl_days,
            connectors=resolve_connectors(settings),  # issue 6
        )
        service.fraud.indexes = _face_indexes(service, sql)  # anti-fraud (issue 6)
        if settings.second_factor_threshold is not None:  # issue 14: a lender's own grey zone
            service.matcher.second_factor = settings.second_factor_threshold
        return service

    # -- keys and helpers ----------------------------------------------------------------

    def _deks(self, tenant: Tenant) -> tuple[DataKey, ...]:
        """The tenant's data keys: the current one first, then (while a tenant-key rotation
        runs) the previous one."""
        self._caches.tenants[tenant.id] = tenant
        key = (tenant.id, tenant.wrapped_dek)
        deks = self._caches.deks.get(key)
        if deks is None:
            deks = self.keys.ring.unwrap_tenant_keys(tenant.id, tenant.wrapped_dek)
            self._caches.deks[key] = deks
        return deks

    def tenant_row(self, tenant_id: str) -> Tenant | None:
        """The tenant row this process last sealed or opened with (None: not yet)."""
        return self._caches.tenants.get(tenant_id)

    def _dek(self, tenant: Tenant) -> DataKey:
        """The tenant key new data is sealed with."""
        return self._deks(tenant)[0]

    def _subject_key(self, tenant: Tenant, subject: Subject) -> DataKey:
        """The key that seals ``subject``'s fields: its own key, unwrapped by the tenant key, or
        the tenant key itself for a subject enrolled before subject keys (``wrapped_key`` NULL).

        Deliberately not cached: a cached subject key would outlive the subject's erasure.
        """
        if subject.wrapped_key is None:
            return self._dek(tenant)
        dek = tenantkeys.by_version(
            self._deks(tenant), tenantkeys.wrapper_version(subject.wrapped_key)
        )
        return unwrap_subject_key(dek, tenant.id, subject.id, subject.wrapped_key)

    def _seal(
        self, key: DataKey, tenant: Tenant, table: str, column: str, row_id: str, data: bytes
    ) -> bytes:
        return seal(key, data, CipherContext(tenant.id, table, column, row_id))

    def _open(
        self, key: DataKey, tenant: Tenant, table: str, column: str, row_id: str, blob: bytes
    ) -> bytes:
        key = tenantkeys.for_blob(self._deks(tenant), key, blob)  # mid-rotation legacy rows
        return open_(key, blob, CipherContext(tenant.id, table, column, row_id))

    def _audit(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        kind: str,
        subject_id: str | None,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> None:
        append_audit(uow, self.keys.audit_key, tenant_id, kind, subject_id, payload, now)

    def _emit(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        event: str,
        now: datetime,
        *,
        subject_id: str | None = None,
        check_id: str | None = None,
        decision: str | None = None,
        reasons: Sequence[str] = (),
    ) -> None:
        """Enqueue a webhook in ``uow``: it commits (or not) with the change it announces."""
        enqueue_event(
            uow,
            self.keys,
            tenant_id,
            event=event,
            now=now,
            subject_id=subject_id,
            check_id=check_id,
            decision=decision,
            reasons=reasons,
        )

    @staticmethod
    def _require_subject(uow: UnitOfWork, tenant_id: str, subject_id: str) -> Subject:
        subject = uow.subjects.get(tenant_id, subject_id) if _is_id(subject_id) else None
        if subject is None:
            raise StateError(
                "subject not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": "subject"}
            )
        return subject

    def _threshold(self, profile: str) -> float:
        chosen = PROFILES.get(profile, PROFILES["standard"])
        network = self.verifier.embedder.info.name
        if chosen.embedder != network:  # a profile of another network: this engine's own
            return self.verifier.threshold
        return default_threshold(network, views=chosen.views)

    def _new_session(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject_id: str,
        purpose: SessionPurpose,
        level: str,
        profile: str,
        now: datetime,
        event_id: str | None = None,
    ) -> SessionView:
        expires = now + self.session_ttl
        drawn = self.draw(self.checker.config, Level(level), now.timestamp())
        challenge = replace(
            drawn, nonce=secrets.token_hex(16), expires_at=round(expires.timestamp(), 3)
        ).signed(self.keys.challenge_key)
        session = Session(
            id=new_id(),
            tenant_id=tenant.id,
            subject_id=subject_id,
            purpose=purpose,
            challenge_json=json.dumps(challenge.to_dict(), sort_keys=True),
            nonce=challenge.nonce,
            level=Level(level).value,
            threshold=self._threshold(profile),
            created_at=now,
            expires_at=expires,
            event_id=event_id,
        )
        uow.sessions.add(session)
        token = issue_capture_token(self.keys.challenge_key, tenant.id, session.id, expires)
        return SessionView(session, challenge, capture_token=token)

    # -- tenants ---------------------------------------------------------------------------

    @staticmethod
    def hash_api_key(api_key: str) -> str:
        """``sha256$<key id>$hex``: the key id (the public part of the key) salts the hash, so
        equal secrets never hash alike, and the hash is still computable from the presented key
        for the lookup."""
        return hash_api_key(api_key)

    def create_tenant(self, name: str) -> tuple[Tenant, str]:
        """A new tenant and its API key (shown this once; only its hash is stored)."""
        return create_tenant(self.store, self.keys, name, self.clock())

    def authenticate(self, api_key: str) -> Tenant:
        """The active tenant owning ``api_key``; ``auth.required`` for anything else."""
        hashed = self.hash_api_key(api_key)
        tenant = None
        if hashed:
            with self.store() as uow:
                tenant = uow.tenants.get_by_api_key_hash(hashed)
        if tenant is None or tenant.status.value != "active":
            raise StateError("invalid or missing API key", code=ErrorCode.AUTH_REQUIRED)
        if not hmac.compare_digest(tenant.api_key_hash, hashed):  # pragma: no cover - belt
            raise StateError("invalid or missing API key", code=ErrorCode.AUTH_REQUIRED)
        return tenant

    def set_webhook(self, tenant: Tenant, url: str, secret: str | None = None) -> dict[str, Any]:
        """Set the tenant's webhook URL and signing secret (generated when not given).  The
        secret is stored sealed with the tenant key and returned only when generated: the
        lender must keep it, we never show it again."""
        url = guard_url(url, production=self.production, resolver=self.resolver)
        generated = secret is None
        if secret is not None:
            _text(secret, "secret", 256)
            if len(secret) < 16:
                raise InputError(
                    "secret must be at least 16 characters", detail={"field": "secret"}
                )
        value = new_secret() if secret is None else secret
        now = self.clock()
        with self.store() as uow:
            current = uow.tenants.get(tenant.id)
            if current is None:
                raise StateError("invalid or missing API key", code=ErrorCode.AUTH_REQUIRED)
            uow.tenants.set_webhook(
                tenant.id, url=url, secret_enc=seal_secret(self.keys, current, value)
            )
            host = urlsplit(url).hostname or ""
            self._audit(
                uow,
                tenant.id,
                "webhook.set",
                None,
                {"scheme": urlsplit(url).scheme, "host": host, "secret_generated": generated},
                now,
            )
            uow.commit()
        out: dict[str, Any] = {"url": url}
        if generated:
            out["secret"] = value
        return out

    # -- enrolment -------------------------------------------------------------------------

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
        """Create a subject from the lender's data and a reference photo, record the consent,
        and open an enrolment session; the face is bound only after that session passes."""
        _text(external_ref, "external_ref", MAX_EXTERNAL_REF)
        _text(name.strip(), "name", MAX_NAME_CHARS)
        _check_consent(consent)
        try:
            kind = ReferenceKind(reference_kind)
        except ValueError:
            raise InputError(
                "reference_kind must be id_card, authority or upload",
                detail={"field": "reference_kind"},
            ) from None
        parsed = idnumber.parse(id_number)
        with self._models_lock:
            analysis = self.verifier.analyze(reference_image)  # the image is dropped after this
        template = analysis.template.astype(np.float32).tobytes()
        now = self.clock()
        again = find_reenrolment(self, tenant, external_ref, parsed)  # after a withdrawal
        if again is not None:
            return reenrol(
                self, tenant, again, consent=consent, kind=kind, template=template, now=now
            )
        subject_id = new_id()
        pseudo = make_pseudonym(self.keys.pseudonym_key(tenant.id), parsed)
        key = new_data_key()  # the subject's own key: erasure deletes it (crypto-shredding)
        subject = Subject(
            id=subject_id,
            tenant_id=tenant.id,
            external_ref=external_ref,
            created_at=now,
            id_pseudonym=pseudo,
            id_number_enc=self._seal(
                key, tenant, "subjects", "id_number_enc", subject_id, parsed.number.encode("ascii")
            ),
            name_enc=self._seal(
                key, tenant, "subjects", "name_enc", subject_id, name.strip().encode("utf-8")
            ),
            wrapped_key=wrap_subject_key(self._dek(tenant), tenant.id, subject_id, key),
        )
        reference_id = new_id()
        consent_row = Consent(
            id=new_id(),
            tenant_id=tenant.id,
            subject_id=subject_id,
            purpose=consent.purpose,
            version=consent.version,
            text_sha256=consent.text_sha256.lower(),
            retention_days=consent.retention_days,
            granted_at=now,
            client=consent.client,
        )
        with self.store() as uow:
            uow.subjects.add(subject)
            uow.consents.add(consent_row)
            uow.references.add(
                Reference(
                    id=reference_id,
                    tenant_id=tenant.id,
                    subject_id=subject_id,
                    kind=kind,
                    template_enc=self._seal(
                        key, tenant, "references", "template_enc", reference_id, template
                    ),
                    created_at=now,
                    embedder=self.embedder_id,
                )
            )
            # anti-fraud (issue 6): blacklist, duplicates, same ID other face, device, velocity
            self.fraud.on_enrol(
                uow, tenant, subject, template, now, device_id=device_id, client_ip=client_ip
            )
            self._audit(
                uow,
                tenant.id,
                "consent.granted",
                subject_id,
                {
                    "consent_id": consent_row.id,
                    "purpose": consent.purpose,
                    "version": consent.version,
                    "text_sha256": consent_row.text_sha256,
                    "retention_days": consent.retention_days,
                },
                now,
            )
            view = self._new_session(
                uow,
                tenant,
                subject_id,
                SessionPurpose.ENROL,
                "normal",
                self.policy.match_profile,
                now,
            )
            uow.commit()
        self.fraud.enrolled(tenant, subject_id, template)  # issue 6: the references gallery
        log.info(redact(f"enrolment started tenant={tenant.id} subject={subject_id}"))
        return subject, view

    # -- step-up ---------------------------------------------------------------------------

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
        """Ask the versioned policy whether a lending event needs a face check, and how strong;
        record the event, and open a session when one is needed."""
        try:
            etype = EventType(event_type)
        except ValueError:
            raise InputError(
                "unknown event type",
                detail={"field": "type", "allowed": [e.value for e in EventType]},
            ) from None
        if amount_minor < 0:
            raise InputError("amount must not be negative", detail={"field": "amount_minor"})
        _text(currency, "currency", 3)
        if device_id is not None:
            _text(device_id, "device_id", 128)
        now = self.clock()
        with self.store() as uow:
            subject = self._require_subject(uow, tenant.id, subject_id)
            if subject.status in (SubjectStatus.ERASED, SubjectStatus.LOCKED):
                raise StateError(
                    f"subject is {subject.status.value}",
                    code=ErrorCode.SUBJECT_NOT_READY,
                    detail={"status": subject.status.value},
                )
            checks = uow.checks.list_for_subject(tenant.id, subject_id)
            passed = [c for c in checks if c.decision is Decision.PASS]
            events = uow.lending_events.list_for_subject(tenant.id, subject_id)
            state = SubjectState(
                enrolled=subject.status is SubjectStatus.ENROLLED,
                last_check_at=passed[-1].created_at if passed else None,
                last_check_policy_version=passed[-1].policy_version if passed else None,
                last_activity_at=events[-1].created_at if events else None,
                known_devices=frozenset(e.device_id for e in events if e.device_id),
            )
            event_in = LendingEventIn(etype, now, amount_minor, currency, device_id)
            requirement = decide_step_up(event_in, state, self.policy, now)
            requirement = gate_requirement(uow, tenant.id, subject_id, requirement)
            event = LendingEvent(
                id=new_id(),
                tenant_id=tenant.id,
                subject_id=subject_id,
                type=etype.value,
                decided=StepUpDecided.NEEDED if requirement.needed else StepUpDecided.NOT_NEEDED,
                policy_version=requirement.policy_version,
                created_at=now,
                amount_minor=amount_minor,
                currency=currency,
                device_id=device_id,
            )
            uow.lending_events.add(event)
            view = None
            if opens_session(requirement):  # not after a consent withdrawal
                purpose = (
                    SessionPurpose.ENROL
                    if requirement.purpose == "enrol"
                    else SessionPurpose.STEP_UP
                )
                view = self._new_session(
                    uow,
                    tenant,
                    subject_id,
                    purpose,
                    requirement.level,
                    requirement.match_profile,
                    now,
                    event_id=event.id,
                )
            uow.commit()
        return StepUpView(event, requirement, view)

    # -- sessions and checks ---------------------------------------------------------------

    def get_session(self, tenant: Tenant, session_id: str) -> SessionView:
        with self.store() as uow:
            session = uow.sessions.get(tenant.id, session_id) if _is_id(session_id) else None
            if session is None:
                raise StateError(
                    "session not found",
                    code=ErrorCode.RECORD_NOT_FOUND,
                    detail={"entity": "session"},
                )
            checks = uow.checks.list_for_session(tenant.id, session_id)
        status = session.status
        if status is SessionStatus.OPEN and self.clock() > session.expires_at:
            session = replace(session, status=SessionStatus.EXPIRED)
        token = issue_capture_token(
            self.keys.challenge_key, tenant.id, session.id, session.expires_at
        )
        return SessionView(
            session,
            load_challenge(session.challenge_json),
            checks[-1].id if checks else None,
            capture_token=token,
        )

    def get_check(self, tenant: Tenant, check_id: str) -> CheckView:
        with self.store() as uow:
            check = uow.checks.get(tenant.id, check_id) if _is_id(check_id) else None
        if check is None:
            raise StateError(
                "check not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": "check"}
            )
        return _view_of(check, self.rules)

    def _counter_keys(self, session: Session, subject: Subject, device: str | None) -> list[str]:
        keys = [f"{session.tenant_id}:subject:{subject.id}"]
        if device:
            keys.append(f"{session.tenant_id}:device:{hashlib.sha256(device.encode()).hexdigest()}")
        return keys

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
    ) -> CheckView:
        """Judge one capture: consume the session (single use), check liveness against the
        signed challenge, match the stillest frame with the reference (enrol) or the bound
        template (step-up), apply retry limits, decide, and — for a passed enrolment — bind the
        face template to the subject."""
        at = now or self.clock()
        with self.store() as uow:
            session = uow.sessions.get(tenant.id, session_id) if _is_id(session_id) else None
            if session is None:
                raise StateError(
                    "session not found",
                    code=ErrorCode.RECORD_NOT_FOUND,
                    detail={"entity": "session"},
                )
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
            subject = self._require_subject(uow, tenant.id, session.subject_id)
            event = (
                uow.lending_events.get(tenant.id, session.event_id) if session.event_id else None
            )
        # Decode before consuming: an unreadable upload is the client's mistake and must not
        # burn the session; everything after this point does.
        sequence = from_encoded(frames, times_ms, self.checker.config.frames, nonce=nonce)
        challenge = load_challenge(session.challenge_json)
        device = event.device_id if event is not None else None
        counter_keys = self._counter_keys(session, subject, device)
        # read the lock-outs BEFORE consuming the session: when the shared counters (Redis) are
        # down the check fails closed (503) and the borrower can retry the same session
        locked = max(self.counter.locked_for(k, at.timestamp()) for k in counter_keys)
        with self.store() as uow:
            uow.sessions.mark_used(tenant.id, session_id, nonce)
            uow.commit()
        if locked > 0:
            check = self._record(
                tenant,
                session,
                subject,
                at,
                Outcome.FALLBACK,
                (ReasonCode.LIMIT_LOCKED.value,),
                None,
                None,
                None,
            )
            return CheckView(check, Outcome.FALLBACK, _fallbacks(), locked)
        memo = CaptureMemo()
        with self._models_lock:
            liveness = self.checker.check(challenge, sequence, now=at.timestamp(), memo=memo)
            matched = self._match(tenant, session, subject, sequence, challenge, memo)
        similarity, template, match_reasons = (
            matched.similarity,
            matched.bind_template,
            matched.reasons,
        )
        recent = max(
            self.counter.failures(k, self.rules.window_s, at.timestamp()) for k in counter_keys
        )
        daily_key = f"{tenant.id}:id:{subject.id_pseudonym or subject.id}"
        daily = self.counter.add_daily(daily_key, at.timestamp())
        decision = decide(
            liveness_passed=liveness.passed,
            liveness_reasons=tuple(r.value for r in liveness.reasons) + match_reasons,
            similarity=similarity,
            threshold=matched.threshold,
            recent_failures=recent,
            daily_attempts=daily,
            rules=self.rules,
            grey_threshold=matched.grey_threshold,
        )
        # anti-fraud (issue 6): findings become reasons and move the decision (review/reject)
        findings = self.fraud.on_capture(
            tenant,
            session,
            subject,
            matched.live_template,
            sequence.frames[0].image if sequence.frames else None,
            at,
            device_id=device,
            client_ip=client_ip,
        )
        decision = fraud_adjust(decision, findings)
        if decision.outcome is Outcome.PASS:
            for k in counter_keys:
                self.counter.clear(k)
        else:
            for k in counter_keys:
                self.counter.add_failure(k, self.rules.window_s, at.timestamp())
            if decision.retry_after_s:
                for k in counter_keys:
                    self.counter.lock(k, decision.retry_after_s, at.timestamp())
        check = self._record(
            tenant,
            session,
            subject,
            at,
            decision.outcome,
            decision.reasons,
            liveness,
            similarity,
            template,
            matched,
        )
        self.fraud.record(tenant, subject, check.id, findings, at)  # anti-fraud (issue 6)
        log.info(
            redact(
                f"check decided tenant={tenant.id} session={session.id} "
                f"decision={decision.outcome.value} reasons={','.join(decision.reasons)}"
            )
        )
        return CheckView(check, decision.outcome, decision.fallbacks, decision.retry_after_s)

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
        with self.store() as uow:
            if session.purpose is SessionPurpose.ENROL:
                refs = uow.references.list_for_subject(tenant.id, session.subject_id)
                rows = [(r.id, "references", r.embedder, r.template_enc) for r in refs]
            else:
                temps = uow.templates.list_for_subject(tenant.id, session.subject_id)
                rows = [(t.id, "templates", t.embedder, t.template_enc) for t in temps]
        key = self._subject_key(tenant, subject) if rows else None
        network, dim = self.verifier.embedder.info.name, self.verifier.embedder.dim
        stored = []
        for row_id, table, embedder, blob in rows:
            if key is None:
                break
            vector = np.frombuffer(
                self._open(key, tenant, table, "template_enc", row_id, blob), dtype=np.float32
            )
            found = reference_network(embedder, len(vector), network, dim)
            stored.append(StoredFace(row_id, table, found, vector))
        same_network = self.checker.verifier.embedder is self.verifier.embedder
        return self.matcher.match(
            stored,
            sequence,
            challenge,
            memo if same_network else None,
            enrolment=session.purpose is SessionPurpose.ENROL,
            default_threshold=session.threshold,
        )

    def _record(
        self,
        tenant: Tenant,
        session: Session,
        subject: Subject,
        at: datetime,
        outcome: Outcome,
        reasons: tuple[str, ...],
        liveness: LivenessResult | None,
        similarity: float | None,
        template: bytes | None,
        matched: MatchOutcome | None = None,
    ) -> Check:
        check = Check(
            id=new_id(),
            tenant_id=tenant.id,
            session_id=session.id,
            subject_id=subject.id,
            decision=Decision(outcome.value),
            policy_version=self.policy.version,
            created_at=at,
            reasons=tuple(dict.fromkeys(reasons)),
            liveness_score=None if liveness is None else round(float(liveness.score), 6),
            match_score=None if similarity is None else round(similarity, 6),
        )
        with self.store() as uow:
            uow.checks.add(check)
            if outcome is Outcome.REVIEW:
                # An enrolment under review keeps its captured template (sealed with the subject
                # key) so an approving reviewer can bind it; step-up reviews need none.
                item_id = new_id()
                candidate = None
                if session.purpose is SessionPurpose.ENROL and template is not None:
                    candidate = self._seal(
                        self._subject_key(tenant, subject),
                        tenant,
                        "review_items",
                        "candidate_enc",
                        item_id,
                        template,
                    )
                uow.reviews.add(
                    ReviewItem(
                        id=item_id,
                        tenant_id=tenant.id,
                        check_id=check.id,
                        created_at=at,
                        candidate_enc=candidate,
                        liveness_passed=liveness is not None and bool(liveness.passed),
                    )
                )
            bound = False
            total_faces = 0
            if (
                outcome is Outcome.PASS
                and session.purpose is SessionPurpose.ENROL
                and template is not None
                and has_active_consent(uow, tenant.id, subject.id)  # withdrawn meanwhile?
            ):
                total_faces = self._bind(uow, tenant, subject, template, at)
                bound = True
            elif (
                outcome is Outcome.PASS
                and matched is not None
                and matched.upgrade
                and template is not None
                and has_active_consent(uow, tenant.id, subject.id)
            ):
                # issue 14: the step-up passed on an older network's template; the shipped
                # network's template joins it, made from these live frames (no photo kept)
                total_faces = self._bind(uow, tenant, subject, template, at)
                bound = True
            self._audit(
                uow,
                tenant.id,
                "check.decided",
                subject.id,
                {
                    "check_id": check.id,
                    "session_id": session.id,
                    "purpose": session.purpose.value,
                    "decision": outcome.value,
                    "reasons": list(check.reasons),
                    "liveness_score": check.liveness_score,
                    "match_score": check.match_score,
                    "threshold": session.threshold if matched is None else matched.threshold,
                    "second_factor_threshold": None if matched is None else matched.grey_threshold,
                    "network": None if matched is None else matched.network,
                    "network_upgraded": bool(bound and matched is not None and matched.upgrade),
                    "policy_version": check.policy_version,
                    "face_bound": bound,
                },
                at,
            )
            self._emit(
                uow,
                tenant.id,
                Event.CHECK_DECIDED,
                at,
                subject_id=subject.id,
                check_id=check.id,
                decision=outcome.value,
                reasons=check.reasons,
            )
            uow.commit()
        if bound and template is not None:  # issue 6: the face joins the 1:N gallery
            self.fraud.bound(tenant, subject.id, template)
            self._note_stored_faces(total_faces)
        return check

    def _bind(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, template: bytes, at: datetime
    ) -> int:
        """Bind ``template`` to ``subject`` in ``uow`` (expiring with the shortest consent
        retention) and mark it enrolled; returns the deployment's stored-face count."""
        consents = uow.consents.list_for_subject(tenant.id, subject.id)
        days = min((c.retention_days for c in consents), default=None)
        template_id = new_id()
        uow.templates.add(
            Template(
                id=template_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                template_enc=self._seal(
                    self._subject_key(tenant, subject),
                    tenant,
                    "templates",
                    "template_enc",
                    template_id,
                    template,
                ),
                embedder=self.embedder_id,
                template_version=int(TEMPLATE_VERSION),
                created_at=at,
                expires_at=None if days is None else at + timedelta(days=days),
            )
        )
        uow.subjects.set_status(tenant.id, subject.id, SubjectStatus.ENROLLED)
        return uow.templates.count_all()

    # -- review queue ------------------------------------------------------------------------

    def list_reviews(
        self, tenant: Tenant, status: str = "open", *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The tenant's review items in a status, oldest first (the queue's working order)."""
        try:
            wanted = ReviewStatus(status)
        except ValueError:
            raise InputError(
                "unknown review status",
                detail={"field": "status", "allowed": [x.value for x in ReviewStatus]},
            ) from None
        limit = max(1, min(limit, 500))
        with self.store() as uow:
            items = uow.reviews.list_by_status(tenant.id, wanted, limit=limit)
            checks = {i.check_id: uow.checks.get(tenant.id, i.check_id) for i in items}
            flows = fallback_reviews(uow, tenant.id, wanted, limit)
        out = [_review_dict(i, checks.get(i.check_id)) for i in items]
        out += [fallback_review_dict(f) for f in flows]  # issue 6: one queue for reviewers
        return sorted(out, key=lambda d: (d["created_at"], d["id"]))[:limit]

    def decide_review(
        self, tenant: Tenant, item_id: str, *, outcome: str, reviewer: str, note: str = ""
    ) -> dict[str, Any]:
        """Close a review with a reviewer's outcome, audited and announced by webhook in one
        unit of work.  Approving an enrolment review binds the captured face — but only if its
        liveness passed: a reviewer may judge a borderline *match*, never overrule a failed
        liveness check (that would let a photo or a replay enrol)."""
        try:
            result = {"approve": ReviewOutcome.APPROVED, "reject": ReviewOutcome.REJECTED}[outcome]
        except KeyError:
            raise InputError(
                "outcome must be approve or reject", detail={"field": "outcome"}
            ) from None
        _text(reviewer, "reviewer", 200)
        if len(note) > 2000:
            raise InputError("note must be at most 2000 characters", detail={"field": "note"})
        if _is_id(item_id):  # issue 6: a non-face case in the same queue
            with self.store() as uow:
                flow = None
                if uow.reviews.get(tenant.id, item_id) is None:
                    flow = uow.fallbacks.get(tenant.id, item_id)
            if flow is not None:
                return self._decide_fallback(tenant, item_id, outcome, reviewer, note)
        now = self.clock()
        bound = False
        total_faces = 0
        with self.store() as uow:
            item = uow.reviews.get(tenant.id, item_id) if _is_id(item_id) else None
            if item is None:
                raise StateError(
                    "review not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": "review"}
                )
            if item.status is ReviewStatus.CLOSED:
                raise _already_closed()
            check = uow.checks.get(tenant.id, item.check_id)
            assert check is not None  # a review references its check (foreign key)
            session = uow.sessions.get(tenant.id, check.session_id)
            subject = self._require_subject(uow, tenant.id, check.subject_id)
            try:
                closed = uow.reviews.close(
                    tenant.id, item_id, reviewer=reviewer, outcome=result, at=now
                )
            except StateError as exc:
                if exc.code is ErrorCode.RECORD_CONFLICT:  # a concurrent reviewer won
                    raise _already_closed() from None
                raise
            if (
                result is ReviewOutcome.APPROVED
                and session is not None
                and session.purpose is SessionPurpose.ENROL
                and item.liveness_passed
                and item.candidate_enc is not None
                and subject.status is not SubjectStatus.ERASED
                and has_active_consent(uow, tenant.id, subject.id)
            ):
                template = self._open(
                    self._subject_key(tenant, subject),
                    tenant,
                    "review_items",
                    "candidate_enc",
                    item.id,
                    item.candidate_enc,
                )
                total_faces = self._bind(uow, tenant, subject, template, now)
                bound = True
            not_bound = review_not_bound_reason(
                approved=result is ReviewOutcome.APPROVED and not bound,
                enrolment=session is not None and session.purpose is SessionPurpose.ENROL,
                live=item.liveness_passed,
                candidate=item.candidate_enc is not None,
                consent=has_active_consent(uow, tenant.id, subject.id),
                erased=subject.status is SubjectStatus.ERASED,
            )
            self._audit(
                uow,
                tenant.id,
                "review.closed",
                subject.id,
                {
                    "review_id": item.id,
                    "check_id": check.id,
                    "outcome": result.value,
                    "reviewer": reviewer,
                    "note_sha256": hashlib.sha256(note.encode()).hexdigest() if note else None,
                    "liveness_passed": item.liveness_passed,
                    "face_bound": bound,
                    "not_bound_reason": not_bound,
                },
                now,
            )
            self._emit(
                uow,
                tenant.id,
                Event.REVIEW_CLOSED,
                now,
                subject_id=subject.id,
                check_id=check.id,
                decision=result.value,
                reasons=check.reasons,
            )
            uow.commit()
        if bound:  # anti-fraud (issue 6): the bound face joins the 1:N gallery after the commit
            self.fraud.bound(tenant, subject.id, template)
            self._note_stored_faces(total_faces)
        log.info(redact(f"review closed tenant={tenant.id} review={item.id} outcome={result}"))
        out = _review_dict(closed, check)
        out["face_bound"] = bound
        out["not_bound_reason"] = not_bound
        return out

    def _decide_fallback(
        self, tenant: Tenant, flow_id: str, outcome: str, reviewer: str, note: str
    ) -> dict[str, Any]:
        """A fallback case in review, decided through the review queue: the same use case as
        ``POST /v1/fallbacks/{id}/review`` (audited, ``fallback.decided`` webhook); a case
        already decided is ``review.already_closed`` here too."""
        from shiren.service.fallback import FallbackService

        service = FallbackService(
            store=self.store, keys=self.keys, connectors=self.connectors, clock=self.clock
        )
        try:
            service.decide_review(tenant, flow_id, outcome=outcome, reviewer=reviewer, note=note)
        except StateError as exc:
            if exc.code is ErrorCode.FALLBACK_CLOSED:
                raise _already_closed() from None
            raise
        with self.store() as uow:
            flow = uow.fallbacks.get(tenant.id, flow_id)
        assert flow is not None
        out = fallback_review_dict(flow)
        out["face_bound"] = False
        out["not_bound_reason"] = None
        return out

    # -- erasure, export, audit ------------------------------------------------------------

    def erase_subject(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        """Delete every biometric row of the subject and null its identity ciphertexts and
        pseudonym (the row stays, so the lender sees *that* and *when* it was erased)."""
        now = self.clock()
        with self.store() as uow:
            self._require_subject(uow, tenant.id, subject_id)
            counts = erase_subject_biometrics(uow, tenant.id, subject_id)
            subject = uow.subjects.erase(tenant.id, subject_id, now)
            self._audit(
                uow,
                tenant.id,
                "subject.erased",
                subject_id,
                {  # "template" is a forbidden audit key: name the counts by what they were
                    "face_rows": counts.templates,
                    "reference_rows": counts.references,
                    "evidence_rows": counts.evidence,
                    "review_candidate_rows": counts.review_candidates,
                },
                now,
            )
            self._emit(uow, tenant.id, Event.SUBJECT_ERASED, now, subject_id=subject_id)
            uow.commit()
        self.fraud.forget(tenant.id, subject_id)  # anti-fraud (issue 6): leave the 1:N gallery
        if self._on_erased is not None:
            self._on_erased()
        assert subject.erased_at is not None
        return {
            "subject_id": subject_id,
            "status": subject.status.value,
            "erased_at": subject.erased_at.isoformat(),
            "deleted": {
                "templates": counts.templates,
                "references": counts.references,
                "evidence": counts.evidence,
            },
        }

    def export_subject(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        """What the service holds about a subject (a data-subject access request): identity
        (name, masked ID number), consents, events, checks, and template *metadata* — never
        templates or images."""
        with self.store() as uow:
            subject = self._require_subject(uow, tenant.id, subject_id)
            consents = uow.consents.list_for_subject(tenant.id, subject_id)
            checks = uow.checks.list_for_subject(tenant.id, subject_id)
            events = uow.lending_events.list_for_subject(tenant.id, subject_id)
            templates = uow.templates.list_for_subject(tenant.id, subject_id)
            references = uow.references.list_for_subject(tenant.id, subject_id)
            from shiren.service.fallback_records import subject_export  # issue 6 (import cycle)

            non_face = subject_export(uow, tenant.id, subject_id)  # issue 6: fallbacks, payouts
        name = masked = None
        key = self._subject_key(tenant, subject)
        if subject.name_enc is not None:
            name = self._open(key, tenant, "subjects", "name_enc", subject.id, subject.name_enc)
        if subject.id_number_enc is not None:
            raw = self._open(
                key, tenant, "subjects", "id_number_enc", subject.id, subject.id_number_enc
            )
            masked = idnumber.parse(raw.decode("ascii")).mask()
        return {
            "subject": {
                "id": subject.id,
                "external_ref": subject.external_ref,
                "status": subject.status.value,
                "name": None if name is None else name.decode("utf-8"),
                "id_number_masked": masked,
                "created_at": subject.created_at.isoformat(),
                "erased_at": None if subject.erased_at is None else subject.erased_at.isoformat(),
            },
            "consents": [
                {
                    "id": c.id,
                    "purpose": c.purpose,
                    "version": c.version,
                    "text_sha256": c.text_sha256,
                    "retention_days": c.retention_days,
                    "granted_at": c.granted_at.isoformat(),
                    "withdrawn_at": None if c.withdrawn_at is None else c.withdrawn_at.isoformat(),
                }
                for c in consents
            ],
            "events": [
                {
                    "id": e.id,
                    "type": e.type,
                    "amount_minor": e.amount_minor,
                    "currency": e.currency,
                    "decided": e.decided.value,
                    "created_at": e.created_at.isoformat(),
                }
                for e in events
            ],
            "checks": [_view_of(c, self.rules).to_dict("en") for c in checks],
            "templates": [
                {
                    "id": t.id,
                    "embedder": t.embedder,
                    "created_at": t.created_at.isoformat(),
                    "expires_at": None if t.expires_at is None else t.expires_at.isoformat(),
                }
                for t in templates
            ],
            "references": [
                {"id": r.id, "kind": r.kind.value, "created_at": r.created_at.isoformat()}
                for r in references
            ],
            **non_face,  # issue 6
        }

    def sweep(self, now: datetime | None = None) -> SweepResult:
        """Enforce retention: delete templates and evidence past their ``expires_at`` and
        expire open sessions past their TTL, auditing the counts in each tenant's chain."""
        return sweep(
            self.store,
            self.keys.audit_key,
            now or self.clock(),
            review_candidate_ttl_days=self.review_candidate_ttl_days,
            on_faces_deleted=self.fraud.swept,  # issue 6: swept faces leave the 1:N gallery
        )

    # -- stored faces (the regulator's filing threshold) ------------------------------------

    def stats(self, tenant: Tenant) -> dict[str, Any]:
        """The tenant's own numbers: how many faces (bound templates) it stores.  Never the
        deployment's total: that would tell one lender about the others' business."""
        with self.store() as uow:
            faces = uow.templates.count(tenant.id)
        return {"stored_faces": faces}

    def _note_stored_faces(self, total: int) -> bool:
        """Remember whether ``total`` reached the threshold; log a warning on the transition."""
        over = total >= self.stored_faces_warning
        if over and not self._over_faces_threshold:
            log.warning(
                "stored faces reached the filing threshold: %d bound templates >= %d "
                "(file with the regulator)",
                total,
                self.stored_faces_warning,
            )
        self._over_faces_threshold = over
        return over

    def warnings(self) -> list[dict[str, Any]]:
        """Operator warnings for ``/readyz`` (they never make the service unready)."""
        with self.store() as uow:
            total = uow.templates.count_all()
        if not self._note_stored_faces(total):
            return []
        return [
            {
                "code": STORED_FACES_WARNING,
                "stored_faces": total,
                "threshold": self.stored_faces_warning,
                "message": "The deployment stores at least the regulator's filing threshold of "
                "face templates: file the face-recognition processing with the regulator.",
            }
        ]

    def audit_verify(self, tenant_id: str) -> VerifyResult:
        """Verify a tenant's whole chain (hashes, links and MACs under the audit key)."""
        return verify_audit(self.store, self.keys.audit_key, tenant_id)

    def tenant_ids(self) -> list[str]:
        with self.store() as uow:
            return [t.id for t in uow.tenants.list_all()]

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


def _face_indexes(service: ShirenService, sql: Any) -> IndexProvider:
    """Anti-fraud (issue 6): pgvector on PostgreSQL (shared by every worker), else the embedded
    index (IVF, docs/FRAUD.md) in a folder beside the SQLite file, sealed with each tenant's
    key."""
    if sql.dialect.name == "postgresql":
        from shiren.fraud.pgvector import PgVectorProvider

        provider = PgVectorProvider(sql)
        provider.ensure()
        return provider
    from pathlib import Path

    db = sql.url.database
    root = Path(f"{db}.faces") if db and db != ":memory:" else None
    seal_, open_ = index_sealers(service)
    return EmbeddedProvider(root, seal=seal_, open_=open_)


def hash_api_key(api_key: str) -> str:
    """``sha256$<key id>$hex`` of a ``shk_<key id>_<secret>`` key ("" for anything else): the
    key id (the public part of the key) salts the hash, so equal secrets never hash alike, and
    the hash is still computable from the presented key for the lookup."""
    parts = api_key.split("_")
    if (
        len(parts) != 3
        or parts[0] != API_KEY_PREFIX
        or not 1 <= len(parts[1]) <= 32
        or not all(c in "0123456789abcdef" for c in parts[1])
        or not parts[2].isascii()
        or not parts[2].isprintable()
    ):
        return ""
    digest = hashlib.sha256(f"{parts[1]}:{parts[2]}".encode()).hexdigest()
    return f"sha256${parts[1]}${digest}"


def append_audit(
    uow: UnitOfWork,
    audit_key: bytes,
    tenant_id: str,
    kind: str,
    subject_id: str | None,
    payload: Mapping[str, Any],
    now: datetime,
) -> None:
    """Append one event to the tenant's chain, adapting :mod:`shiren.audit` to storage's
    :class:`~shiren.storage.ports.ChainHasher`; the payload is checked (no biometrics, no ID
    numbers) before anything is written."""
    checked = PureAuditEvent(tenant_id, kind, subject_id, payload, now)

    def hasher(*, seq: int, prev_hash: str, draft: AuditDraft) -> ChainLink:
        canonical = canonical_bytes(
            seq,
            draft.tenant_id,
            draft.kind,
            draft.subject_id,
            json.loads(draft.payload),
            draft.created_at,
        )
        digest = compute_hash(prev_hash, canonical)
        return ChainLink(digest, compute_mac(audit_key, digest))

    draft = AuditDraft(
        tenant_id=tenant_id,
        kind=kind,
        payload=json.dumps(dict(checked.payload), sort_keys=True, ensure_ascii=False),
        created_at=now,
        subject_id=subject_id,
    )
    uow.audit.append(draft, hasher)


def create_tenant(
    store: UnitOfWorkFactory, keys: ServiceKeys, name: str, now: datetime
) -> tuple[Tenant, str]:
    """A new tenant (with its own wrapped data key) and its API key, shown this once."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InputError("tenant name must be 1-200 characters", detail={"field": "name"})
    secret = secrets.token_urlsafe(32).replace("_", "-")
    api_key = f"{API_KEY_PREFIX}_{secrets.token_hex(8)}_{secret}"
    tenant_id = new_id()
    tenant = Tenant(
        id=tenant_id,
        name=name,
        api_key_hash=hash_api_key(api_key),
        created_at=now,
        wrapped_dek=keys.ring.wrap_tenant_key(tenant_id, new_data_key()),
    )
    with store() as uow:
        uow.tenants.add(tenant)
        append_audit(
            uow, keys.audit_key, tenant.id, "tenant.created", None, {"tenant_id": tenant.id}, now
        )
        uow.commit()
    return tenant, api_key


def sweep(
    store: UnitOfWorkFactory,
    audit_key: bytes,
    now: datetime,
    *,
    review_candidate_ttl_days: int = DEFAULT_REVIEW_CANDIDATE_TTL_DAYS,
    on_faces_deleted: Callable[[str, set[str]], None] | None = None,
) -> SweepResult:
    """The retention sweep (see :meth:`ShirenService.sweep`); needs no models, so a cron job
    (``shiren retention sweep``) can run it against the database directly.

    Why tenant by tenant, one transaction each: every tenant's audit chain records exactly what
    was deleted from *its* data (a regulator asks a lender, not the operator), and a failure for
    one tenant neither rolls back nor blocks the others' deletions.  Tenants with nothing to
    sweep get no audit event, so a frequent cron does not bloat every chain.  Idempotent: a
    second run with the same ``now`` finds nothing.

    Pending enrolment reviews older than ``review_candidate_ttl_days`` (from their
    ``created_at``) lose their captured face: a review nobody works on must not keep a
    biometric template forever; approving it later binds nothing (``review.candidate_expired``).

    ``on_faces_deleted(tenant_id, subject_ids)`` runs after each tenant's commit with the
    subjects whose templates were deleted: the 1:N galleries are a second copy of the faces and
    must follow the retention (issue 6; :meth:`FraudGuard.swept`,
    :func:`~shiren.service.fraud.gallery_sweeper`).
    """
    with store() as uow:
        tenant_ids = [t.id for t in uow.tenants.list_all()]
    templates = evidence = sessions = swept = candidates = 0
    cutoff = now - timedelta(days=review_candidate_ttl_days)
    for tenant_id in tenant_ids:
        with store() as uow:
            gone = uow.templates.expired_subject_ids(now, tenant_id=tenant_id)
            counts = sweep_retention(uow, now, tenant_id=tenant_id, candidates_before=cutoff)
            expired = uow.sessions.expire_due(now, tenant_id=tenant_id)
            if counts.templates or counts.evidence or counts.review_candidates or expired:
                append_audit(
                    uow,
                    audit_key,
                    tenant_id,
                    "retention.swept",
                    None,
                    {  # "template" is a forbidden audit key: name the counts by what they were
                        "face_rows": counts.templates,
                        "evidence_rows": counts.evidence,
                        "review_candidate_rows": counts.review_candidates,
                        "sessions_expired": expired,
                        "as_of": now.isoformat(),
                    },
                    now,
                )
                swept += 1
            uow.commit()
        if gone and on_faces_deleted is not None:
            try:
                on_faces_deleted(tenant_id, gone)
            except Exception as exc:  # the rows are gone; the gallery heals when reconciled
                log.warning("retention sweep: face gallery not updated (%s)", type(exc).__name__)
        templates += counts.templates
        evidence += counts.evidence
        candidates += counts.review_candidates
        sessions += expired
    if swept:
        log.info(
            "retention sweep: %d face rows, %d evidence rows deleted, %d sessions expired "
            "(%d tenants)",
            templates,
            evidence,
            sessions,
            swept,
        )
    return SweepResult(templates, evidence, sessions, swept, candidates)


def rotate_master_key(store: UnitOfWorkFactory, keys: ServiceKeys, now: datetime) -> RotationResult:
    """Re-wrap every tenant's data key under the ring's current master key.

    Why this is enough and safe without downtime: the tenant key itself does not change (only
    its wrapping does), so no row is re-encrypted and every blob sealed before keeps opening.
    The procedure is: (1) deploy the new master key as current with the old one in
    ``SHIREN_RETIRED_MASTER_KEYS`` — servers then open keys wrapped either way, and wrap new
    tenants under the new key; (2) run this (``shiren keys rotate``), as often as needed: it
    skips tenants already re-wrapped; (3) drop the old key once it reports nothing left.

    One transaction per tenant (re-read, re-wrap, audit ``key.rewrapped``, commit), so a crash
    mid-run leaves every tenant either fully old or fully new, and a concurrent tenant-key
    rotation wins cleanly (``dek_version`` is checked; the loser is retried at the next run).
    """
    ring = keys.ring
    new_id = ring.current.key_id
    with store() as uow:
        tenant_ids = [t.id for t in uow.tenants.list_all()]
    rewrapped = already = 0
    failed: list[str] = []
    for tenant_id in tenant_ids:
        with store() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None or not ring.needs_rewrap(tenant.wrapped_dek):
                already += 1
                continue
            try:
                old_id = wrapped_kek_id(tenant.wrapped_dek)
                wrapped = ring.rewrap(tenant_id, tenant.wrapped_dek)
            except DecryptError as exc:  # UnknownKeyError: its old master key is not configured
                log.error("key rotation: tenant=%s cannot be unwrapped (%s)", tenant_id, exc.code)
                failed.append(tenant_id)
                continue
            try:
                uow.tenants.rotate_dek(
                    tenant_id,
                    wrapped_dek=wrapped,
                    dek_version=tenant.dek_version,  # same data key, only re-wrapped
                    expected_version=tenant.dek_version,
                )
            except StateError as exc:
                if exc.code is not ErrorCode.RECORD_CONFLICT:
                    raise
                failed.append(tenant_id)  # a concurrent tenant-key rotation: run again
                continue
            append_audit(
                uow,
                keys.audit_key,
                tenant_id,
                "key.rewrapped",
                None,
                {"from_key_id": old_id, "to_key_id": new_id, "dek_version": tenant.dek_version},
                now,
            )
            uow.commit()
        rewrapped += 1
    log.info(
        "key rotation to %s: %d re-wrapped, %d already current, %d failed",
        new_id,
        rewrapped,
        already,
        len(failed),
    )
    return RotationResult(new_id, rewrapped, already, tuple(failed))


def verify_audit(store: UnitOfWorkFactory, audit_key: bytes, tenant_id: str) -> VerifyResult:
    """Verify one tenant's stored audit chain with :func:`shiren.audit.verify` (keyed): needs
    no models, so the CLI can run it against a database without loading the engine."""
    rows: list[ChainedEvent] = []
    start = 1
    with store() as uow:
        while True:
            batch = uow.audit.read(tenant_id, start_seq=start, limit=1000)
            for e in batch:
                try:
                    payload: Any = json.loads(e.payload)
                except ValueError:
                    payload = {"unreadable": e.payload}
                rows.append(
                    ChainedEvent(
                        seq=e.seq,
                        tenant_id=e.tenant_id,
                        kind=e.kind,
                        subject_id=e.subject_id,
                        payload=payload,
                        created_at=e.created_at,
                        prev_hash=e.prev_hash,
                        hash=e.hash,
                        mac=e.mac,
                    )
                )
            if len(batch) < 1000:
                break
            start = batch[-1].seq + 1
    return verify_chain(rows, audit_key=audit_key)


def _engine_for(settings: Settings, engine: Engine) -> Engine:
    if not settings.test_passive_only:
        return engine
    from shiren.service.testing import passive_only_engine

    log.warning("TEST CONFIGURATION: liveness is passive-only (SHIREN_TEST_PASSIVE_ONLY)")
    return passive_only_engine(engine)


def _already_closed() -> StateError:
    return StateError("review already closed", code=ErrorCode.REVIEW_ALREADY_CLOSED)


def _review_dict(item: ReviewItem, check: Check | None) -> dict[str, Any]:
    """A review item for the API: ids, state and the check's decision data; no biometrics."""
    return {
        "id": item.id,
        "kind": "face",
        "check_id": item.check_id,
        "subject_id": None if check is None else check.subject_id,
        "status": item.status.value,
        "outcome": None if item.outcome is None else item.outcome.value,
        "reviewer": item.reviewer,
        "reasons": [] if check is None else list(check.reasons),
        "liveness_passed": item.liveness_passed,
        "liveness_score": None if check is None else check.liveness_score,
        "match_score": None if check is None else check.match_score,
        "created_at": item.created_at.isoformat(),
        "closed_at": None if item.closed_at is None else item.closed_at.isoformat(),
    }


def fallback_reviews(
    uow: UnitOfWork, tenant_id: str, status: ReviewStatus, limit: int
) -> list[FallbackFlow]:
    """The fallback cases that belong in the review queue in ``status``: ``open`` — waiting for
    a reviewer (``review``); ``closed`` — decided by one (``approved`` / ``rejected``)."""
    wanted = {
        ReviewStatus.OPEN: (FallbackStatus.REVIEW,),
        ReviewStatus.CLOSED: (FallbackStatus.APPROVED, FallbackStatus.REJECTED),
    }.get(status, ())
    return [f for st in wanted for f in uow.fallbacks.list_by_status(tenant_id, st, limit=limit)]


def fallback_review_dict(flow: FallbackFlow) -> dict[str, Any]:
    """A fallback case as a review-queue item (``kind`` ``fallback``): the same keys as a face
    review, no scores; its steps and masked phone are at ``GET /v1/fallbacks/{id}``."""
    closed = flow.status in (FallbackStatus.APPROVED, FallbackStatus.REJECTED)
    return {
        "id": flow.id,
        "kind": "fallback",
        "check_id": None,
        "subject_id": flow.subject_id,
        "event_id": flow.event_id,
        "cause": flow.cause.value,
        "status": ReviewStatus.CLOSED.value if closed else ReviewStatus.OPEN.value,
        "outcome": flow.status.value if closed else None,
        "reviewer": flow.reviewer,
        "reasons": list(flow.reasons),
        "liveness_passed": None,
        "liveness_score": None,
        "match_score": None,
        "created_at": flow.created_at.isoformat(),
        "closed_at": None if flow.closed_at is None else flow.closed_at.isoformat(),
    }


def _fallbacks() -> tuple[str, ...]:
    from shiren.domain.decisions import FALLBACKS

    return FALLBACKS


def _view_of(check: Check, rules: RetryRules) -> CheckView:
    outcome = Outcome(check.decision.value)
    fallbacks = _fallbacks() if outcome in (Outcome.REVIEW, Outcome.FALLBACK) else ()
    locked = ReasonCode.LIMIT_LOCKED.value in check.reasons
    return CheckView(check, outcome, fallbacks, rules.cooloff_s if locked else None)


def _is_id(value: str) -> bool:
    """Whether ``value`` can be one of our ids (32 lower-case hex).  Anything else is "not
    found" without a query: a hostile path segment (a NUL byte, a lone surrogate) would make
    PostgreSQL raise instead of answering."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _text(value: str, field_name: str, max_chars: int) -> str:
    """``value`` if it is 1..``max_chars`` printable characters (no control characters, no
    lone surrogates: neither can be stored as UTF-8 text in every database)."""
    if not 1 <= len(value) <= max_chars or any(
        ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value
    ):
        raise InputError(
            f"{field_name} must be 1-{max_chars} printable characters",
            detail={"field": field_name},
        )
    return value


def _check_consent(consent: ConsentIn) -> None:
    def bad(field_name: str, why: str) -> InputError:
        return InputError(f"consent.{field_name} {why}", detail={"field": f"consent.{field_name}"})

    _text(consent.purpose, "consent.purpose", 64)
    _text(consent.version, "consent.version", 32)
    text = consent.text_sha256
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise bad("text_sha256", "must be 64 hex digits")
    if not 1 <= consent.retention_days <= 3650:
        raise bad("retention_days", "must be 1-3650")


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

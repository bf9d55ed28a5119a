"""The composition root: everything shiren runs is built here, from settings, and nowhere else.

The ASGI factory (:func:`shiren.api.asgi.build`) and every CLI command call these functions;
the rooms of the service (:mod:`shiren.service`) receive what they need already built, so none of
them reads settings, opens a database or loads a model on its own.

* :func:`open_storage` — the configured SQL store (migrated) and the keys, as the server uses
  them; needs no models, so the CLI's tenant, audit, retention and key commands start fast.
* :func:`build_service` — the whole service: storage, keys, Redis counters and replay guard when
  ``SHIREN_REDIS_URL`` is set, the face index (pgvector on PostgreSQL, the embedded one beside a
  SQLite file), the outside connectors, and the models (loaded once).
* :func:`build_verifier` — the face engine alone, for a named profile (the CLI's compare,
  quality, evaluation and benchmark commands).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shiren.errors import ErrorCode, InputError
from shiren.service.keys import ServiceKeys, resolve_keys
from shiren.service.settings import Settings, check_production, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine as SqlEngine

    from shiren.fraud.index import IndexProvider
    from shiren.service.app import ShirenService
    from shiren.service.engine import Engine
    from shiren.service.vault import KeyVault
    from shiren.storage.sql import SqlStore
    from shiren.verifier import Verifier

log = logging.getLogger("shiren.service")

FACE_POLICIES = ("single", "largest_central")


@dataclass(frozen=True, slots=True)
class Storage:
    """The migrated SQL store, the keys, and the SQLAlchemy engine behind the store."""

    store: SqlStore
    keys: ServiceKeys
    sql: SqlEngine


def open_storage(settings: Settings | None = None) -> Storage:
    """The configured SQL store (migrated first) and keys; fails fast on missing or weak keys in
    production (``config.invalid``) before anything is written."""
    from shiren.storage.sql import SqlStore, make_engine, migrate

    settings = settings or load_settings()
    keys = resolve_keys(settings)
    sql = make_engine(settings.database_url)
    migrate(sql)
    return Storage(SqlStore(sql), keys, sql)


def build_verifier(
    profile: str = "standard", threshold: float | None = None, face_policy: str = "largest_central"
) -> Verifier:
    """The real :class:`~shiren.Verifier` for a named profile; ``input.invalid`` (with the
    allowed values) for an unknown profile or face policy."""
    from shiren.verifier import PROFILES, Verifier

    if profile not in PROFILES:
        raise InputError(
            f"profile must be one of {', '.join(PROFILES)}",
            code=ErrorCode.INPUT_INVALID,
            detail={"field": "profile", "allowed": list(PROFILES)},
        )
    if face_policy not in FACE_POLICIES:
        raise InputError(
            "face policy must be 'single' or 'largest_central'",
            code=ErrorCode.INPUT_INVALID,
            detail={"field": "policy", "allowed": list(FACE_POLICIES)},
        )
    config = PROFILES[profile].config(threshold=threshold, face_policy=face_policy)
    return Verifier.from_config(config)


def load_engine(settings: Settings, engine: Engine | None = None) -> Engine:
    """The loaded models for ``settings`` (``engine`` when one is already loaded: tests share
    one); the passive-only test configuration wraps it, loudly."""
    from shiren.service.engine import Engine

    loaded = engine or Engine.load(settings)
    if not settings.test_passive_only:
        return loaded
    from shiren.service.testing import passive_only_engine

    log.warning("TEST CONFIGURATION: liveness is passive-only (SHIREN_TEST_PASSIVE_ONLY)")
    return passive_only_engine(loaded)


def face_indexes(sql: SqlEngine, vault: KeyVault, store: SqlStore) -> IndexProvider:
    """The 1:N face index: pgvector on PostgreSQL (shared by every worker), else the embedded
    index (IVF, docs/FRAUD.md) in a folder beside the SQLite file, sealed with each tenant's
    key."""
    from shiren.fraud.embedded import EmbeddedProvider

    if sql.dialect.name == "postgresql":
        from shiren.fraud.pgvector import PgVectorProvider

        provider = PgVectorProvider(sql)
        provider.ensure()
        return provider
    from shiren.service.galleries import index_sealers

    db = sql.url.database
    root = Path(f"{db}.faces") if db and db != ":memory:" else None
    seal_, open_ = index_sealers(vault, store)
    return EmbeddedProvider(root, seal=seal_, open_=open_)


def build_service(
    settings: Settings | None = None, *, engine: Engine | None = None
) -> ShirenService:
    """The production wiring: SQL storage (migrated), keys, Redis counters and replay guard when
    ``SHIREN_REDIS_URL`` is set (several workers then share retry counts and recent capture
    fingerprints), the face index, the connectors and the real models."""
    from shiren.service.app import ShirenService
    from shiren.service.connectors import resolve_connectors
    from shiren.service.ratelimit import AttemptCounter, MemoryCounter, RedisCounter
    from shiren.storage.sql import checkpoint_sqlite

    settings = settings or load_settings()
    check_production(settings)  # test-only settings never reach production
    storage = open_storage(settings)
    sql = storage.sql
    counter: AttemptCounter = MemoryCounter()
    replay_guard = None  # in process unless Redis is shared
    if settings.redis_url:
        from shiren.service.redis_guard import connect
        from shiren.service.replay import RedisReplayGuard

        client = connect(settings.redis_url)  # fails closed: typed 503, never a 500
        counter = RedisCounter(client, prefix=settings.redis_prefix)
        replay_guard = RedisReplayGuard(client, prefix=settings.redis_prefix)

    def ping() -> None:
        with sql.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    from shiren.service.vault import KeyVault

    vault = KeyVault(storage.keys)
    return ShirenService(
        store=storage.store,
        vault=vault,
        keys=storage.keys,
        engine=load_engine(settings, engine),
        counter=counter,
        replay_guard=replay_guard,
        session_ttl_s=settings.session_ttl_s,
        ready_check=ping,
        on_erased=lambda: checkpoint_sqlite(sql),
        stored_faces_warning=settings.stored_faces_warning,
        production=settings.env == "production",
        review_candidate_ttl_days=settings.review_candidate_ttl_days,
        connectors=resolve_connectors(settings),
        face_index=face_indexes(sql, vault, storage.store),
        second_factor_threshold=settings.second_factor_threshold,
    )


__all__ = [
    "FACE_POLICIES",
    "Storage",
    "build_service",
    "build_verifier",
    "face_indexes",
    "load_engine",
    "open_storage",
]

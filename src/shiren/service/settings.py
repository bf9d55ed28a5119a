"""Service settings, read from the environment (``SHIREN_*``) by pydantic-settings.

Why environment variables and nothing else: a container platform injects secrets that way, and a
settings file next to the code would sooner or later be committed with a key in it.  Keys are
:class:`~pydantic.SecretStr` so that printing the settings (a debug log, a traceback) never shows
them; :mod:`shiren.service.keys` turns them into key objects and decides what a missing key means
(generated in development, refused in production).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shiren.errors import ConfigError, ErrorCode

DEFAULT_MAX_BODY_BYTES = 48 * 1024 * 1024
"""A normal-level session is ~11 s of 960×540 JPEG frames at 15 fps (≈ 170 frames, 6–10 MB);
the cap leaves room for higher resolutions while keeping one request from exhausting memory."""


class Settings(BaseSettings):
    """Everything the service reads at start-up.  Unknown ``SHIREN_*`` variables are ignored
    (the engine has its own, such as ``SHIREN_MINIFASNET_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="SHIREN_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./shiren.db"
    redis_url: str | None = None
    redis_prefix: str = Field(default="shiren:", min_length=1, max_length=64)
    """Prefix of every Redis key (retry counters, replay guard): lets deployments share a Redis."""
    master_key: SecretStr | None = None
    """Base64 of 32 random bytes: wraps every tenant's data key."""
    master_key_id: str = "m1"
    retired_master_keys: SecretStr | None = None
    """``id:base64,id:base64`` — old master keys kept during a rotation."""
    pseudonym_key_id: str | None = None
    """The master key id that ID-number pseudonyms derive from (default: ``master_key_id``).
    Set it to the *first* master key's id before the first rotation and keep that key in
    ``SHIREN_RETIRED_MASTER_KEYS`` for good: pseudonyms must never change, or duplicate checks
    and daily caps would silently restart from zero."""
    audit_key: SecretStr | None = None
    """Base64 of ≥ 32 bytes: MACs the audit chain, so only the service can extend it."""
    challenge_key: SecretStr | None = None
    """Base64 of ≥ 32 bytes: signs liveness challenges."""
    keys_file: str | None = None
    """Development only: where generated keys are kept (default: next to the SQLite file)."""
    session_ttl_s: int = Field(default=300, ge=30, le=3600)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    log_level: str = "INFO"
    stored_faces_warning: int = Field(default=100_000, ge=1)
    """Bound templates (all tenants) at which the operator is warned: 100,000 stored faces is
    the regulator's filing threshold for face-recognition operators."""
    review_candidate_ttl_days: int = Field(default=30, ge=1, le=3650)
    """How long the captured face of a *pending* enrolment review is kept: the retention sweep
    clears older ones (the review can still be closed, but approving it binds nothing)."""
    public_url: str | None = None
    """The origin borrowers reach the service at (``https://verify.example.com``), used to
    build ``capture_url``; default: the origin of the lender's request."""
    embedder: str | None = None
    """The face network to embed with (issue 14): default the shipped ``standard`` profile's
    (MobileFaceNet); a lender's own network names a ``SHIREN_MODEL_MANIFEST`` entry (added with
    ``shiren models add``).  Subjects enrolled with another network keep working."""
    model_manifest: str | None = None
    """A model manifest (JSON) adding networks by path, written by ``shiren models add``."""
    match_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    """The pass threshold of ``embedder`` when shiren ships none for it (its calibration
    report, ``shiren models add``, proposes one); overrides the shipped one otherwise."""
    second_factor_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    """The lower bound of the grey zone that asks for a non-face factor (optional)."""
    speech_recogniser: str | None = Field(default=None, max_length=200)
    """A lender's speech recogniser for the read-the-digits challenge (issue 18):
    ``package.module:attribute``, a factory called once at start
    (:mod:`shiren.models.speech`).  None ships; without one the challenge stands on its other
    signals."""
    test_passive_only: bool = False
    """TEST ONLY (``SHIREN_TEST_PASSIVE_ONLY=1``): every liveness level requires only the
    passive (MiniFASNet) signal, so a pre-recorded video can drive the capture page end to end
    in a real browser.  It stops no replay or injected video; production refuses to start with
    it (see :func:`check_production`)."""
    # -- connectors (issue 6; wired by shiren.service.connectors) --------------------------
    connectors: Literal["sandbox", "http"] = "sandbox"
    """``sandbox`` (development and tests only: production refuses to start with it) or
    ``http`` (the provider below)."""
    provider_url: str | None = None
    """Base URL of the provider (``https://`` in production)."""
    provider_key_id: str | None = None
    provider_secret: SecretStr | None = None
    """Shared HMAC secret with the provider (≥ 32 bytes): signs requests and answers."""
    provider_timeout_s: float = Field(default=3.0, gt=0, le=30)
    provider_max_attempts: int = Field(default=3, ge=1, le=10)
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    """Consecutive provider failures that open the circuit."""
    breaker_reset_s: float = Field(default=30.0, gt=0, le=3600)
    """How long an open circuit fails fast before one probe call is let through."""


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment (and ``overrides``), or a typed
    :class:`~shiren.errors.ConfigError` naming the bad variables — never their values."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        names = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise ConfigError(
            f"invalid settings: {', '.join(names)}",
            code=ErrorCode.CONFIG_INVALID,
            detail={"fields": names},
        ) from None
    check_production(settings)
    return settings


def check_production(settings: Settings) -> None:
    """Refuse test-only settings in production (``config.invalid``): a weakened liveness check
    must never reach borrowers by a forgotten environment variable."""
    if settings.env == "production" and settings.test_passive_only:
        raise ConfigError(
            "SHIREN_TEST_PASSIVE_ONLY is a test configuration; production refuses it",
            code=ErrorCode.CONFIG_INVALID,
            detail={"fields": ["test_passive_only"]},
        )


__all__ = ["DEFAULT_MAX_BODY_BYTES", "Settings", "check_production", "load_settings"]

"""Key wiring: the master key ring, the audit key and the challenge key, from the settings.

Why this is its own module: what a missing key means depends on where the service runs.  In
development a missing key is generated and *persisted* (a file next to the SQLite database, mode
0600) so that data written yesterday still decrypts today, with a loud warning that these keys are
not fit for production.  In production a missing or weak key refuses to start
(``config.invalid``): silently generating one would make every stored template unreadable at the
next restart, and a weak key protects nothing.

Rotation (``shiren keys rotate``) changes ``SHIREN_MASTER_KEY_ID``, but ID-number pseudonyms must
never change, so they derive from ``SHIREN_PSEUDONYM_KEY_ID`` (default: the master key id) and
that key must stay in the ring — current or retired — for good; a ring without it is refused at
start rather than at the first enrolment.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from shiren.errors import ConfigError, ErrorCode
from shiren.privacy import KeyRing, MasterKey, PseudonymKey
from shiren.service.settings import Settings

log = logging.getLogger("shiren.service.keys")

KEY_BYTES = 32
MIN_DISTINCT_BYTES = 12
"""32 random bytes have ~25 distinct values on average; fewer than 12 means a hand-made key
(``"0000…"``, a repeated word) that an attacker would try first."""


@dataclass(frozen=True, slots=True, repr=False)
class ServiceKeys:
    """The keys the service runs with.  ``repr`` never shows key material."""

    ring: KeyRing
    audit_key: bytes
    challenge_key: bytes
    pseudonym_root_id: str
    """The master key id pseudonyms derive from: fixed, so rotation does not change them."""
    generated: bool = False

    def pseudonym_key(self, tenant_id: str) -> PseudonymKey:
        return PseudonymKey.from_ring(self.ring, tenant_id, root_key_id=self.pseudonym_root_id)

    def __repr__(self) -> str:
        return f"ServiceKeys(ring={self.ring!r}, generated={self.generated})"

    @classmethod
    def generate(cls) -> ServiceKeys:
        """Fresh random keys (tests, throwaway runs)."""
        return cls(
            ring=KeyRing(MasterKey.generate("m1")),
            audit_key=secrets.token_bytes(KEY_BYTES),
            challenge_key=secrets.token_bytes(KEY_BYTES),
            pseudonym_root_id="m1",
            generated=True,
        )


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(
        f"SHIREN_{name.upper()} {why}", code=ErrorCode.CONFIG_INVALID, detail={"key": name}
    )


def decode_key(name: str, text: str, *, exact: bool) -> bytes:
    """Base64 (standard or URL-safe) of a strong key, or a typed error naming the variable."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(name, "is not valid base64") from None
    if (exact and len(raw) != KEY_BYTES) or len(raw) < KEY_BYTES:
        raise _bad(name, f"must decode to {'exactly' if exact else 'at least'} {KEY_BYTES} bytes")
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        raise _bad(name, "is too weak (not random): generate it with a CSPRNG")
    return raw


def default_keys_file(settings: Settings) -> Path:
    """``<db>.keys.json`` next to a SQLite file, else ``./shiren.keys.json``."""
    if settings.keys_file:
        return Path(settings.keys_file)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".keys.json")
    return Path("shiren.keys.json")


def _load_or_create_dev_file(path: Path) -> dict[str, str]:
    if path.exists():
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            raise ConfigError(
                f"cannot read the development key file {path}", code=ErrorCode.CONFIG_INVALID
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not a key file", code=ErrorCode.CONFIG_INVALID)
        return {str(k): str(v) for k, v in data.items()}
    data = {
        name: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
        for name in ("master_key", "audit_key", "challenge_key")
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return data


def _retired(settings: Settings) -> list[MasterKey]:
    if settings.retired_master_keys is None:
        return []
    out = []
    for item in settings.retired_master_keys.get_secret_value().split(","):
        key_id, sep, text = item.strip().partition(":")
        if not sep:
            raise _bad("retired_master_keys", "must be 'id:base64,…'")
        out.append(MasterKey(key_id, decode_key("retired_master_keys", text, exact=True)))
    return out


def resolve_keys(settings: Settings) -> ServiceKeys:
    """The service's keys from ``settings`` (see the module docstring for the rules)."""
    given: dict[str, SecretStr | None] = {
        "master_key": settings.master_key,
        "audit_key": settings.audit_key,
        "challenge_key": settings.challenge_key,
    }
    missing = [name for name, value in given.items() if value is None]
    texts = {name: v.get_secret_value() for name, v in given.items() if v is not None}
    generated = False
    if missing:
        if settings.env == "production":
            raise ConfigError(
                "production needs every key: missing "
                + ", ".join(f"SHIREN_{m.upper()}" for m in missing),
                code=ErrorCode.CONFIG_INVALID,
                detail={"missing": [f"SHIREN_{m.upper()}" for m in missing]},
            )
        path = default_keys_file(settings)
        stored = _load_or_create_dev_file(path)
        for name in missing:
            if name not in stored:
                raise ConfigError(f"{path} lacks {name}", code=ErrorCode.CONFIG_INVALID)
            texts[name] = stored[name]
        generated = True
        log.warning(
            "DEVELOPMENT KEYS in use (%s, from %s): NOT FOR PRODUCTION — set SHIREN_MASTER_KEY, "
            "SHIREN_AUDIT_KEY and SHIREN_CHALLENGE_KEY",
            ", ".join(missing),
            path,
        )
    master = MasterKey(
        settings.master_key_id, decode_key("master_key", texts["master_key"], exact=True)
    )
    ring = KeyRing(master, _retired(settings))
    root = settings.pseudonym_key_id or settings.master_key_id
    if root not in ring.key_ids:
        # Fail at start, not at the first enrolment: without its root key no pseudonym can be
        # computed, and a different root would silently change every pseudonym.
        raise _bad("pseudonym_key_id", "names a master key that is neither current nor retired")
    return ServiceKeys(
        ring=ring,
        audit_key=decode_key("audit_key", texts["audit_key"], exact=False),
        challenge_key=decode_key("challenge_key", texts["challenge_key"], exact=False),
        pseudonym_root_id=root,
        generated=generated,
    )


__all__ = ["ServiceKeys", "decode_key", "default_keys_file", "resolve_keys"]

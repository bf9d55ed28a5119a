"""Tenants (the lenders): creation, API-key authentication, webhook settings.

An API key is ``shk_<key id>_<secret>``, shown once at creation; only a salted hash is stored
(the key id salts it, so equal secrets never hash alike, and the hash is still computable from
the presented key for the lookup).  Each tenant gets its own data key, wrapped by the master-key
ring; the vault (:mod:`shiren.service.vault`) unwraps it when the tenant's data is touched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from shiren.domain.entities import Tenant, new_id
from shiren.errors import ErrorCode, InputError, StateError
from shiren.privacy import new_data_key
from shiren.service.context import Context
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.service.ssrf import Resolver, system_resolver
from shiren.service.validation import text
from shiren.service.webhooks import guard_url, new_secret, seal_secret
from shiren.storage.ports import UnitOfWorkFactory

API_KEY_PREFIX = "shk"
MIN_SECRET_CHARS = 16


def hash_api_key(api_key: str) -> str:
    """``sha256$<key id>$hex`` of a ``shk_<key id>_<secret>`` key ("" for anything else)."""
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


def create_tenant(
    store: UnitOfWorkFactory, keys: ServiceKeys, name: str, now: datetime
) -> tuple[Tenant, str]:
    """A new tenant (with its own wrapped data key) and its API key, shown this once.  Needs no
    models: ``shiren tenant create`` runs it against the database directly."""
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


def _auth_required() -> StateError:
    return StateError("invalid or missing API key", code=ErrorCode.AUTH_REQUIRED)


class Tenants:
    """The tenant use cases of a running service."""

    def __init__(
        self, ctx: Context, *, production: bool = False, resolver: Resolver = system_resolver
    ) -> None:
        self._ctx = ctx
        self.production = production
        """Production refuses plain-http webhook URLs (development allows http to localhost)."""
        self.resolver = resolver
        """Resolves webhook hosts for the SSRF guard (:mod:`shiren.service.ssrf`)."""

    def create(self, name: str) -> tuple[Tenant, str]:
        """A new tenant and its API key (shown this once; only its hash is stored)."""
        return create_tenant(self._ctx.store, self._ctx.vault.keys, name, self._ctx.clock())

    def authenticate(self, api_key: str) -> Tenant:
        """The active tenant owning ``api_key``; ``auth.required`` for anything else."""
        hashed = hash_api_key(api_key)
        tenant = None
        if hashed:
            with self._ctx.store() as uow:
                tenant = uow.tenants.get_by_api_key_hash(hashed)
        if tenant is None or tenant.status.value != "active":
            raise _auth_required()
        if not hmac.compare_digest(tenant.api_key_hash, hashed):  # pragma: no cover - belt
            raise _auth_required()
        return tenant

    def ids(self) -> list[str]:
        with self._ctx.store() as uow:
            return [t.id for t in uow.tenants.list_all()]

    def set_webhook(self, tenant: Tenant, url: str, secret: str | None = None) -> dict[str, str]:
        """Set the tenant's webhook URL and signing secret (generated when not given).  The
        secret is stored sealed with the tenant key and returned only when generated: the
        lender must keep it, we never show it again."""
        url = guard_url(url, production=self.production, resolver=self.resolver)
        generated = secret is None
        if secret is not None:
            text(secret, "secret", 256)
            if len(secret) < MIN_SECRET_CHARS:
                raise InputError(
                    f"secret must be at least {MIN_SECRET_CHARS} characters",
                    detail={"field": "secret"},
                )
        value = new_secret() if secret is None else secret
        now = self._ctx.clock()
        with self._ctx.store() as uow:
            current = uow.tenants.get(tenant.id)
            if current is None:
                raise _auth_required()
            sealed = seal_secret(self._ctx.vault.keys, current, value)
            uow.tenants.set_webhook(tenant.id, url=url, secret_enc=sealed)
            parts = urlsplit(url)
            payload = {
                "scheme": parts.scheme,
                "host": parts.hostname or "",
                "secret_generated": generated,
            }
            self._ctx.journal.audit(uow, tenant.id, "webhook.set", None, payload, now)
            uow.commit()
        out = {"url": url}
        if generated:
            out["secret"] = value
        return out


__all__ = ["API_KEY_PREFIX", "Tenants", "create_tenant", "hash_api_key"]

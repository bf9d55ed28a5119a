"""Sign-in for the review console: staff passwords, lock-out, signed session cookies and CSRF.

Why each choice:

* **Passwords**: ``hashlib.scrypt`` (RFC 7914; memory-hard, in the standard library) with a
  random 16-byte salt per user, n = 2^14, r = 8, p = 1 (the parameters RFC 7914 §2 and OWASP
  list for interactive logins, ~16 MiB and tens of milliseconds per check).  The parameters are
  stored with the hash, so they can be raised later without invalidating old hashes.
* **Unknown usernames** cost the same scrypt run as known ones (against a dummy hash), so the
  response time does not tell an attacker which usernames exist.
* **Lock-out**: ``max_failures`` consecutive failures lock the account for ``lockout_s``; while
  locked, the password is not even checked (guessing cannot continue).  Every failure, lock and
  sign-in is written to the tenant's audit chain — user ids, roles and reasons only, never the
  username typed or the password.  A failure for a username that does not exist has no tenant
  and so no chain: it is logged (without the name) instead.
* **Sessions** are stateless signed cookies (HMAC-SHA256 under a key derived from the service's
  challenge key): ``{user, tenant, sid, issued, seen}``.  Every request re-reads the user, so a
  disabled user, a changed role or a sign-out (``sessions_valid_after``) takes effect at once;
  ``seen`` is refreshed on each request and a cookie idle longer than ``idle_timeout_s`` (or
  older than ``max_age_s``) is refused.  Sign-out ends *all* of that user's sessions — the price
  of keeping no session table.
* **CSRF**: every form carries ``HMAC(key, "csrf:" + sid)``; the sign-in form, which has no
  session yet, carries ``HMAC(key, "login:" + nonce)`` with the nonce in its own cookie
  (double submit).  The cookies are also ``SameSite=Strict``; the token is the defence that does
  not depend on the browser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shiren.domain.console import ConsoleRole, ConsoleUser, ConsoleUserStatus
from shiren.domain.entities import Tenant, TenantStatus, new_id
from shiren.errors import ErrorCode, InputError, StateError
from shiren.storage.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("shiren.console")

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MAX_PASSWORD_CHARS = 256

AuditFn = Callable[[UnitOfWork, str, str, dict[str, Any], datetime], None]
"""``(uow, tenant_id, kind, payload, now)``: append one event to the tenant's chain."""


def hash_password(password: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$<salt b64>$<hash b64>`` of ``password`` with a fresh random salt."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; a malformed hash or an
    over-long password is simply "no")."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        params = int(n), int(r), int(p)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
        return False
    return hmac.compare_digest(_scrypt(password, salt, *params), expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2),
        dklen=HASH_BYTES,
    )


def new_password() -> str:
    """A generated password: 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class ConsolePolicy:
    """Timeouts and limits of console sign-in (seconds)."""

    idle_timeout_s: int = 15 * 60
    max_age_s: int = 12 * 3600
    max_failures: int = 5
    lockout_s: int = 15 * 60
    secure_cookies: bool = True
    """``Secure`` cookies (HTTPS only); only development over plain http turns this off."""


@dataclass(frozen=True, slots=True)
class SessionToken:
    """What the session cookie carries (signed, not encrypted: it holds ids only)."""

    user_id: str
    tenant_id: str
    sid: str
    issued_at: float
    seen_at: float


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in staff member of a request: user, tenant, session and its CSRF token."""

    user: ConsoleUser
    tenant: Tenant
    token: SessionToken
    csrf: str


class SessionCodec:
    """Signs and verifies session cookies and CSRF tokens under one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def encode(self, token: SessionToken) -> str:
        body = json.dumps(
            [token.user_id, token.tenant_id, token.sid, token.issued_at, token.seen_at],
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def decode(self, text: str) -> SessionToken | None:
        """The token, or ``None`` for anything not signed by us (or malformed)."""
        body_b64, _, mac_b64 = text.partition(".")
        try:
            body, mac = _unb64(body_b64), _unb64(mac_b64)
            if not hmac.compare_digest(mac, self._mac(body)):
                return None
            user_id, tenant_id, sid, issued, seen = json.loads(body)
            return SessionToken(str(user_id), str(tenant_id), str(sid), float(issued), float(seen))
        except (ValueError, TypeError, binascii.Error):
            return None

    def tag(self, purpose: str, value: str) -> str:
        return _b64(self._mac(f"{purpose}:{value}".encode()))[:32]

    def check(self, purpose: str, value: str, presented: str) -> bool:
        return bool(value) and hmac.compare_digest(self.tag(purpose, value), presented or "")


def _revoke_at(user: ConsoleUser, now: datetime) -> datetime:
    """The new ``sessions_valid_after``: now, but strictly after any session issued so far
    (sign-in issues at least 1 ms after the previous revocation), so revocations in the same
    clock tick — a test's frozen clock, a coarse timer — still end every earlier session."""
    floor = user.sessions_valid_after
    if floor is None:
        return now
    return max(now, floor + timedelta(milliseconds=2))


def _failed() -> StateError:
    return StateError("sign-in failed", code=ErrorCode.CONSOLE_SIGN_IN_FAILED)


def _expired() -> StateError:
    return StateError("not signed in", code=ErrorCode.CONSOLE_SESSION_EXPIRED)


class ConsoleAuth:
    """Users, sign-in, sessions and CSRF of the console over the service's storage."""

    def __init__(
        self,
        *,
        store: UnitOfWorkFactory,
        audit: AuditFn,
        session_key: bytes,
        clock: Callable[[], datetime],
        policy: ConsolePolicy,
    ) -> None:
        self.store = store
        self._audit = audit
        self.codec = SessionCodec(session_key)
        self.clock = clock
        self.policy = policy
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))

    # -- users ---------------------------------------------------------------------------

    def create_user(self, tenant_id: str, username: str, role: str) -> tuple[ConsoleUser, str]:
        """A new user of ``tenant_id`` and its generated password (shown once, stored hashed)."""
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise InputError(
                "username must be 2-64 of a-z 0-9 . _ - (starting with a letter or digit)",
                detail={"field": "username"},
            )
        try:
            wanted = ConsoleRole(role)
        except ValueError:
            raise InputError(
                "unknown role", detail={"field": "role", "allowed": [r.value for r in ConsoleRole]}
            ) from None
        password = new_password()
        now = self.clock()
        user = ConsoleUser(new_id(), tenant_id, name, wanted, hash_password(password), now)
        with self.store() as uow:
            if uow.tenants.get(tenant_id) is None:
                raise StateError("tenant not found", code=ErrorCode.RECORD_NOT_FOUND)
            uow.console_users.add(user)
            self._audit(
                uow, tenant_id, "console.user_created", {"user_id": user.id, "role": role}, now
            )
            uow.commit()
        return user, password

    def change_user(
        self, tenant_id: str, user_id: str, action: str, *, by: str, role: str = ""
    ) -> tuple[ConsoleUser, str | None]:
        """An admin's change to a user: ``disable`` / ``enable`` / ``reset`` (a new generated
        password, returned once) / ``role``.  Disabling, a reset and a role change end the
        user's sessions.  Audited as ``console.user_changed`` (ids, action, role only)."""
        now = self.clock()
        password: str | None = None
        with self.store() as uow:
            current = uow.console_users.get(tenant_id, user_id)
        if current is None:
            raise StateError("console user not found", code=ErrorCode.RECORD_NOT_FOUND)
        changes: dict[str, Any] = {"sessions_valid_after": _revoke_at(current, now)}
        if action == "disable":
            changes["status"] = ConsoleUserStatus.DISABLED
        elif action == "enable":
            changes = {"status": ConsoleUserStatus.ACTIVE}
        elif action == "reset":
            password = new_password()
            changes["password_hash"] = hash_password(password)
        elif action == "role":
            try:
                changes["role"] = ConsoleRole(role)
            except ValueError:
                raise InputError("unknown role", detail={"field": "role"}) from None
        else:
            raise InputError("unknown action", detail={"field": "action"})
        with self.store() as uow:
            user = uow.console_users.update(tenant_id, user_id, **changes)
            payload = {"user_id": user_id, "by_user_id": by, "action": action}
            if action == "role":
                payload["role"] = user.role.value
            self._audit(uow, tenant_id, "console.user_changed", payload, now)
            uow.commit()
        return user, password

    # -- sign-in ---------------------------------------------------------------------------

    def sign_in(self, username: str, password: str) -> tuple[Principal, str]:
        """Check the password (with lock-out); the principal and its session cookie."""
        now = self.clock()
        name = username.strip().lower()[:64]
        with self.store() as uow:
            user = uow.console_users.get_by_username(name) if name else None
            tenant = uow.tenants.get(user.tenant_id) if user is not None else None
        if user is None or tenant is None:
            verify_password(password, self._dummy_hash)  # same cost as a real check
            log.info("console sign-in failed: unknown user")
            raise _failed()
        if user.locked_until is not None and user.locked_until > now:
            self._note_failure(user, "locked", now)
            raise StateError(
                "account locked",
                code=ErrorCode.CONSOLE_LOCKED,
                detail={"retry_after_s": int((user.locked_until - now).total_seconds()) + 1},
            )
        ok = verify_password(password, user.password_hash)
        active = user.status is ConsoleUserStatus.ACTIVE and tenant.status is TenantStatus.ACTIVE
        if not ok or not active:
            self._fail(user, now, "bad_password" if not ok else "disabled")
        return self._open_session(user, tenant, now)

    def _note_failure(self, user: ConsoleUser, reason: str, now: datetime) -> None:
        with self.store() as uow:
            payload = {"user_id": user.id, "reason": reason}
            self._audit(uow, user.tenant_id, "console.sign_in_failed", payload, now)
            uow.commit()

    def _fail(self, user: ConsoleUser, now: datetime, reason: str) -> None:
        with self.store() as uow:
            after = uow.console_users.record_failure(
                user.tenant_id,
                user.id,
                at=now,
                max_failures=self.policy.max_failures,
                lock_for=timedelta(seconds=self.policy.lockout_s),
            )
            locked = after.locked_until is not None and after.locked_until > now
            payload: dict[str, Any] = {"user_id": user.id, "reason": reason}
            self._audit(uow, user.tenant_id, "console.sign_in_failed", payload, now)
            if locked and after.locked_until != user.locked_until:
                until = {"user_id": user.id, "locked_for_s": self.policy.lockout_s}
                self._audit(uow, user.tenant_id, "console.locked", until, now)
            uow.commit()
        if locked:
            raise StateError(
                "account locked",
                code=ErrorCode.CONSOLE_LOCKED,
                detail={"retry_after_s": self.policy.lockout_s},
            )
        raise _failed()

    def _open_session(
        self, user: ConsoleUser, tenant: Tenant, now: datetime
    ) -> tuple[Principal, str]:
        issued = now.timestamp()
        if user.sessions_valid_after is not None:  # signed out in this very instant
            issued = max(issued, user.sessions_valid_after.timestamp() + 0.001)
        with self.store() as uow:
            user = uow.console_users.record_success(user.tenant_id, user.id, now)
            payload = {"user_id": user.id, "role": user.role.value}
            self._audit(uow, user.tenant_id, "console.signed_in", payload, now)
            uow.commit()
        token = SessionToken(user.id, tenant.id, secrets.token_hex(16), issued, now.timestamp())
        return self._principal(user, tenant, token), self.codec.encode(token)

    def _principal(self, user: ConsoleUser, tenant: Tenant, token: SessionToken) -> Principal:
        return Principal(user, tenant, token, self.codec.tag("csrf", token.sid))

    # -- sessions --------------------------------------------------------------------------

    def resume(self, cookie: str | None) -> tuple[Principal, str]:
        """The principal of a session cookie and the refreshed cookie (idle timer restarted);
        ``console.session_expired`` for a missing, forged, idle, too old or revoked session."""
        token = self.codec.decode(cookie) if cookie else None
        if token is None:
            raise _expired()
        now = self.clock().timestamp()
        p = self.policy
        if now - token.seen_at > p.idle_timeout_s or now - token.issued_at > p.max_age_s:
            raise _expired()
        with self.store() as uow:
            user = uow.console_users.get(token.tenant_id, token.user_id)
            tenant = uow.tenants.get(token.tenant_id)
        if user is None or tenant is None or tenant.status is not TenantStatus.ACTIVE:
            raise _expired()
        revoked = user.sessions_valid_after
        if user.status is not ConsoleUserStatus.ACTIVE or (
            revoked is not None and token.issued_at <= revoked.timestamp()
        ):
            raise _expired()
        token = replace(token, seen_at=now)
        return self._principal(user, tenant, token), self.codec.encode(token)

    def sign_out(self, principal: Principal) -> None:
        """End every session of the user (see the module docstring), audited."""
        now = self.clock()
        with self.store() as uow:
            uow.console_users.update(
                principal.tenant.id,
                principal.user.id,
                sessions_valid_after=_revoke_at(principal.user, now),
            )
            payload = {"user_id": principal.user.id}
            self._audit(uow, principal.tenant.id, "console.signed_out", payload, now)
            uow.commit()

    # -- CSRF ------------------------------------------------------------------------------

    def check_csrf(self, principal: Principal, presented: str) -> None:
        if not self.codec.check("csrf", principal.token.sid, presented):
            raise StateError("CSRF token missing or wrong", code=ErrorCode.CONSOLE_CSRF_FAILED)

    def login_nonce(self) -> tuple[str, str]:
        """``(cookie value, form token)`` for the sign-in form."""
        nonce = secrets.token_hex(16)
        return nonce, self.codec.tag("login", nonce)

    def check_login_csrf(self, nonce: str | None, presented: str) -> None:
        if not self.codec.check("login", nonce or "", presented):
            raise StateError("CSRF token missing or wrong", code=ErrorCode.CONSOLE_CSRF_FAILED)


__all__ = [
    "ConsoleAuth",
    "ConsolePolicy",
    "Principal",
    "SessionCodec",
    "SessionToken",
    "hash_password",
    "new_password",
    "verify_password",
]

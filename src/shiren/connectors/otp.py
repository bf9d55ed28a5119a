"""One-time codes: made here, delivered by an :class:`~shiren.connectors.types.SmsGateway`,
checked here.  Pure functions over an :class:`OtpState`; the caller stores the state.

The code itself is never stored: only ``HMAC-SHA256(key, "{scope}:{code}")`` (the key is a
server secret, so a database dump cannot be brute-forced offline over the 10^6 codes), with
an expiry (``ttl_s``), a count of wrong tries (``max_attempts``, then the code is dead) and a
resend cool-down (``resend_cooldown_s``) plus a cap on sends per scope (``max_sends``), so the
endpoint can be used neither to guess codes nor to flood a phone.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shiren.errors import ErrorCode, StateError


@dataclass(frozen=True, slots=True)
class OtpRules:
    digits: int = 6
    ttl_s: int = 300
    max_attempts: int = 5
    resend_cooldown_s: int = 60
    max_sends: int = 3


@dataclass(frozen=True, slots=True)
class OtpState:
    code_hash: str | None = None
    expires_at: datetime | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    sends: int = 0


class OtpCheck(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"


def code_hash(key: bytes, scope: str, code: str) -> str:
    return hmac.new(key, f"{scope}:{code}".encode(), hashlib.sha256).hexdigest()


def _draw(digits: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def issue(
    state: OtpState,
    *,
    key: bytes,
    scope: str,
    now: datetime,
    rules: OtpRules,
    draw: Callable[[int], str] = _draw,
) -> tuple[str, OtpState]:
    """A fresh code and the state to store (the code goes to the gateway, never to storage).
    ``otp.resend_too_soon`` inside the cool-down or after ``max_sends`` sends."""
    if state.sends >= rules.max_sends:
        raise StateError(
            "no more codes can be sent for this verification",
            code=ErrorCode.OTP_RESEND_TOO_SOON,
            detail={"max_sends": rules.max_sends},
        )
    if state.sent_at is not None:
        wait = (state.sent_at + timedelta(seconds=rules.resend_cooldown_s) - now).total_seconds()
        if wait > 0:
            raise StateError(
                "a code was sent a moment ago",
                code=ErrorCode.OTP_RESEND_TOO_SOON,
                detail={"retry_after_s": math.ceil(wait)},
            )
    code = draw(rules.digits)
    return code, OtpState(
        code_hash=code_hash(key, scope, code),
        expires_at=now + timedelta(seconds=rules.ttl_s),
        sent_at=now,
        attempts=0,
        sends=state.sends + 1,
    )


def check(
    state: OtpState, code: str, *, key: bytes, scope: str, now: datetime, rules: OtpRules
) -> tuple[OtpCheck, OtpState]:
    """Compare ``code`` in constant time.  A wrong code counts a try; a verified code is
    consumed (a second verification needs a new code).  ``otp.not_sent``, ``otp.expired`` and
    ``otp.attempts_exceeded`` are errors: no verdict on the code was made."""
    if state.code_hash is None or state.expires_at is None:
        raise StateError("no code was sent", code=ErrorCode.OTP_NOT_SENT)
    if state.attempts >= rules.max_attempts:
        raise StateError("too many wrong codes", code=ErrorCode.OTP_ATTEMPTS_EXCEEDED)
    if now > state.expires_at:
        raise StateError("the code has expired", code=ErrorCode.OTP_EXPIRED)
    given = code.strip()
    ok = given.isascii() and hmac.compare_digest(state.code_hash, code_hash(key, scope, given))
    if ok:
        return OtpCheck.VERIFIED, replace(state, code_hash=None, expires_at=None)
    return OtpCheck.WRONG, replace(state, attempts=state.attempts + 1)


def attempts_left(state: OtpState, rules: OtpRules) -> int:
    return max(0, rules.max_attempts - state.attempts)


__all__ = ["OtpCheck", "OtpRules", "OtpState", "attempts_left", "check", "code_hash", "issue"]

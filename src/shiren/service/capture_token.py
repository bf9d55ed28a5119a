"""Capture tokens: how a borrower's phone reaches one capture session without the lender's key.

The lender gets a ``capture_url`` with every session it opens and sends it to the borrower (SMS,
in-app web view).  The token in it is the only credential the capture page has, so it must be
unguessable, unforgeable, bound to exactly one session and short-lived:

``c1.<base64url(JSON {"t": tenant id, "s": session id, "e": expiry unix seconds})>.<mac>``

A token for a *card capture* (enrolment that starts with the ID card on the phone,
:mod:`shiren.domain.card_capture`) also carries ``"k": "card"``, and ``s`` is the card capture's
id; it is signed the same way, so neither kind can be turned into the other.

``mac`` is HMAC-SHA256 over ``c1.<payload>`` with a key *derived* from the challenge key (so a
capture token can never be confused with a challenge signature, and no new secret has to be
deployed), truncated to 128 bits, base64url.  The expiry is the session's own expiry: a link
outlives nothing it opens.  Verification is constant-time and returns a typed error with a
stable code — ``capture.token_invalid`` for anything malformed or forged, and
``capture.token_expired`` for a genuine token past its time — never an exception that would be
a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from shiren.errors import ErrorCode, StateError

PREFIX = "c1"
MAX_TOKEN_CHARS = 400
_MAC_BYTES = 16
_DERIVE_LABEL = b"shiren/capture-token/v1"
KINDS = ("session", "card")


@dataclass(frozen=True, slots=True)
class CaptureClaim:
    """What a valid token proves: this tenant's session, until ``expires_at``."""

    tenant_id: str
    session_id: str
    expires_at: datetime
    kind: str = "session"
    """``session`` (a capture session) or ``card`` (``session_id`` is a card capture's id)."""


def derive_key(challenge_key: bytes) -> bytes:
    """The token key: HMAC(challenge key, label) — one-way, so a leaked token key reveals
    nothing about the challenge key."""
    return hmac.new(challenge_key, _DERIVE_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed_part: str) -> str:
    digest = hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def issue(
    challenge_key: bytes,
    tenant_id: str,
    session_id: str,
    expires_at: datetime,
    *,
    kind: str = "session",
) -> str:
    """A token for one session (or card capture), valid until it expires."""
    claims: dict[str, object] = {"t": tenant_id, "s": session_id, "e": int(expires_at.timestamp())}
    if kind != "session":
        claims["k"] = kind
    payload = json.dumps(
        claims,
        separators=(",", ":"),
        sort_keys=True,
    )
    signed_part = f"{PREFIX}.{_b64(payload.encode('utf-8'))}"
    return f"{signed_part}.{_mac(derive_key(challenge_key), signed_part)}"


def _invalid(why: str) -> StateError:
    return StateError(
        f"capture link is not valid ({why})",
        code=ErrorCode.CAPTURE_TOKEN_INVALID,
    )


def verify(challenge_key: bytes, token: str, now: datetime) -> CaptureClaim:
    """The claim of a genuine, unexpired token, or a typed error (see the module docstring)."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _invalid("malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise _invalid("malformed")
    signed_part = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(derive_key(challenge_key), signed_part), parts[2]):
        raise _invalid("signature")
    try:
        raw = json.loads(_unb64(parts[1]))
        claim = CaptureClaim(
            tenant_id=str(raw["t"]),
            session_id=str(raw["s"]),
            expires_at=datetime.fromtimestamp(int(raw["e"]), tz=UTC),
            kind=str(raw.get("k", "session")),
        )
    except (ValueError, KeyError, TypeError, OverflowError, AttributeError, binascii.Error):
        raise _invalid("payload") from None
    if claim.kind not in KINDS:
        raise _invalid("payload")
    if now >= claim.expires_at:
        raise StateError("capture link has expired", code=ErrorCode.CAPTURE_TOKEN_EXPIRED)
    return claim


__all__ = ["MAX_TOKEN_CHARS", "CaptureClaim", "derive_key", "issue", "verify"]

"""SANDBOX connectors — for development and tests only; production settings refuse them.

They call nobody.  Answers are deterministic, chosen by documented *magic values* so that every
path (match, each kind of mismatch, unknown, provider down, timeout) can be driven on purpose;
every other valid input matches.  Each answer says ``sandbox=True`` and the API shows it.

SMS (by phone number)::

    13800000500  connector.unavailable      13800000408  connector.timeout
    13800000400  input.connector_rejected   anything else: "delivered" (kept in ``outbox``)

Bank card (by the four digits before the card's check digit, ``card[-5:-1]``)::

    0001  mismatch: name          0002  mismatch: id_number     0003  mismatch: phone
    0004  mismatch: name + id_number (a card in someone else's name)
    0009  unknown                 0500  connector.unavailable   0408  connector.timeout

Authority (by the ID number's order code, digits 15-17)::

    998  mismatch   999  not_found   995  match, but the photo does not match
    996  connector.unavailable

Like a real provider, the same idempotency key returns the same answer (and "sends" one SMS),
and the same key with a different request is refused.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

from shiren.connectors.errors import timeout, unavailable
from shiren.connectors.types import (
    AuthorityOutcome,
    AuthorityQuery,
    AuthorityResult,
    CardOutcome,
    CardQuery,
    CardResult,
    Connectors,
    SmsReceipt,
)
from shiren.errors import ErrorCode, InputError

SMS_UNAVAILABLE = "13800000500"
SMS_TIMEOUT = "13800000408"
SMS_REJECTED = "13800000400"
CARD_MAGIC: dict[str, tuple[CardOutcome, tuple[str, ...]] | str] = {
    "0001": (CardOutcome.MISMATCH, ("name",)),
    "0002": (CardOutcome.MISMATCH, ("id_number",)),
    "0003": (CardOutcome.MISMATCH, ("phone",)),
    "0004": (CardOutcome.MISMATCH, ("name", "id_number")),
    "0009": (CardOutcome.UNKNOWN, ()),
    "0500": "unavailable",
    "0408": "timeout",
}
AUTHORITY_MISMATCH = "998"
AUTHORITY_NOT_FOUND = "999"
AUTHORITY_PHOTO_MISMATCH = "995"
AUTHORITY_UNAVAILABLE = "996"


class _Idempotent:
    """Same key → same answer; same key with another request → refused (the real contract)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, Any]] = {}

    def get(self, key: str, fingerprint: str) -> Any:
        with self._lock:
            hit = self._seen.get(key)
        if hit is None:
            return None
        if hit[0] != fingerprint:
            raise InputError(
                f"{self.name}: idempotency key reused with another request",
                code=ErrorCode.CONNECTOR_REJECTED,
                detail={"provider": self.name, "status": 409},
            )
        return hit[1]

    def put(self, key: str, fingerprint: str, answer: Any) -> None:
        with self._lock:
            self._seen.setdefault(key, (fingerprint, answer))


def _fingerprint(*parts: str | bytes | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(b"\x00" if p is None else (p.encode() if isinstance(p, str) else p))
        h.update(b"\x1f")
    return h.hexdigest()


class SandboxSms:
    """SANDBOX: "delivers" by keeping the last code per phone in ``outbox`` (tests and a
    developer read it there, or in the API's ``sandbox_code``)."""

    sandbox = True
    name = "sandbox-sms"

    def __init__(self) -> None:
        self.outbox: dict[str, str] = {}
        self.deliveries = 0
        self._idem = _Idempotent(self.name)

    def send_code(self, phone: str, code: str, *, idempotency_key: str) -> SmsReceipt:
        fp = _fingerprint(phone, code)
        cached = self._idem.get(idempotency_key, fp)
        if cached is not None:
            return SmsReceipt(str(cached), sandbox=True)
        if phone == SMS_UNAVAILABLE:
            raise unavailable(self.name, "sandbox magic number")
        if phone == SMS_TIMEOUT:
            raise timeout(self.name)
        if phone == SMS_REJECTED:
            raise InputError(
                "sandbox-sms refused the number",
                code=ErrorCode.CONNECTOR_REJECTED,
                detail={"provider": self.name, "status": 400},
            )
        self.outbox[phone] = code
        self.deliveries += 1
        ref = "sbx_" + secrets.token_hex(8)
        self._idem.put(idempotency_key, fp, ref)
        return SmsReceipt(ref, sandbox=True)


class SandboxBankCard:
    """SANDBOX 4-element check: see the module docstring for the magic card numbers."""

    sandbox = True
    name = "sandbox-bank-card"

    def __init__(self) -> None:
        self.calls = 0
        self._idem = _Idempotent(self.name)

    def verify(self, query: CardQuery, *, idempotency_key: str) -> CardResult:
        fp = _fingerprint(query.name, query.id_number, query.card_number, query.phone)
        cached = self._idem.get(idempotency_key, fp)
        if isinstance(cached, CardResult):
            return cached
        magic = CARD_MAGIC.get(query.card_number[-5:-1])
        if magic == "unavailable":
            raise unavailable(self.name, "sandbox magic card")
        if magic == "timeout":
            raise timeout(self.name)
        self.calls += 1
        outcome, mismatched = magic if isinstance(magic, tuple) else (CardOutcome.MATCH, ())
        result = CardResult(outcome, mismatched, "sbx_" + secrets.token_hex(8), sandbox=True)
        self._idem.put(idempotency_key, fp, result)
        return result


class SandboxAuthority:
    """SANDBOX authority check: see the module docstring for the magic ID numbers.  It cannot
    compare photos: with a photo it answers ``photo_match=True`` unless the magic says no."""

    sandbox = True
    name = "sandbox-authority"

    def __init__(self) -> None:
        self.calls = 0
        self._idem = _Idempotent(self.name)

    def verify(self, query: AuthorityQuery, *, idempotency_key: str) -> AuthorityResult:
        fp = _fingerprint(query.name, query.id_number, query.photo)
        cached = self._idem.get(idempotency_key, fp)
        if isinstance(cached, AuthorityResult):
            return cached
        order = query.id_number[14:17]
        if order == AUTHORITY_UNAVAILABLE:
            raise unavailable(self.name, "sandbox magic ID number")
        self.calls += 1
        outcome = {
            AUTHORITY_MISMATCH: AuthorityOutcome.MISMATCH,
            AUTHORITY_NOT_FOUND: AuthorityOutcome.NOT_FOUND,
        }.get(order, AuthorityOutcome.MATCH)
        photo: bool | None = None
        if query.photo is not None and outcome is AuthorityOutcome.MATCH:
            photo = order != AUTHORITY_PHOTO_MISMATCH
        result = AuthorityResult(outcome, photo, "sbx_" + secrets.token_hex(8), sandbox=True)
        self._idem.put(idempotency_key, fp, result)
        return result


def sandbox_connectors() -> Connectors:
    """All three SANDBOX connectors (development and tests only)."""
    return Connectors(SandboxSms(), SandboxBankCard(), SandboxAuthority())


__all__ = [
    "AUTHORITY_MISMATCH",
    "AUTHORITY_NOT_FOUND",
    "AUTHORITY_PHOTO_MISMATCH",
    "AUTHORITY_UNAVAILABLE",
    "CARD_MAGIC",
    "SMS_REJECTED",
    "SMS_TIMEOUT",
    "SMS_UNAVAILABLE",
    "SandboxAuthority",
    "SandboxBankCard",
    "SandboxSms",
    "sandbox_connectors",
]

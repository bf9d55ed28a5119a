"""What the service may ask of outside providers: three Protocols and their typed answers.

* :class:`SmsGateway` delivers a one-time code by text message.  The code is made, hashed and
  checked by :mod:`shiren.connectors.otp`, never by the provider: the provider only carries it.
* :class:`BankCardVerifier` runs the bank-card 4-element check (name, ID number, card number,
  phone): the card's bank says per element whether it matches what it holds for that card.
* :class:`AuthorityVerifier` asks the identity authority whether a name and ID number belong
  together (optionally with the photo): match, mismatch, or no such record.

Every call takes an ``idempotency_key``: the same key must produce the provider's same answer
(and no second SMS), so a retry after a timeout can never double-charge or double-send.

Inputs are validated here, before any provider sees them (``input.phone_invalid``,
``input.card_number_invalid``); an answer never contains the values sent, only verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shiren.errors import ErrorCode, InputError

CARD_MIN_DIGITS = 12
CARD_MAX_DIGITS = 19
ELEMENTS = ("name", "id_number", "card_number", "phone")
"""The four elements of the bank-card check, in the order providers report them."""


class CardOutcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"
    """The bank could not say (card not covered, bank offline on its side): not a match."""


class AuthorityOutcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    provider_ref: str
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class CardQuery:
    """The four elements.  ``repr`` masks them: a query must never reach a log in clear."""

    name: str
    id_number: str
    card_number: str
    phone: str

    def __repr__(self) -> str:
        return (
            f"CardQuery(name={mask_name(self.name)!r}, card={mask_card(self.card_number)!r}, "
            f"phone={mask_phone(self.phone)!r})"
        )


@dataclass(frozen=True, slots=True)
class CardResult:
    outcome: CardOutcome
    mismatched: tuple[str, ...] = ()
    """For ``mismatch``: which of :data:`ELEMENTS` did not match (never the values)."""
    provider_ref: str = ""
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class AuthorityQuery:
    name: str
    id_number: str
    photo: bytes | None = None

    def __repr__(self) -> str:
        return f"AuthorityQuery(name={mask_name(self.name)!r}, photo={self.photo is not None})"


@dataclass(frozen=True, slots=True)
class AuthorityResult:
    outcome: AuthorityOutcome
    photo_match: bool | None = None
    """With a photo: whether the authority's photo matches it (``None`` without a photo)."""
    provider_ref: str = ""
    sandbox: bool = False


class SmsGateway(Protocol):
    sandbox: bool

    def send_code(self, phone: str, code: str, *, idempotency_key: str) -> SmsReceipt:
        """Deliver ``code`` to ``phone`` (once per key, whatever the number of calls)."""
        ...


class BankCardVerifier(Protocol):
    sandbox: bool

    def verify(self, query: CardQuery, *, idempotency_key: str) -> CardResult: ...


class AuthorityVerifier(Protocol):
    sandbox: bool

    def verify(self, query: AuthorityQuery, *, idempotency_key: str) -> AuthorityResult: ...


@dataclass(frozen=True, slots=True)
class Connectors:
    """The three connectors the service is wired with."""

    sms: SmsGateway
    bank_card: BankCardVerifier
    authority: AuthorityVerifier

    @property
    def sandbox(self) -> bool:
        return self.sms.sandbox or self.bank_card.sandbox or self.authority.sandbox


# -- validation and masking ----------------------------------------------------------------


def normalise_phone(phone: str) -> str:
    """An 11-digit mainland mobile number (``1[3-9]…``), with an optional ``+86``/``86``
    prefix and spaces or dashes removed; ``input.phone_invalid`` otherwise."""
    digits = "".join(c for c in phone if c not in " -")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if (
        len(digits) != 11
        or not digits.isascii()
        or not digits.isdigit()
        or digits[0] != "1"
        or digits[1] not in "3456789"
    ):
        raise InputError(
            "phone must be an 11-digit mainland mobile number",
            code=ErrorCode.PHONE_INVALID,
            detail={"field": "phone"},
        )
    return digits


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def normalise_card(card: str) -> str:
    """12-19 digits passing the Luhn check (spaces and dashes removed);
    ``input.card_number_invalid`` otherwise."""
    digits = "".join(c for c in card if c not in " -")
    if (
        not CARD_MIN_DIGITS <= len(digits) <= CARD_MAX_DIGITS
        or not digits.isascii()
        or not digits.isdigit()
        or not luhn_ok(digits)
    ):
        raise InputError(
            "card number must be 12-19 digits with a valid check digit",
            code=ErrorCode.CARD_NUMBER_INVALID,
            detail={"field": "card_number"},
        )
    return digits


def mask_card(card: str) -> str:
    """``**** 1234``: only the last four digits."""
    return "**** " + card[-4:]


def mask_phone(phone: str) -> str:
    """``138****0001``."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_name(name: str) -> str:
    """``张*`` / ``张**``: the first character only."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def with_luhn(prefix: str) -> str:
    """``prefix`` plus the Luhn check digit (test and sandbox card numbers)."""
    for d in "0123456789":
        if luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError("unreachable: one check digit always fits")  # pragma: no cover


__all__ = [
    "ELEMENTS",
    "AuthorityOutcome",
    "AuthorityQuery",
    "AuthorityResult",
    "AuthorityVerifier",
    "BankCardVerifier",
    "CardOutcome",
    "CardQuery",
    "CardResult",
    "Connectors",
    "SmsGateway",
    "SmsReceipt",
    "luhn_ok",
    "mask_card",
    "mask_name",
    "mask_phone",
    "normalise_card",
    "normalise_phone",
    "with_luhn",
]

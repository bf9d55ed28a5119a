"""HTTP adapters for real providers, over :class:`~shiren.connectors.http.ProviderClient`.

Paths and JSON shapes (the provider contract; signing, retries and idempotency are in
:mod:`shiren.connectors.http`)::

    POST /v1/sms/send          {"phone", "code"}                       → {"ref"}
    POST /v1/bankcard/verify   {"name", "id_number", "card_number", "phone"}
                               → {"ref", "result": "match|mismatch|unknown", "mismatched": [...]}
    POST /v1/authority/verify  {"name", "id_number", "photo": base64 | null}
                               → {"ref", "result": "match|mismatch|not_found",
                                  "photo_match": true | false | null}

An answer outside these shapes is ``connector.bad_response``.  A lender whose provider speaks
another dialect puts a small translating proxy in front of it, or writes one adapter class.
"""

from __future__ import annotations

import base64
from typing import Any

from shiren.connectors.errors import bad_response
from shiren.connectors.http import ProviderClient
from shiren.connectors.types import (
    ELEMENTS,
    AuthorityOutcome,
    AuthorityQuery,
    AuthorityResult,
    CardOutcome,
    CardQuery,
    CardResult,
    SmsReceipt,
)

SMS_PATH = "/v1/sms/send"
BANK_CARD_PATH = "/v1/bankcard/verify"
AUTHORITY_PATH = "/v1/authority/verify"


def _ref(client: ProviderClient, answer: dict[str, Any]) -> str:
    ref = answer.get("ref")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 128:
        raise bad_response(client.settings.name, "no ref")
    return ref


class HttpSms:
    sandbox = False

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    def send_code(self, phone: str, code: str, *, idempotency_key: str) -> SmsReceipt:
        answer = self.client.post(
            SMS_PATH, {"phone": phone, "code": code}, idempotency_key=idempotency_key
        )
        return SmsReceipt(_ref(self.client, answer))


class HttpBankCard:
    sandbox = False

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    def verify(self, query: CardQuery, *, idempotency_key: str) -> CardResult:
        answer = self.client.post(
            BANK_CARD_PATH,
            {
                "name": query.name,
                "id_number": query.id_number,
                "card_number": query.card_number,
                "phone": query.phone,
            },
            idempotency_key=idempotency_key,
        )
        name = self.client.settings.name
        try:
            outcome = CardOutcome(str(answer.get("result")))
        except ValueError:
            raise bad_response(name, "unknown result") from None
        mismatched = answer.get("mismatched") or []
        if not isinstance(mismatched, list) or any(m not in ELEMENTS for m in mismatched):
            raise bad_response(name, "unknown element")
        if outcome is CardOutcome.MISMATCH and not mismatched:
            raise bad_response(name, "mismatch without elements")
        ordered = tuple(e for e in ELEMENTS if e in mismatched)
        return CardResult(
            outcome, ordered if outcome is CardOutcome.MISMATCH else (), _ref(self.client, answer)
        )


class HttpAuthority:
    sandbox = False

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    def verify(self, query: AuthorityQuery, *, idempotency_key: str) -> AuthorityResult:
        photo = None if query.photo is None else base64.b64encode(query.photo).decode("ascii")
        answer = self.client.post(
            AUTHORITY_PATH,
            {"name": query.name, "id_number": query.id_number, "photo": photo},
            idempotency_key=idempotency_key,
        )
        name = self.client.settings.name
        try:
            outcome = AuthorityOutcome(str(answer.get("result")))
        except ValueError:
            raise bad_response(name, "unknown result") from None
        photo_match = answer.get("photo_match")
        if photo_match is not None and not isinstance(photo_match, bool):
            raise bad_response(name, "photo_match is not a boolean")
        return AuthorityResult(outcome, photo_match, _ref(self.client, answer))


__all__ = [
    "AUTHORITY_PATH",
    "BANK_CARD_PATH",
    "SMS_PATH",
    "HttpAuthority",
    "HttpBankCard",
    "HttpSms",
]

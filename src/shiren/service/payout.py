"""Payout ownership (AML): before a disbursement, the payout card must belong to the verified
person.

The bank-card 4-element check runs with the subject's OWN name and ID number (opened from their
sealed fields in memory, for this call only — never logged, never returned), the card number and
the phone the lender gives.  Anything but a full match blocks the payout, with a reason code:

* ``payout.card_owner_verified`` — all four elements match: ``allowed``;
* ``payout.card_not_owner`` — the bank says an element does not match (which ones, by name, and
  the masked value we sent: ``name → 张*``): ``blocked``;
* ``payout.owner_unverified`` — the bank cannot say (``unknown``): ``blocked`` (fail closed).

A provider that cannot answer is a retryable ``connector.*`` error (HTTP 503): no verdict is
stored and the lender asks again (the same card and phone reuse the idempotency key, so the
provider answers once).  Every verdict is stored (the card as a keyed pseudonym and its last four
digits), audited and announced by a ``payout.checked`` webhook in one unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shiren.connectors import Connectors
from shiren.connectors.types import (
    CardOutcome,
    CardQuery,
    mask_card,
    mask_name,
    mask_phone,
    normalise_card,
    normalise_phone,
)
from shiren.domain import idnumber
from shiren.domain.entities import Tenant, new_id
from shiren.domain.fallback import PayoutCheck, PayoutOutcome
from shiren.errors import ErrorCode, StateError
from shiren.messages import message
from shiren.privacy import redact
from shiren.reasons import ReasonCode
from shiren.service.connectors import card_pseudonym, idempotency_key
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.service.vault import KeyVault
from shiren.service.webhooks import Event, enqueue_event
from shiren.storage.ports import UnitOfWorkFactory

log = logging.getLogger("shiren.service.payout")

_VERDICT = {
    CardOutcome.MATCH: (PayoutOutcome.ALLOWED, ReasonCode.PAYOUT_CARD_OWNER_VERIFIED),
    CardOutcome.MISMATCH: (PayoutOutcome.BLOCKED, ReasonCode.PAYOUT_CARD_NOT_OWNER),
    CardOutcome.UNKNOWN: (PayoutOutcome.BLOCKED, ReasonCode.PAYOUT_OWNER_UNVERIFIED),
}


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _not_found(what: str) -> StateError:
    return StateError(f"{what} not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": what})


class PayoutService:
    def __init__(
        self,
        *,
        store: UnitOfWorkFactory,
        keys: ServiceKeys,
        connectors: Connectors,
        clock: Callable[[], datetime],
        vault: KeyVault | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.vault = vault or KeyVault(keys)
        """Opens the subject's name and ID number (:mod:`shiren.service.vault`)."""
        self.connectors = connectors
        self.clock = clock

    def check(
        self,
        tenant: Tenant,
        subject_id: str,
        *,
        card_number: str,
        phone: str,
        event_id: str | None = None,
        lang: str = "zh-CN",
    ) -> dict[str, Any]:
        """The ownership verdict for paying ``subject_id`` out to ``card_number``."""
        card = normalise_card(card_number)
        number = normalise_phone(phone)
        with self.store() as uow:
            subject = uow.subjects.get(tenant.id, subject_id) if _is_id(subject_id) else None
            if subject is None:
                raise _not_found("subject")
            if event_id is not None:
                event = uow.lending_events.get(tenant.id, event_id) if _is_id(event_id) else None
                if event is None or event.subject_id != subject.id:
                    raise _not_found("event")
        name, id_number = self.vault.open_identity(tenant, subject)
        sent = {
            "name": mask_name(name),
            "id_number": idnumber.parse(id_number).mask(),
            "card_number": mask_card(card),
            "phone": mask_phone(number),
        }
        key = idempotency_key(self.keys, tenant.id, subject.id, "payout", card, number)
        result = self.connectors.bank_card.verify(
            CardQuery(name, id_number, card, number), idempotency_key=key
        )
        del name, id_number
        outcome, reason = _VERDICT[result.outcome]
        now = self.clock()
        row = PayoutCheck(
            id=new_id(),
            tenant_id=tenant.id,
            subject_id=subject.id,
            card_pseudonym=card_pseudonym(self.keys, tenant.id, card),
            card_last4=card[-4:],
            outcome=outcome,
            created_at=now,
            reasons=(reason.value,),
            mismatched=result.mismatched,
            event_id=event_id,
            provider_ref=result.provider_ref[:128],
            sandbox=result.sandbox,
        )
        self._record(row, now)
        log.info(
            redact(
                f"payout checked tenant={tenant.id} subject={subject.id} check={row.id} "
                f"outcome={outcome} mismatched={','.join(row.mismatched)}"
            )
        )
        return {
            "id": row.id,
            "subject_id": subject.id,
            "event_id": event_id,
            "decision": outcome.value,
            "reasons": list(row.reasons),
            "tips": [{"code": r, "message": message(r, lang)} for r in row.reasons],
            "mismatched": [{"element": e, "sent": sent[e]} for e in row.mismatched],
            "card": mask_card(card),
            "sandbox": row.sandbox,
            "created_at": now.isoformat(),
        }

    def _record(self, row: PayoutCheck, now: datetime) -> None:
        with self.store() as uow:
            uow.payouts.add(row)
            append_audit(
                uow,
                self.keys.audit_key,
                row.tenant_id,
                "payout.checked",
                row.subject_id,
                {
                    "payout_check_id": row.id,
                    "event_id": row.event_id,
                    "decision": row.outcome.value,
                    "reasons": list(row.reasons),
                    "mismatched": list(row.mismatched),
                    "card_last4": row.card_last4,
                    "sandbox": row.sandbox,
                },
                now,
            )
            enqueue_event(
                uow,
                self.keys,
                row.tenant_id,
                event=Event.PAYOUT_CHECKED,
                now=now,
                subject_id=row.subject_id,
                decision=row.outcome.value,
                reasons=row.reasons,
                extra={"payout_check_id": row.id, "event_id": row.event_id},
            )
            uow.commit()


__all__ = ["PayoutService"]

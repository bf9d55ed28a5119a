"""A card capture: enrolment that starts on the borrower's phone with the ID card.

The lender that has no card photo of its own opens a card capture and sends the borrower its
``capture_url``; the page asks for consent, photographs the card's front (and back), and the
service reads and checks it (:mod:`shiren.service.id_cards`).  A card that passes enrols the
subject with the card's portrait as the reference and opens the selfie session; the page goes
straight on to it::

    open ──(card read and enrolled)──→ enrolled
      └──(expires_at passed)─────────→ expired   (read as such; never rewritten)

What the lender told us to expect is kept only as keyed digests (``id_pseudonym``: the same
keyed pseudonym subjects carry; ``name_digest``: a keyed hash of the normalised name), so the
row holds no name or ID number in any form that can be read back.  ``card_reads`` counts the
card submissions (each costs an OCR pass): past :data:`MAX_CARD_READS` the capture refuses more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shiren.domain.entities import _check_aware

MAX_CARD_READS = 8
"""Card submissions one capture accepts (an unreadable photo may be retaken; a flood may not)."""


class CardCaptureStatus(StrEnum):
    OPEN = "open"
    ENROLLED = "enrolled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class CardCapture:
    """One card capture (see the module docstring); ``version`` guards concurrent updates."""

    id: str
    tenant_id: str
    external_ref: str
    consent_purpose: str
    consent_version: str
    consent_text_sha256: str
    consent_retention_days: int
    consent_client: str
    back_required: bool
    created_at: datetime
    expires_at: datetime
    id_pseudonym: str | None = None
    name_digest: str | None = None
    device_id: str | None = None
    status: CardCaptureStatus = CardCaptureStatus.OPEN
    card_reads: int = 0
    subject_id: str | None = None
    session_id: str | None = None
    enrolled_at: datetime | None = None
    version: int = 0

    def __post_init__(self) -> None:
        _check_aware(self)

    def status_at(self, now: datetime) -> CardCaptureStatus:
        """The status as of ``now`` (an open capture past its expiry reads as expired)."""
        if self.status is CardCaptureStatus.OPEN and now >= self.expires_at:
            return CardCaptureStatus.EXPIRED
        return self.status


__all__ = ["MAX_CARD_READS", "CardCapture", "CardCaptureStatus"]

"""Card captures: enrolment that starts with the ID card on the borrower's phone.

A lender without a photo of the card opens a card capture (``POST /v1/enrolments/id-card/
captures``) with the borrower's ``external_ref`` and the lender's consent record, optionally the
name and ID number it holds, and sends the borrower the ``capture_url``.  The capture page asks
for the borrower's consent (the face text, plus what reading the card means), photographs the
card's front — and back, unless the lender said otherwise — with live framing guidance
(:func:`shiren.idcard.guide.guide`), and sends them.  The service reads and checks the card
exactly as ``POST /v1/enrolments/id-card`` does (:meth:`Enrolment.enrol_with_card`); a card that
passes enrols the subject with its portrait as the reference and opens the selfie session in
the same unit of work, and the page carries on to it without asking again.

What the row keeps (:class:`~shiren.domain.card_capture.CardCapture`): the lender's reference,
its consent record, and what it expects of the card only as keyed digests — the same keyed
pseudonym subjects carry for the ID number, a keyed hash of the normalised name — so the row
can judge the card without holding a name or a number.  A different number on the card is
refused (``idcard.number_mismatch``); a different name sends the enrolment to review
(``idcard.name_mismatch``), and the subject is then enrolled under the name *on the card*.

Each card submission costs an OCR pass: a capture accepts :data:`MAX_CARD_READS` of them (an
unreadable photo may be retaken; a flood may not), counted before the card is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shiren.domain import idnumber
from shiren.domain.card_capture import MAX_CARD_READS, CardCapture, CardCaptureStatus
from shiren.domain.entities import Subject, SubjectStatus, Tenant, new_id
from shiren.errors import ErrorCode, InputError, StateError
from shiren.service.capture_token import issue as issue_token
from shiren.service.consent import has_active_consent
from shiren.service.context import Context
from shiren.service.enrolment import AfterEnrol, Enrolment
from shiren.service.id_cards import CardEvidence, CardExpectation, normalise_name
from shiren.service.validation import (
    MAX_EXTERNAL_REF,
    MAX_NAME_CHARS,
    ConsentIn,
    is_id,
    not_found,
    text,
)
from shiren.service.views import SessionView
from shiren.service.webhooks import Event
from shiren.storage.ports import UnitOfWork

DEFAULT_TTL_S = 900
"""A card capture lasts 15 minutes: time to find the card, consent and photograph both sides."""


@dataclass(frozen=True, slots=True)
class CardCaptureView:
    """A card capture as the lender sees it (its status as of now), with the page's token
    while it is open."""

    capture: CardCapture
    status: CardCaptureStatus
    capture_token: str | None
    checks: list[dict[str, Any]] | None = None
    """Once enrolled: the card's checks (code, outcome, side), as the reference keeps them."""

    def to_dict(self) -> dict[str, Any]:
        c = self.capture
        return {
            "id": c.id,
            "external_ref": c.external_ref,
            "status": self.status.value,
            "back_required": c.back_required,
            "expires_at": c.expires_at.isoformat(),
            "card_reads": c.card_reads,
            "subject_id": c.subject_id,
            "session_id": c.session_id,
            "capture_token": self.capture_token,
            "checks": self.checks,
        }


@dataclass(frozen=True, slots=True)
class CardEnrolled:
    """What a successful card submission produced."""

    capture: CardCapture
    subject: Subject
    session: SessionView
    card: CardEvidence


class CardCaptures:
    """Opens card captures for the lender and enrols from the card the page sends."""

    def __init__(self, ctx: Context, enrolment: Enrolment, *, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._ctx = ctx
        self._enrolment = enrolment
        self.ttl = timedelta(seconds=ttl_s)

    # -- the lender's side -------------------------------------------------------------------

    def open(
        self,
        tenant: Tenant,
        *,
        external_ref: str,
        consent: ConsentIn,
        name: str | None = None,
        id_number: str | None = None,
        back_required: bool = True,
        device_id: str | None = None,
    ) -> CardCaptureView:
        """A new card capture and the token of its page (typed errors for bad input, and
        ``record.duplicate`` when ``external_ref`` is already an enrolled subject)."""
        text(external_ref, "external_ref", MAX_EXTERNAL_REF)
        if name is not None:
            name = text(name.strip(), "name", MAX_NAME_CHARS)
        if device_id is not None:
            text(device_id, "device_id", 128)
        self._enrolment.accept_consent(consent)
        parsed = idnumber.parse(id_number) if id_number is not None else None
        now = self._ctx.clock()
        row = CardCapture(
            id=new_id(),
            tenant_id=tenant.id,
            external_ref=external_ref,
            consent_purpose=consent.purpose,
            consent_version=consent.version,
            consent_text_sha256=consent.text_sha256.lower(),
            consent_retention_days=consent.retention_days,
            consent_client=consent.client,
            back_required=back_required,
            created_at=now,
            expires_at=now + self.ttl,
            id_pseudonym=None if parsed is None else self._ctx.vault.pseudonym(tenant, parsed),
            name_digest=None if name is None else self._name_digest(tenant, name),
            device_id=device_id,
        )
        with self._ctx.store() as uow:
            self._refuse_enrolled(uow, tenant, external_ref)
            uow.card_captures.add(row)
            self._ctx.journal.audit(
                uow,
                tenant.id,
                "idcard.capture_opened",
                None,
                {
                    "capture_id": row.id,
                    "back_required": back_required,
                    "expects_number": parsed is not None,
                    "expects_name": name is not None,
                },
                now,
            )
            uow.commit()
        return self._view(row)

    def get(self, tenant: Tenant, capture_id: str) -> CardCaptureView:
        row = self.load(tenant, capture_id)
        checks = None
        if row.subject_id is not None:
            with self._ctx.store() as uow:
                refs = uow.references.list_for_subject(tenant.id, row.subject_id)
            stored = [r.card_checks for r in refs if r.card_checks]
            checks = json.loads(stored[-1]) if stored else None
        return self._view(row, checks)

    def load(self, tenant: Tenant, capture_id: str) -> CardCapture:
        if not is_id(capture_id):
            raise not_found("card capture")
        with self._ctx.store() as uow:
            row = uow.card_captures.get(tenant.id, capture_id)
        if row is None:
            raise not_found("card capture")
        return row

    def _view(
        self, row: CardCapture, checks: list[dict[str, Any]] | None = None
    ) -> CardCaptureView:
        status = row.status_at(self._ctx.clock())
        token = None
        if status is CardCaptureStatus.OPEN:
            key = self._ctx.vault.keys.challenge_key
            token = issue_token(key, row.tenant_id, row.id, row.expires_at, kind="card")
        return CardCaptureView(row, status, token, checks)

    # -- the page's side ---------------------------------------------------------------------

    def submit(
        self,
        tenant: Tenant,
        capture_id: str,
        *,
        front: bytes,
        back: bytes | None,
        client_ip: str | None = None,
        also: AfterEnrol | None = None,
    ) -> CardEnrolled:
        """Read and check the card and enrol from it (see the module docstring); ``also`` runs
        inside the enrolment's unit of work (the page's consent is recorded there)."""
        row = self._open_row(tenant, capture_id)
        if row.back_required and not back:
            raise InputError(
                "this capture needs the back of the card too",
                code=ErrorCode.INPUT_INVALID,
                detail={"field": "id_card_back"},
            )
        counted = self._count_read(row)
        now = self._ctx.clock()
        enrolled: list[CardCapture] = []
        review: list[str] = []  # set once the card is judged, before ``then`` runs
        expect = self._expectation(tenant, row)

        def then(uow: UnitOfWork, subject: Subject, view: SessionView) -> None:
            done = replace(
                counted,
                status=CardCaptureStatus.ENROLLED,
                subject_id=subject.id,
                session_id=view.session.id,
                enrolled_at=now,
            )
            enrolled.append(uow.card_captures.update(done, expected_version=counted.version))
            self._ctx.journal.emit(
                uow,
                tenant.id,
                Event.CARD_CAPTURE_ENROLLED,
                now,
                subject_id=subject.id,
                reasons=tuple(review),
            )
            if also is not None:
                also(uow, subject, view)

        subject, view, card = self._enrolment.enrol_with_card(
            tenant,
            external_ref=row.external_ref,
            consent=ConsentIn(
                purpose=row.consent_purpose,
                version=row.consent_version,
                text_sha256=row.consent_text_sha256,
                retention_days=row.consent_retention_days,
                client=row.consent_client,
            ),
            id_card_front=front,
            id_card_back=back,
            device_id=row.device_id,
            client_ip=client_ip,
            expect=expect,
            then=then,
            judged=review.extend,
        )
        return CardEnrolled(enrolled[0], subject, view, card)

    def _open_row(self, tenant: Tenant, capture_id: str) -> CardCapture:
        row = self.load(tenant, capture_id)
        status = row.status_at(self._ctx.clock())
        if status is CardCaptureStatus.EXPIRED:
            raise StateError("capture link has expired", code=ErrorCode.CAPTURE_TOKEN_EXPIRED)
        if status is CardCaptureStatus.ENROLLED:
            raise StateError(
                "the card was already read for this capture",
                code=ErrorCode.SESSION_ALREADY_USED,
            )
        return row

    def _count_read(self, row: CardCapture) -> CardCapture:
        """One more card read, stored before the read (so failed reads count too)."""
        if row.card_reads >= MAX_CARD_READS:
            raise StateError(
                "too many card photos for this capture",
                code=ErrorCode.CAPTURE_RATE_LIMITED,
                detail={"max_card_reads": MAX_CARD_READS},
            )
        with self._ctx.store() as uow:
            counted = uow.card_captures.update(
                replace(row, card_reads=row.card_reads + 1), expected_version=row.version
            )
            uow.commit()
        return counted

    def _expectation(self, tenant: Tenant, row: CardCapture) -> CardExpectation:
        def same_number(number: str) -> bool:
            assert row.id_pseudonym is not None
            got = self._ctx.vault.pseudonym(tenant, idnumber.parse(number))
            return hmac.compare_digest(got, row.id_pseudonym)

        def same_name(name: str) -> bool:
            assert row.name_digest is not None
            return hmac.compare_digest(self._name_digest(tenant, name), row.name_digest)

        return CardExpectation(
            number=same_number if row.id_pseudonym is not None else None,
            name=same_name if row.name_digest is not None else None,
        )

    def _name_digest(self, tenant: Tenant, name: str) -> str:
        key = self._ctx.vault.keys.pseudonym_key(tenant.id).key
        message = b"card-capture-name|" + normalise_name(name).encode("utf-8")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _refuse_enrolled(uow: UnitOfWork, tenant: Tenant, external_ref: str) -> None:
        subject = uow.subjects.get_by_external_ref(tenant.id, external_ref)
        if subject is None or subject.status is SubjectStatus.ERASED:
            return
        if has_active_consent(uow, tenant.id, subject.id):
            raise StateError(
                "external_ref already exists",
                code=ErrorCode.RECORD_DUPLICATE,
                detail={"entity": "subject"},
            )


__all__ = ["DEFAULT_TTL_S", "CardCaptureView", "CardCaptures", "CardEnrolled"]

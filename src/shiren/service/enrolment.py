"""Enrolment: a subject from the lender's data and a reference photo, bound to a live face later.

Enrolment records the subject (name and ID number sealed with the subject's own key, the ID
number also as a keyed pseudonym), the separate, versioned consent, and the reference template,
then opens an enrolment session.  The face is bound only after that session passes (liveness and
a match with the reference): a photo alone never enrols anyone.  The reference image is turned
into a template in memory and dropped.

A subject whose every consent was withdrawn (and who was not erased) can enrol again under the
same ``external_ref`` — only as the same person (same ID-number pseudonym); anything else under
an existing ``external_ref`` is ``record.duplicate``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime

import numpy as np

from shiren.domain import idnumber
from shiren.domain.entities import (
    Consent,
    Reference,
    ReferenceKind,
    SessionPurpose,
    Subject,
    SubjectStatus,
    Tenant,
    new_id,
)
from shiren.domain.policy import StepUpPolicy
from shiren.errors import ErrorCode, InputError, StateError
from shiren.privacy import redact
from shiren.reasons import ReasonCode
from shiren.service.consent import has_active_consent
from shiren.service.context import Context
from shiren.service.fraud import Finding, FraudGuard
from shiren.service.id_cards import CardEvidence, CardExpectation, IdCards
from shiren.service.sessions import Sessions
from shiren.service.validation import (
    MAX_EXTERNAL_REF,
    MAX_NAME_CHARS,
    ConsentIn,
    check_consent,
    check_purpose,
    text,
)
from shiren.service.views import SessionView
from shiren.storage.ports import UnitOfWork
from shiren.verifier import Verifier

log = logging.getLogger("shiren.service")
AfterEnrol = Callable[[UnitOfWork, Subject, SessionView], None]
"""A step run inside an enrolment's unit of work, before it commits."""


def _duplicate() -> StateError:
    return StateError(
        "external_ref already exists",
        code=ErrorCode.RECORD_DUPLICATE,
        detail={"entity": "subject"},
    )


def _consent_row(tenant: Tenant, subject_id: str, consent: ConsentIn, now: datetime) -> Consent:
    return Consent(
        id=new_id(),
        tenant_id=tenant.id,
        subject_id=subject_id,
        purpose=consent.purpose,
        version=consent.version,
        text_sha256=consent.text_sha256.lower(),
        retention_days=consent.retention_days,
        granted_at=now,
        client=consent.client,
    )


class Enrolment:
    """The enrolment use case."""

    def __init__(
        self,
        ctx: Context,
        *,
        verifier: Verifier,
        sessions: Sessions,
        fraud: FraudGuard,
        policy: StepUpPolicy,
        embedder_id: str,
        cards: IdCards | None = None,
    ) -> None:
        self._ctx = ctx
        self._cards = cards
        self._verifier = verifier
        self._sessions = sessions
        self._fraud = fraud
        self._policy = policy
        self._embedder_id = embedder_id

    def accept_consent(self, consent: ConsentIn) -> None:
        """A well-formed consent (typed errors naming the field) for a purpose the versioned
        policy lists (``input.consent_purpose_unknown`` otherwise)."""
        check_consent(consent)
        check_purpose(consent, self._policy.consent_purposes, self._policy.version)

    def enrol(
        self,
        tenant: Tenant,
        *,
        external_ref: str,
        name: str,
        id_number: str,
        consent: ConsentIn,
        reference_image: bytes,
        reference_kind: str = "id_card",
        device_id: str | None = None,
        client_ip: str | None = None,
    ) -> tuple[Subject, SessionView]:
        """Create a subject from the lender's data and a reference photo, record the consent,
        and open an enrolment session; the face is bound only after that session passes."""
        text(external_ref, "external_ref", MAX_EXTERNAL_REF)
        text(name.strip(), "name", MAX_NAME_CHARS)
        self.accept_consent(consent)
        try:
            kind = ReferenceKind(reference_kind)
        except ValueError:
            raise InputError(
                "reference_kind must be id_card, authority or upload",
                detail={"field": "reference_kind", "allowed": [k.value for k in ReferenceKind]},
            ) from None
        parsed = idnumber.parse(id_number)
        with self._ctx.models_lock:
            analysis = self._verifier.analyze(reference_image)  # the image is dropped after this
        template = analysis.template.astype(np.float32).tobytes()
        again = self._find_reenrolment(tenant, external_ref, parsed)  # after a withdrawal
        if again is not None:
            return self._reenrol(tenant, again, consent=consent, kind=kind, template=template)
        return self._enrol_new(
            tenant,
            external_ref,
            name.strip(),
            parsed,
            consent,
            kind,
            template,
            device_id=device_id,
            client_ip=client_ip,
        )

    def enrol_with_card(
        self,
        tenant: Tenant,
        *,
        external_ref: str,
        consent: ConsentIn,
        id_card_front: bytes,
        id_card_back: bytes | None = None,
        name: str | None = None,
        id_number: str | None = None,
        device_id: str | None = None,
        client_ip: str | None = None,
        expect: CardExpectation | None = None,
        then: AfterEnrol | None = None,
        judged: Callable[[tuple[str, ...]], object] | None = None,
    ) -> tuple[Subject, SessionView, CardEvidence]:
        """Enrol from the borrower's ID card: the card is read and checked
        (:mod:`shiren.service.id_cards`), its portrait becomes the reference, and the name and
        number come from the card unless the lender sent them (then they must agree).

        ``expect``: what the lender expects, as keyed digests instead of values (a card
        capture keeps no name or number); ``then``: called inside the enrolment's unit of work
        before it commits (a card capture marks itself used there, atomically); ``judged``:
        told the review signals once the card is judged."""
        text(external_ref, "external_ref", MAX_EXTERNAL_REF)
        if name is not None:
            name = text(name.strip(), "name", MAX_NAME_CHARS)
        self.accept_consent(consent)
        if self._cards is None:
            raise InputError("ID-card reading is not configured", code=ErrorCode.INPUT_INVALID)
        card = self._cards.read_for_enrolment(
            id_card_front,
            id_card_back,
            name=name,
            id_number=id_number,
            today=self._ctx.clock().date(),
            expect=expect,
        )  # the card's images are dropped after this
        if judged is not None:
            judged(card.review)
        with self._ctx.models_lock:
            analysis = self._verifier.analyze(card.portrait)
        template = analysis.template.astype(np.float32).tobytes()
        parsed = idnumber.parse(card.id_number)
        kind = ReferenceKind.ID_CARD
        again = self._find_reenrolment(tenant, external_ref, parsed)
        if again is not None:
            subject, view = self._reenrol(
                tenant, again, consent=consent, kind=kind, template=template, card=card, then=then
            )
            return subject, view, card
        subject, view = self._enrol_new(
            tenant,
            external_ref,
            text(card.name, "name", MAX_NAME_CHARS),
            parsed,
            consent,
            kind,
            template,
            device_id=device_id,
            client_ip=client_ip,
            card=card,
            then=then,
        )
        return subject, view, card

    def _enrol_new(
        self,
        tenant: Tenant,
        external_ref: str,
        name: str,
        parsed: idnumber.IdNumber,
        consent: ConsentIn,
        kind: ReferenceKind,
        template: bytes,
        *,
        device_id: str | None,
        client_ip: str | None,
        card: CardEvidence | None = None,
        then: AfterEnrol | None = None,
    ) -> tuple[Subject, SessionView]:
        ctx, vault = self._ctx, self._ctx.vault
        now = ctx.clock()
        subject_id = new_id()
        key, wrapped = vault.new_subject_key(tenant, subject_id)  # erasure deletes it
        subject = Subject(
            id=subject_id,
            tenant_id=tenant.id,
            external_ref=external_ref,
            created_at=now,
            id_pseudonym=vault.pseudonym(tenant, parsed),
            id_number_enc=vault.seal(
                key, tenant, "subjects", "id_number_enc", subject_id, parsed.number.encode("ascii")
            ),
            name_enc=vault.seal(key, tenant, "subjects", "name_enc", subject_id, name.encode()),
            wrapped_key=wrapped,
        )
        consent_row = _consent_row(tenant, subject_id, consent, now)
        with ctx.store() as uow:
            uow.subjects.add(subject)
            uow.consents.add(consent_row)
            self._add_reference(uow, tenant, subject, kind, template, now, card)
            # anti-fraud: blacklist, duplicates, same ID other face, device, velocity
            self._fraud.on_enrol(
                uow, tenant, subject, template, now, device_id=device_id, client_ip=client_ip
            )
            self._audit_consent(uow, tenant, subject_id, consent_row, reenrolment=False)
            self._record_card(uow, tenant, subject, card, now)
            view = self._open_session(uow, tenant, subject_id, now)
            if then is not None:
                then(uow, subject, view)
            uow.commit()
        self._fraud.enrolled(tenant, subject_id, template)  # the references gallery
        log.info(redact(f"enrolment started tenant={tenant.id} subject={subject_id}"))
        return subject, view

    def _find_reenrolment(
        self, tenant: Tenant, external_ref: str, parsed: idnumber.IdNumber
    ) -> Subject | None:
        """The existing subject to enrol again under ``external_ref``, or ``None`` for a new
        one (see the module docstring)."""
        with self._ctx.store() as uow:
            subject = uow.subjects.get_by_external_ref(tenant.id, external_ref)
            if subject is None or subject.status is SubjectStatus.ERASED:
                return None
            if has_active_consent(uow, tenant.id, subject.id):
                return None  # the normal path reports the duplicate
        pseudo = self._ctx.vault.pseudonym(tenant, parsed)
        if subject.id_pseudonym is None or not hmac.compare_digest(pseudo, subject.id_pseudonym):
            raise _duplicate()
        return subject

    def _reenrol(
        self,
        tenant: Tenant,
        subject: Subject,
        *,
        consent: ConsentIn,
        kind: ReferenceKind,
        template: bytes,
        card: CardEvidence | None = None,
        then: AfterEnrol | None = None,
    ) -> tuple[Subject, SessionView]:
        """Record the fresh consent and the new reference for ``subject`` (sealed with its own
        key) and open an enrolment session, as a first enrolment does."""
        now = self._ctx.clock()
        consent_row = _consent_row(tenant, subject.id, consent, now)
        with self._ctx.store() as uow:
            current = uow.subjects.get(tenant.id, subject.id)
            if current is None or has_active_consent(uow, tenant.id, subject.id):
                raise _duplicate()
            uow.consents.add(consent_row)
            self._add_reference(uow, tenant, subject, kind, template, now, card)
            self._audit_consent(uow, tenant, subject.id, consent_row, reenrolment=True)
            self._record_card(uow, tenant, subject, card, now)
            view = self._open_session(uow, tenant, subject.id, now)
            if then is not None:
                then(uow, current, view)
            uow.commit()
        log.info(redact(f"re-enrolment started tenant={tenant.id} subject={subject.id}"))
        return current, view

    def _add_reference(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject: Subject,
        kind: ReferenceKind,
        template: bytes,
        now: datetime,
        card: CardEvidence | None = None,
    ) -> None:
        reference_id = new_id()
        sealed = self._ctx.vault.seal_field(
            tenant, subject, "references", "template_enc", reference_id, template
        )
        uow.references.add(
            Reference(
                id=reference_id,
                tenant_id=tenant.id,
                subject_id=subject.id,
                kind=kind,
                template_enc=sealed,
                created_at=now,
                embedder=self._embedder_id,
                card_checks=None if card is None else json.dumps(card.checks(), sort_keys=True),
            )
        )

    def _audit_consent(
        self, uow: UnitOfWork, tenant: Tenant, subject_id: str, row: Consent, *, reenrolment: bool
    ) -> None:
        payload: dict[str, object] = {
            "consent_id": row.id,
            "purpose": row.purpose,
            "version": row.version,
            "text_sha256": row.text_sha256,
            "retention_days": row.retention_days,
        }
        if reenrolment:
            payload["reenrolment"] = True
        self._ctx.journal.audit(
            uow, tenant.id, "consent.granted", subject_id, payload, row.granted_at
        )

    def _record_card(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject: Subject,
        card: CardEvidence | None,
        now: datetime,
    ) -> None:
        """The card's checks in the audit log (codes and outcomes, no value read); its review
        signals as findings of the enrolment, so its capture goes to manual review."""
        if card is None:
            return
        self._ctx.journal.audit(uow, tenant.id, "idcard.read", subject.id, card.audit(), now)
        findings = [
            Finding(ReasonCode(code), "review", {"source": "id_card"}) for code in card.review
        ]
        if findings:
            self._fraud.save(uow, tenant, subject, None, findings, now, stage="enrol")

    def _open_session(
        self, uow: UnitOfWork, tenant: Tenant, subject_id: str, now: datetime
    ) -> SessionView:
        profile = self._policy.match_profile
        return self._sessions.open(
            uow, tenant, subject_id, SessionPurpose.ENROL, "normal", profile, now
        )


__all__ = ["Enrolment"]

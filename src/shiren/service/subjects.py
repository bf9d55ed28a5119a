"""A subject's rights over their data: erasure and export (PIPL arts. 45 and 47).

* **Erasure** deletes every biometric row of the subject (bound templates, references, kept
  evidence, captured faces of pending reviews), nulls the identity ciphertexts and the pseudonym,
  and deletes the subject's own key — so every copy of their ciphertext (replicas, WAL, backups)
  becomes unreadable.  The row stays, so the lender sees *that* and *when* it was erased.  The
  face leaves the 1:N galleries too.
* **Export** (a data-subject access request) answers with what the service holds: identity
  (name, masked ID number), consents, events, checks, template *metadata*, the non-face checks —
  never templates or images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiren.domain import idnumber
from shiren.domain.decisions import RetryRules
from shiren.domain.entities import Consent, LendingEvent, Reference, Template, Tenant
from shiren.service.context import Context
from shiren.service.fallback_records import subject_export
from shiren.service.fraud import FraudGuard
from shiren.service.validation import require_subject
from shiren.service.views import check_view
from shiren.service.webhooks import Event
from shiren.storage.ports import erase_subject_biometrics


def _when(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _consent(c: Consent) -> dict[str, Any]:
    return {
        "id": c.id,
        "purpose": c.purpose,
        "version": c.version,
        "text_sha256": c.text_sha256,
        "retention_days": c.retention_days,
        "granted_at": c.granted_at.isoformat(),
        "withdrawn_at": _when(c.withdrawn_at),
    }


def _event(e: LendingEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "amount_minor": e.amount_minor,
        "currency": e.currency,
        "decided": e.decided.value,
        "created_at": e.created_at.isoformat(),
    }


def _template(t: Template) -> dict[str, Any]:
    return {
        "id": t.id,
        "embedder": t.embedder,
        "created_at": t.created_at.isoformat(),
        "expires_at": _when(t.expires_at),
    }


def _reference(r: Reference) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind.value, "created_at": r.created_at.isoformat()}


class Subjects:
    """Erasure and export (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        *,
        fraud: FraudGuard,
        rules: RetryRules,
        on_erased: Callable[[], None] | None = None,
    ) -> None:
        self._ctx = ctx
        self._fraud = fraud
        self.rules = rules
        self._on_erased = on_erased
        """Run after an erasure commits (SQLite: fold the WAL, so the deleted ciphertext is gone
        from disk too, not only from the tables)."""

    def erase(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        """Erase the subject (see the module docstring); idempotent."""
        ctx = self._ctx
        now = ctx.clock()
        with ctx.store() as uow:
            require_subject(uow, tenant.id, subject_id)
            counts = erase_subject_biometrics(uow, tenant.id, subject_id)
            subject = uow.subjects.erase(tenant.id, subject_id, now)
            payload = {  # "template" is a forbidden audit key: name the counts by what they were
                "face_rows": counts.templates,
                "reference_rows": counts.references,
                "evidence_rows": counts.evidence,
                "review_candidate_rows": counts.review_candidates,
            }
            ctx.journal.audit(uow, tenant.id, "subject.erased", subject_id, payload, now)
            ctx.journal.emit(uow, tenant.id, Event.SUBJECT_ERASED, now, subject_id=subject_id)
            uow.commit()
        self._fraud.forget(tenant.id, subject_id)  # leave the 1:N galleries
        if self._on_erased is not None:
            self._on_erased()
        assert subject.erased_at is not None
        return {
            "subject_id": subject_id,
            "status": subject.status.value,
            "erased_at": subject.erased_at.isoformat(),
            "deleted": {
                "templates": counts.templates,
                "references": counts.references,
                "evidence": counts.evidence,
            },
        }

    def export(self, tenant: Tenant, subject_id: str) -> dict[str, Any]:
        """What the service holds about the subject (see the module docstring)."""
        with self._ctx.store() as uow:
            subject = require_subject(uow, tenant.id, subject_id)
            consents = uow.consents.list_for_subject(tenant.id, subject_id)
            checks = uow.checks.list_for_subject(tenant.id, subject_id)
            events = uow.lending_events.list_for_subject(tenant.id, subject_id)
            templates = uow.templates.list_for_subject(tenant.id, subject_id)
            references = uow.references.list_for_subject(tenant.id, subject_id)
            non_face = subject_export(uow, tenant.id, subject_id)  # fallbacks, payouts
        vault = self._ctx.vault
        name = masked = None
        if subject.name_enc is not None:
            name = vault.open_field(
                tenant, subject, "subjects", "name_enc", subject.id, subject.name_enc
            ).decode("utf-8")
        if subject.id_number_enc is not None:
            raw = vault.open_field(
                tenant, subject, "subjects", "id_number_enc", subject.id, subject.id_number_enc
            )
            masked = idnumber.parse(raw.decode("ascii")).mask()
        return {
            "subject": {
                "id": subject.id,
                "external_ref": subject.external_ref,
                "status": subject.status.value,
                "name": name,
                "id_number_masked": masked,
                "created_at": subject.created_at.isoformat(),
                "erased_at": _when(subject.erased_at),
            },
            "consents": [_consent(c) for c in consents],
            "events": [_event(e) for e in events],
            "checks": [check_view(c, self.rules).to_dict("en") for c in checks],
            "templates": [_template(t) for t in templates],
            "references": [_reference(r) for r in references],
            **non_face,
        }


__all__ = ["Subjects"]

"""Blacklist management (issue 6): the galleries of faces a lender manages.

Add a face (a photo, or the bound face of one of its subjects) with a reason code and a
reference to the lender's evidence; remove it; list them.  Every change is audited (the evidence
reference only as a SHA-256: it may be a case number naming a person); the template is sealed
with the tenant key in ``blacklist_entries`` and indexed by entry id in the tenant's
``blacklist`` gallery, which enrolment and every capture search.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from shiren.domain.entities import Tenant, new_id
from shiren.domain.fraud import BlacklistEntry, FraudFinding
from shiren.errors import ErrorCode, InputError, StateError
from shiren.fraud.index import network_of
from shiren.service.context import Context
from shiren.service.fraud import BLACKLIST, FraudGuard
from shiren.service.validation import require_subject
from shiren.verifier import Verifier

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(
            f"{what} must be 1-64 lower-case letters, digits, '_', '.' or '-'",
            detail={"field": what},
        )
    return value


def _text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InputError(f"{what} must be 1-{limit} characters", detail={"field": what})
    return value.strip()


def entry_dict(entry: BlacklistEntry) -> dict[str, Any]:
    """What the API shows of an entry: never the template."""
    return {
        "id": entry.id,
        "list_name": entry.list_name,
        "reason": entry.reason,
        "evidence_ref": entry.evidence_ref,
        "added_by": entry.added_by,
        "created_at": entry.created_at.isoformat(),
    }


class Blacklists:
    """The blacklist use cases (see the module docstring)."""

    def __init__(self, ctx: Context, *, verifier: Verifier, fraud: FraudGuard) -> None:
        self._ctx = ctx
        self._verifier = verifier
        self._fraud = fraud

    def _template_of_subject(self, tenant: Tenant, subject_id: str) -> bytes:
        """The subject's latest bound template of the service's network: the blacklist gallery
        is that network's, so an entry made from a face of another network would match
        nothing."""
        with self._ctx.store() as uow:
            subject = require_subject(uow, tenant.id, subject_id)
            temps = uow.templates.list_for_subject(tenant.id, subject.id)
        if not temps:
            raise StateError(
                "the subject has no bound face", code=ErrorCode.SUBJECT_NOT_READY, detail={}
            )
        own = [t for t in temps if network_of(t.embedder) == self._fraud.network]
        if not own:
            raise StateError(
                "the subject's face was made by another network: add the entry from a photo",
                code=ErrorCode.SUBJECT_NOT_READY,
                detail={"reason": "other_network"},
            )
        return self._ctx.vault.open_field(
            tenant, subject, "templates", "template_enc", own[-1].id, own[-1].template_enc
        )

    def add(
        self,
        tenant: Tenant,
        *,
        list_name: str,
        reason: str,
        evidence_ref: str,
        added_by: str,
        image: bytes | None = None,
        subject_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a face on a blacklist: from ``image`` or from ``subject_id``'s bound face."""
        _name(list_name, "list_name")
        _name(reason, "reason")
        evidence_ref = _text(evidence_ref, "evidence_ref", 200)
        added_by = _text(added_by, "added_by", 200)
        if (image is None) == (subject_id is None):
            raise InputError("give exactly one of image or subject_id", detail={"field": "image"})
        if image is not None:
            with self._ctx.models_lock:
                template = self._verifier.analyze(image).template.astype(np.float32).tobytes()
        else:
            assert subject_id is not None
            template = self._template_of_subject(tenant, subject_id)
        ctx = self._ctx
        now = ctx.clock()
        entry_id = new_id()
        entry = BlacklistEntry(
            id=entry_id,
            tenant_id=tenant.id,
            list_name=list_name,
            template_enc=ctx.vault.seal(
                ctx.vault.tenant_key(tenant),
                tenant,
                "blacklist_entries",
                "template_enc",
                entry_id,
                template,
            ),
            reason=reason,
            evidence_ref=evidence_ref,
            added_by=added_by,
            created_at=now,
        )
        payload = {
            "entry_id": entry_id,
            "list_name": list_name,
            "reason": reason,
            "evidence_ref_sha256": hashlib.sha256(evidence_ref.encode()).hexdigest(),
            "added_by_sha256": hashlib.sha256(added_by.encode()).hexdigest(),
            "source": "image" if image is not None else "subject",
        }
        with ctx.store() as uow:
            uow.blacklist.add(entry)
            ctx.journal.audit(uow, tenant.id, "blacklist.added", subject_id, payload, now)
            uow.commit()
        vector = np.frombuffer(template, np.float32)
        self._fraud.indexes.index(tenant.id, BLACKLIST).add(entry_id, vector)
        return entry_dict(entry)

    def remove(self, tenant: Tenant, entry_id: str, *, removed_by: str) -> dict[str, Any]:
        removed_by = _text(removed_by, "removed_by", 200)
        ctx = self._ctx
        now = ctx.clock()
        with ctx.store() as uow:
            entry = uow.blacklist.get(tenant.id, entry_id)
            if entry is None or not uow.blacklist.delete(tenant.id, entry_id):
                raise StateError(
                    "blacklist entry not found",
                    code=ErrorCode.RECORD_NOT_FOUND,
                    detail={"entity": "blacklist_entry"},
                )
            payload = {
                "entry_id": entry_id,
                "list_name": entry.list_name,
                "removed_by_sha256": hashlib.sha256(removed_by.encode()).hexdigest(),
            }
            ctx.journal.audit(uow, tenant.id, "blacklist.removed", None, payload, now)
            uow.commit()
        self._fraud.indexes.index(tenant.id, BLACKLIST).remove(entry_id)
        return {"id": entry_id, "removed": True, "removed_at": now.isoformat()}

    def entries(
        self, tenant: Tenant, list_name: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        if list_name is not None:
            _name(list_name, "list_name")
        if not 1 <= limit <= 1000:
            raise InputError("limit must be 1-1000", detail={"field": "limit"})
        with self._ctx.store() as uow:
            return [entry_dict(e) for e in uow.blacklist.list(tenant.id, list_name, limit=limit)]

    def findings(self, tenant: Tenant, subject_id: str) -> list[dict[str, Any]]:
        """The anti-fraud findings recorded for a subject, oldest first (for reviewers)."""
        with self._ctx.store() as uow:
            require_subject(uow, tenant.id, subject_id)
            rows = uow.findings.list_for_subject(tenant.id, subject_id)
        return [_finding_dict(f) for f in rows]


def _finding_dict(f: FraudFinding) -> dict[str, Any]:
    return {
        "id": f.id,
        "code": f.code,
        "action": f.action,
        "check_id": f.check_id,
        "evidence": f.evidence,
        "policy_version": f.policy_version,
        "created_at": f.created_at.isoformat(),
    }


__all__ = ["Blacklists", "entry_dict"]

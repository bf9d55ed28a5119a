"""The audit journal: every use case records what it did here, inside its own unit of work.

Two outlets, both written in the caller's unit of work so they commit (or roll back) with the
change they describe — an audit line for a change that never happened, or a webhook announcing
one, would be worse than none:

* the tenant's hash-chained, MAC'd audit log (:mod:`shiren.audit`): the payload is checked
  first (no biometrics, no ID numbers — :func:`shiren.audit.check_payload`);
* the tenant's webhook outbox (:mod:`shiren.service.webhooks`), delivered later by a worker.

:func:`append_audit` and :func:`verify_audit` need no models and no service, so the CLI and the
retention sweep use them against a database directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shiren.audit import AuditEvent as PureAuditEvent
from shiren.audit import ChainedEvent, VerifyResult, canonical_bytes, compute_hash, compute_mac
from shiren.audit import verify as verify_chain
from shiren.domain.entities import AuditDraft
from shiren.service.keys import ServiceKeys
from shiren.service.webhooks import enqueue_event
from shiren.storage.ports import ChainLink, UnitOfWork, UnitOfWorkFactory

_READ_BATCH = 1000


def append_audit(
    uow: UnitOfWork,
    audit_key: bytes,
    tenant_id: str,
    kind: str,
    subject_id: str | None,
    payload: Mapping[str, Any],
    now: datetime,
) -> None:
    """Append one event to the tenant's chain, adapting :mod:`shiren.audit` to storage's
    :class:`~shiren.storage.ports.ChainHasher`; the payload is checked (no biometrics, no ID
    numbers) before anything is written."""
    checked = PureAuditEvent(tenant_id, kind, subject_id, payload, now)

    def hasher(*, seq: int, prev_hash: str, draft: AuditDraft) -> ChainLink:
        canonical = canonical_bytes(
            seq,
            draft.tenant_id,
            draft.kind,
            draft.subject_id,
            json.loads(draft.payload),
            draft.created_at,
        )
        digest = compute_hash(prev_hash, canonical)
        return ChainLink(digest, compute_mac(audit_key, digest))

    draft = AuditDraft(
        tenant_id=tenant_id,
        kind=kind,
        payload=json.dumps(dict(checked.payload), sort_keys=True, ensure_ascii=False),
        created_at=now,
        subject_id=subject_id,
    )
    uow.audit.append(draft, hasher)


def verify_audit(store: UnitOfWorkFactory, audit_key: bytes, tenant_id: str) -> VerifyResult:
    """Verify one tenant's stored audit chain with :func:`shiren.audit.verify` (keyed): hashes,
    links and MACs.  Reads in batches, so a long chain never sits in one query."""
    rows: list[ChainedEvent] = []
    start = 1
    with store() as uow:
        while True:
            batch = uow.audit.read(tenant_id, start_seq=start, limit=_READ_BATCH)
            for e in batch:
                try:
                    payload: Any = json.loads(e.payload)
                except ValueError:
                    payload = {"unreadable": e.payload}
                rows.append(
                    ChainedEvent(
                        seq=e.seq,
                        tenant_id=e.tenant_id,
                        kind=e.kind,
                        subject_id=e.subject_id,
                        payload=payload,
                        created_at=e.created_at,
                        prev_hash=e.prev_hash,
                        hash=e.hash,
                        mac=e.mac,
                    )
                )
            if len(batch) < _READ_BATCH:
                break
            start = batch[-1].seq + 1
    return verify_chain(rows, audit_key=audit_key)


class Journal:
    """Audit lines and webhook events for the use cases (see the module docstring)."""

    def __init__(self, keys: ServiceKeys) -> None:
        self._keys = keys

    def audit(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        kind: str,
        subject_id: str | None,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Append ``kind`` with ``payload`` to the tenant's chain in ``uow``."""
        append_audit(uow, self._keys.audit_key, tenant_id, kind, subject_id, payload, now)

    def emit(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        event: str,
        now: datetime,
        *,
        subject_id: str | None = None,
        check_id: str | None = None,
        decision: str | None = None,
        reasons: Sequence[str] = (),
    ) -> None:
        """Enqueue a webhook in ``uow``: it commits (or not) with the change it announces."""
        enqueue_event(
            uow,
            self._keys,
            tenant_id,
            event=event,
            now=now,
            subject_id=subject_id,
            check_id=check_id,
            decision=decision,
            reasons=reasons,
        )

    def verify(self, store: UnitOfWorkFactory, tenant_id: str) -> VerifyResult:
        """Verify a tenant's whole chain under this journal's audit key."""
        return verify_audit(store, self._keys.audit_key, tenant_id)


__all__ = ["Journal", "append_audit", "verify_audit"]

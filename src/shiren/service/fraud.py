"""Anti-fraud checks: the identity graph, blacklists and velocity, at enrolment and at every
capture, as reason codes with evidence — never silent blocks.

What runs where (thresholds and actions from the versioned ``shiren/data/fraud.toml``, on the
scale of the service's network):

* **enrolment** (reference photo): blacklist search, the same face enrolled under another ID
  number (1:N over the tenant's ``enrolled`` and ``references`` galleries), the same ID number
  already bound to a different face, one device enrolling many subjects, velocity per ID
  number / device / IP;
* **capture** (every submit): blacklist search with the live face; for an enrolment also the
  duplicate search with the live face and the batch-background check; velocity per subject and
  device.  Findings raised at enrolment are carried into the enrolment capture's decision.

Each finding is stored (``fraud_findings``: code, action, evidence of ids and scores only),
audited and appended to the check's reasons; the policy action makes the decision ``review``
(manual review queue) or ``fallback`` (``reject``: the face path is closed for this attempt).
The galleries themselves — what they hold and how they are kept true — are
:mod:`shiren.service.galleries`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from shiren.domain.decisions import Decision, Outcome
from shiren.domain.entities import Session, SessionPurpose, Subject, SubjectStatus, Tenant, new_id
from shiren.domain.fraud import EnrolSignal, FraudFinding
from shiren.fraud import background
from shiren.fraud.index import IndexProvider
from shiren.fraud.policy import FraudPolicy, load_fraud_policy
from shiren.reasons import ReasonCode
from shiren.service.context import Context
from shiren.service.galleries import (
    BLACKLIST,
    ENROLLED,
    GALLERIES,
    REFERENCES,
    Galleries,
    Healed,
    gallery_sweeper,
    index_sealers,
)
from shiren.service.ratelimit import AttemptCounter
from shiren.storage.ports import UnitOfWork
from shiren.verifier import Verifier

log = logging.getLogger("shiren.fraud")


@dataclass(frozen=True, slots=True)
class Finding:
    code: ReasonCode
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)


def adjust(decision: Decision, findings: list[Finding]) -> Decision:
    """The decision with the findings applied: ``reject`` → fallback, ``review`` → review
    (a fallback stays a fallback); the findings' codes join the reasons."""
    if not findings:
        return decision
    reasons = tuple(dict.fromkeys((*decision.reasons, *(f.code.value for f in findings))))
    outcome = decision.outcome
    if any(f.action == "reject" for f in findings):
        outcome = Outcome.FALLBACK
    elif outcome in (Outcome.PASS, Outcome.RETRY):
        outcome = Outcome.REVIEW
    fallbacks = decision.fallbacks or ("manual_review",)
    return Decision(outcome, reasons, fallbacks, decision.retry_after_s)


class FraudGuard(Galleries):
    """The anti-fraud checks over the service's galleries (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        *,
        verifier: Verifier,
        counter: AttemptCounter,
        indexes: IndexProvider,
        policy: FraudPolicy | None = None,
    ) -> None:
        super().__init__(ctx, verifier=verifier, indexes=indexes)
        self.counter = counter
        # the 1:N thresholds on the scale of the service's network (fraud.toml [networks.*])
        self.policy = (policy or load_fraud_policy()).for_network(verifier.embedder.info.name)

    # -- helpers -----------------------------------------------------------------------------

    def hashed(self, tenant: Tenant, kind: str, value: str | None) -> str | None:
        """A keyed, tenant-scoped hash of a device id or IP address (never stored raw)."""
        if not value:
            return None
        key = self._ctx.vault.keys.pseudonym_key(tenant.id).key
        return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def _finding(self, name: str, code: ReasonCode, **evidence: Any) -> Finding:
        return Finding(code, self.policy.action(name), evidence)

    # -- the checks --------------------------------------------------------------------------

    def blacklisted(
        self, uow: UnitOfWork, tenant: Tenant, v: np.ndarray[Any, Any]
    ) -> list[Finding]:
        index = self.blacklist_index(uow, tenant)
        out = []
        for hit in index.search(v, self.policy.search_k):
            if hit.similarity < self.policy.blacklist_threshold:
                break
            entry = uow.blacklist.get(tenant.id, hit.entry_id)
            if entry is None:  # removed by another process: a stale entry leaves the index
                self.indexes.index(tenant.id, BLACKLIST).remove(hit.entry_id)
                continue
            out.append(
                self._finding(
                    "blacklist",
                    ReasonCode.FRAUD_BLACKLIST_HIT,
                    entry_id=entry.id,
                    list_name=entry.list_name,
                    reason=entry.reason,
                    similarity=round(hit.similarity, 6),
                )
            )
        return out[:1]

    def duplicates(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, v: np.ndarray[Any, Any]
    ) -> list[Finding]:
        """The same face bound to (or pending for) a subject with another ID number."""
        out = []
        if len(self.indexes.index(tenant.id, ENROLLED)) == 0 and (
            uow.templates.enrolled_subject_ids(tenant.id, network=self.network)
        ):
            self._reconciled.discard((tenant.id, ENROLLED))  # a lost index file: heal it now
        hits = [
            (gallery, hit)
            for gallery in (ENROLLED, REFERENCES)
            for hit in self.gallery(uow, tenant, gallery, skip=subject.id).search(
                v, self.policy.search_k
            )
            if hit.similarity >= self.policy.duplicate_threshold
        ]
        seen = set()
        for gallery, hit in sorted(hits, key=lambda gh: -gh[1].similarity):
            if hit.entry_id in seen:
                continue
            seen.add(hit.entry_id)
            other = uow.subjects.get(tenant.id, hit.entry_id)
            if other is not None and other.id == subject.id:
                continue
            if not self._still_there(uow, tenant.id, gallery, hit.entry_id, other) or other is None:
                continue
            if other.id_pseudonym is not None and other.id_pseudonym == subject.id_pseudonym:
                continue  # the same ID number: a second account, not another identity
            out.append(
                self._finding(
                    "duplicate_face",
                    ReasonCode.FRAUD_DUPLICATE_FACE,
                    other_subject_id=other.id,
                    gallery=gallery,
                    similarity=round(hit.similarity, 6),
                )
            )
        return out[:3]

    def _still_there(
        self, uow: UnitOfWork, tenant_id: str, gallery: str, entry_id: str, other: Subject | None
    ) -> bool:
        """Whether a hit in ``gallery`` still stands for a face the database holds; a stale
        entry (erased, swept, bound since) is dropped from the index and never reported."""
        if other is not None and other.status is not SubjectStatus.ERASED:
            if gallery == ENROLLED:
                ok = other.status is SubjectStatus.ENROLLED and any(
                    self._own(t.embedder)
                    for t in uow.templates.list_for_subject(tenant_id, entry_id)
                )
            else:
                ok = other.status is SubjectStatus.PENDING and bool(
                    uow.references.list_for_subject(tenant_id, entry_id)
                )
            if ok:
                return True
        self.indexes.index(tenant_id, gallery).remove(entry_id)
        return False

    def other_face(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, v: np.ndarray[Any, Any]
    ) -> list[Finding]:
        """The same ID number already bound to a face that does not match this one."""
        if subject.id_pseudonym is None:
            return []
        out = []
        skipped = 0
        for other in uow.subjects.list_by_pseudonym(tenant.id, subject.id_pseudonym):
            if other.id == subject.id or other.status is not SubjectStatus.ENROLLED:
                continue
            temps = uow.templates.list_for_subject(tenant.id, other.id)
            own = [t for t in temps if self._own(t.embedder)]
            if not own:  # bound with another network only: not comparable
                skipped += bool(temps)
                continue
            raw = self._ctx.vault.open_field(
                tenant, other, "templates", "template_enc", own[-1].id, own[-1].template_enc
            )
            bound = self._fits(raw)
            if bound is None:
                skipped += 1
                continue
            sim = float(self.verifier.score(v, bound))
            if sim < self.policy.same_id_threshold:
                out.append(
                    self._finding(
                        "id_number_other_face",
                        ReasonCode.FRAUD_ID_NUMBER_OTHER_FACE,
                        other_subject_id=other.id,
                        similarity=round(sim, 6),
                    )
                )
        if skipped:
            log.warning(
                "same-ID check skips faces of another network: tenant=%s network=%s count=%d",
                tenant.id,
                self.network,
                skipped,
            )
        return out[:3]

    def device_faces(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, device: str | None, now: datetime
    ) -> list[Finding]:
        if device is None:
            return []
        since = now - timedelta(seconds=self.policy.device_window_s)
        subjects = set(uow.enrol_signals.subjects_for_device(tenant.id, device, since))
        subjects.add(subject.id)
        if len(subjects) <= self.policy.device_max_subjects:
            return []
        return [
            self._finding(
                "device_many_faces",
                ReasonCode.FRAUD_DEVICE_MANY_FACES,
                subjects=len(subjects),
                window_s=self.policy.device_window_s,
            )
        ]

    def velocity(self, tenant: Tenant, keys: dict[str, str | None], now: datetime) -> list[Finding]:
        """Count this attempt per dimension in a sliding window (Redis or in process)."""
        out = []
        window = self.policy.velocity_window_s
        for dim, value in keys.items():
            if not value:
                continue
            n = self.counter.add_failure(f"vel:{tenant.id}:{dim}:{value}", window, now.timestamp())
            limit = self.policy.velocity_limits.get(dim, 0)
            if limit and n > limit:
                out.append(
                    self._finding(
                        "velocity",
                        ReasonCode.FRAUD_VELOCITY,
                        dimension=dim,
                        attempts=n,
                        window_s=window,
                    )
                )
        return out

    def batch_background(
        self, uow: UnitOfWork, tenant: Tenant, subject: Subject, desc: Any, now: datetime
    ) -> list[Finding]:
        since = now - timedelta(seconds=self.policy.background_window_s)
        vault = self._ctx.vault
        dek = vault.tenant_key(tenant)
        same = []
        for sig in uow.enrol_signals.recent(tenant.id, since, limit=self.policy.background_recent):
            if sig.background_enc is None or sig.subject_id == subject.id:
                continue
            raw = vault.open(
                dek, tenant, "enrol_signals", "background_enc", sig.id, sig.background_enc
            )
            sim = background.similarity(desc, background.from_bytes(raw))
            if sim >= self.policy.background_threshold:
                same.append(sig.subject_id)
        distinct = sorted(set(same))
        if len(distinct) < self.policy.background_min_matches:
            return []
        return [
            self._finding(
                "batch_background",
                ReasonCode.FRAUD_BATCH_BACKGROUND,
                matching_subjects=len(distinct),
                subject_ids=distinct[:10],
                window_s=self.policy.background_window_s,
            )
        ]

    # -- the hooks the service calls -----------------------------------------------------------

    def on_enrol(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject: Subject,
        template: bytes,
        now: datetime,
        *,
        device_id: str | None = None,
        client_ip: str | None = None,
    ) -> list[Finding]:
        """Screen a new subject's reference face; record the signal and the findings in ``uow``
        (the face checks need a template of this network: skipped, logged, otherwise)."""
        v = self.probe(template, "enrol")
        device, ip = self.hashed(tenant, "device", device_id), self.hashed(tenant, "ip", client_ip)
        faces = (
            []
            if v is None
            else [
                *self.blacklisted(uow, tenant, v),
                *self.duplicates(uow, tenant, subject, v),
                *self.other_face(uow, tenant, subject, v),
            ]
        )
        findings = [
            *faces,
            *self.device_faces(uow, tenant, subject, device, now),
            *self.velocity(
                tenant, {"id_number": subject.id_pseudonym, "device": device, "ip": ip}, now
            ),
        ]
        uow.enrol_signals.add(
            EnrolSignal(new_id(), tenant.id, subject.id, now, device_hash=device, ip_hash=ip)
        )
        self.save(uow, tenant, subject, None, findings, now, stage="enrol")
        return findings

    def on_capture(
        self,
        tenant: Tenant,
        session: Session,
        subject: Subject,
        template: bytes | None,
        frame: Any,
        now: datetime,
        *,
        device_id: str | None = None,
        client_ip: str | None = None,
    ) -> list[Finding]:
        """Screen one capture; returns its findings (plus, for an enrolment, those raised when
        the subject was created).  Nothing is stored here: :meth:`save` runs with the check."""
        device = self.hashed(tenant, "device", device_id)
        findings: list[Finding] = []
        with self._ctx.store() as uow:
            v = None if template is None else self.probe(template, "capture")
            if v is not None:
                findings += self.blacklisted(uow, tenant, v)
                if session.purpose is SessionPurpose.ENROL:
                    findings += self.duplicates(uow, tenant, subject, v)
            if session.purpose is SessionPurpose.ENROL and frame is not None:
                desc = background.descriptor(frame)
                findings += self.batch_background(uow, tenant, subject, desc, now)
                sig = EnrolSignal(new_id(), tenant.id, subject.id, now, device_hash=device)
                blob = self._ctx.vault.seal(
                    self._ctx.vault.tenant_key(tenant),
                    tenant,
                    "enrol_signals",
                    "background_enc",
                    sig.id,
                    background.to_bytes(desc),
                )
                uow.enrol_signals.add(EnrolSignal(**{**_fields(sig), "background_enc": blob}))
                findings += [
                    Finding(ReasonCode(f.code), f.action, {**f.evidence, "stage": "enrol"})
                    for f in uow.findings.list_for_subject(tenant.id, subject.id)
                    if f.check_id is None
                ]
            uow.commit()
        ip = self.hashed(tenant, "ip", client_ip)
        findings += self.velocity(tenant, {"subject": subject.id, "device": device, "ip": ip}, now)
        return _unique(findings)

    def save(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        subject: Subject,
        check_id: str | None,
        findings: list[Finding],
        now: datetime,
        *,
        stage: str = "capture",
    ) -> None:
        """Store and audit the findings (no-op without any) in ``uow``."""
        fresh = [f for f in findings if f.evidence.get("stage") != "enrol" or stage == "enrol"]
        if not fresh:
            return
        for f in fresh:
            uow.findings.add(
                FraudFinding(
                    id=new_id(),
                    tenant_id=tenant.id,
                    subject_id=subject.id,
                    code=f.code.value,
                    action=f.action,
                    policy_version=self.policy.version,
                    created_at=now,
                    check_id=check_id,
                    evidence={k: v for k, v in f.evidence.items() if k != "stage"},
                )
            )
        self._ctx.journal.audit(
            uow,
            tenant.id,
            "fraud.findings",
            subject.id,
            {
                "stage": stage,
                "check_id": check_id,
                "codes": [f.code.value for f in fresh],
                "actions": [f.action for f in fresh],
                "policy_version": self.policy.version,
            },
            now,
        )

    def record(
        self,
        tenant: Tenant,
        subject: Subject,
        check_id: str,
        findings: list[Finding],
        now: datetime,
    ) -> None:
        with self._ctx.store() as uow:
            self.save(uow, tenant, subject, check_id, findings, now)
            uow.commit()


def _fields(sig: EnrolSignal) -> dict[str, Any]:
    return {name: getattr(sig, name) for name in sig.__slots__}


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code.value, str(sorted(f.evidence.items())))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


__all__ = [
    "BLACKLIST",
    "ENROLLED",
    "GALLERIES",
    "REFERENCES",
    "Finding",
    "FraudGuard",
    "Healed",
    "adjust",
    "gallery_sweeper",
    "index_sealers",
]

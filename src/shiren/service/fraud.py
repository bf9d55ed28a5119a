"""Anti-fraud orchestration (issue 6): the identity-graph checks, blacklists and velocity that
run at enrolment and at every capture, as reason codes with evidence — never silent blocks.

What runs where (thresholds and actions from the versioned ``shiren/data/fraud.toml``):

* **enrolment** (reference photo): blacklist search, the same face enrolled under another ID
  number (1:N over the tenant's ``enrolled`` gallery), the same ID number already bound to a
  different face, one device enrolling many subjects, velocity per ID number / device / IP;
* **capture** (every submit): blacklist search with the live face; for an enrolment also the
  duplicate search with the live face and the batch-background check; velocity per subject and
  device.  Findings raised at enrolment are carried into the enrolment capture's decision.

Each finding is stored (``fraud_findings``: code, action, evidence of ids and scores only),
audited and appended to the check's reasons; the policy action makes the decision ``review``
(manual review queue) or ``fallback`` (``reject``: the face path is closed for this attempt).
The ``enrolled`` index holds one entry per bound subject (its latest template) under the
subject id; the ``blacklist`` index one entry per blacklist entry.  Both are rebuilt from the
sealed rows when they disagree with the database (blacklist) or on ``reindex``.

Galleries per network (docs/FRAUD.md): every gallery holds the templates of the service's
network only (``service.verifier.embedder``: its name and dimension), so a dlib template is never
scored against a MobileFaceNet one.  The rows it follows are those of that network: templates by
the name part of their ``embedder`` (``<name>@sha256:<hex>``); references by their ``embedder``
when recorded, else by their length (a reference stored before references recorded it); blacklist
entries by their length.  Rows of another network are skipped and counted
(:meth:`FraudGuard.stale_counts`); a probe of another dimension is skipped with a count-only log
line, never an error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shiren.domain.decisions import Decision, Outcome
from shiren.domain.entities import Session, SessionPurpose, Subject, SubjectStatus, Tenant, new_id
from shiren.domain.fraud import EnrolSignal, FraudFinding
from shiren.errors import ErrorCode, InputError, StateError
from shiren.fraud import background
from shiren.fraud.embedded import Sealer
from shiren.fraud.index import FaceIndex, IndexProvider, network_of, provider_for
from shiren.fraud.policy import FraudPolicy, load_fraud_policy
from shiren.reasons import ReasonCode
from shiren.storage.ports import UnitOfWork

if TYPE_CHECKING:
    from shiren.service.app import ShirenService

ENROLLED = "enrolled"
REFERENCES = "references"
"""Reference photos of subjects not bound yet: a ring enrolling one face under many ID numbers
is flagged before any of its enrolments passes."""
BLACKLIST = "blacklist"
GALLERIES = (ENROLLED, REFERENCES, BLACKLIST)

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


@dataclass(frozen=True, slots=True)
class Healed:
    """What one :meth:`FraudGuard.reconcile` changed (counts only)."""

    gallery: str
    added: int
    removed: int
    rebuilt: bool


class FraudGuard:
    """The anti-fraud checks of one :class:`~shiren.service.app.ShirenService`."""

    def __init__(
        self, service: ShirenService, indexes: IndexProvider, policy: FraudPolicy | None = None
    ) -> None:
        self.svc = service
        # the 1:N thresholds on the scale of the service's network (fraud.toml [networks.*])
        self.policy = (policy or load_fraud_policy()).for_network(
            service.verifier.embedder.info.name
        )
        self._reconciled: set[tuple[str, str]] = set()
        """(tenant, gallery) pairs this process has reconciled with the database."""
        self._reconcile_lock = threading.Lock()
        self._stale: dict[tuple[str, str], set[str]] = {}
        """(tenant, gallery) → ids of rows made by another network, found by the last
        reconcile (skipped by this network's gallery; see :meth:`stale_counts`)."""
        self._given = indexes
        self._scope = ("", 0)
        self._indexes = indexes
        self.indexes = indexes

    @property
    def network(self) -> str:
        """The name of the service's embedder network: its galleries are this network's."""
        return str(self.svc.verifier.embedder.info.name)

    @property
    def dim(self) -> int:
        """The template dimension of the service's embedder."""
        return int(self.svc.verifier.embedder.dim)

    @property
    def indexes(self) -> IndexProvider:
        """The galleries of the service's network (the provider given, seen through
        :func:`~shiren.fraud.index.provider_for`; re-scoped if the embedder changed)."""
        if self._scope != (self.network, self.dim):
            self.indexes = self._given
        return self._indexes

    @indexes.setter
    def indexes(self, provider: IndexProvider) -> None:
        scope = (self.network, self.dim)
        self._indexes = provider_for(provider, *scope)
        self._given, self._scope = provider, scope
        self._reconciled.clear()  # a new provider is checked again
        self._stale.clear()

    # -- helpers -----------------------------------------------------------------------------

    def hashed(self, tenant: Tenant, kind: str, value: str | None) -> str | None:
        """A keyed, tenant-scoped hash of a device id or IP address (never stored raw)."""
        if not value:
            return None
        key = self.svc.keys.pseudonym_key(tenant.id).key
        return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def _finding(self, name: str, code: ReasonCode, **evidence: Any) -> Finding:
        return Finding(code, self.policy.action(name), evidence)

    def _own(self, embedder: str | None) -> bool:
        """Whether a row's recorded ``embedder`` id is of this network (``None``: not
        recorded, the template's length decides)."""
        return embedder is None or network_of(embedder) == self.network

    def _fits(self, raw: bytes) -> np.ndarray[Any, Any] | None:
        """A stored template as a vector when it has this network's dimension."""
        if len(raw) != 4 * self.dim:
            return None
        return np.frombuffer(raw, dtype=np.float32)

    def probe(self, template: bytes, stage: str) -> np.ndarray[Any, Any] | None:
        """``template`` (float32 bytes) as a probe of this network's galleries; ``None`` (the
        1:N checks are skipped, logged by count and stage only) when it has another
        dimension: a template of another network must never fail a request."""
        v = self._fits(template)
        if v is None:
            log.warning(
                "face gallery probe of another dimension skipped: stage=%s network=%s count=1",
                stage,
                self.network,
            )
        return v

    def blacklist_index(self, uow: UnitOfWork, tenant: Tenant) -> FaceIndex:
        """The tenant's blacklist index, reconciled with the sealed rows on first use and
        whenever its size (plus the entries of another network it skips) disagrees with the
        table (another process changed the lists)."""
        index = self.gallery(uow, tenant, BLACKLIST)
        skipped = len(self._stale.get((tenant.id, BLACKLIST), ()))
        if len(index) + skipped != uow.blacklist.count(tenant.id):
            self.reconcile(uow, tenant, BLACKLIST)
        return index

    def gallery(
        self, uow: UnitOfWork, tenant: Tenant, name: str, *, skip: str | None = None
    ) -> FaceIndex:
        """The tenant's gallery ``name``; the first time this process uses it (an index file
        just loaded, a new worker) it is :meth:`reconcile`-d with the sealed rows (``skip``: the
        subject being enrolled in ``uow``, not committed yet, is left alone)."""
        if (tenant.id, name) not in self._reconciled:
            with self._reconcile_lock:  # one thread heals, the others then use the result
                if (tenant.id, name) not in self._reconciled:
                    self.reconcile(uow, tenant, name, skip=skip)
                    self._reconciled.add((tenant.id, name))
        return self.indexes.index(tenant.id, name)

    def expected_ids(self, uow: UnitOfWork, tenant_id: str, name: str) -> set[str]:
        """The ids gallery ``name`` must hold according to the database (ids only)."""
        if name == ENROLLED:
            return uow.templates.enrolled_subject_ids(tenant_id, network=self.network)
        if name == REFERENCES:
            return uow.references.pending_subject_ids(tenant_id)
        if name == BLACKLIST:
            return uow.blacklist.ids(tenant_id)
        raise InputError("unknown gallery", detail={"gallery": name})

    def vector(
        self, uow: UnitOfWork, tenant: Tenant, name: str, entry_id: str
    ) -> np.ndarray[Any, Any] | None:
        """The sealed template behind ``entry_id`` in gallery ``name``, opened (``None`` when
        the row is gone or of another network): a subject's latest bound template of this
        network, a pending subject's latest reference photo of it, a blacklist entry's
        template."""
        return self._entry(uow, tenant, name, entry_id)[0]

    def _entry(
        self, uow: UnitOfWork, tenant: Tenant, name: str, entry_id: str
    ) -> tuple[np.ndarray[Any, Any] | None, bool]:
        """``(vector, other_network)``: the vector as :meth:`vector`; ``other_network`` when
        the row is there but only of another network."""
        if name == BLACKLIST:
            entry = uow.blacklist.get(tenant.id, entry_id)
            if entry is None:
                return None, False
            raw = self.svc._open(
                self.svc._dek(tenant),
                tenant,
                "blacklist_entries",
                "template_enc",
                entry.id,
                entry.template_enc,
            )
            v = self._fits(raw)
            return v, v is None
        subject = uow.subjects.get(tenant.id, entry_id)
        if subject is None or subject.status is SubjectStatus.ERASED:
            return None, False
        table = "templates" if name == ENROLLED else "references"
        rows: list[Any] = (
            list(uow.templates.list_for_subject(tenant.id, entry_id))
            if name == ENROLLED
            else list(uow.references.list_for_subject(tenant.id, entry_id))
        )
        if not rows:
            return None, False
        key = self.svc._subject_key(tenant, subject)
        for row in reversed(rows):  # oldest first: the latest of this network is the entry
            if not self._own(getattr(row, "embedder", None)):
                continue
            raw = self.svc._open(key, tenant, table, "template_enc", row.id, row.template_enc)
            v = self._fits(raw)
            if v is not None:
                return v, False
        return None, True

    def reconcile(
        self, uow: UnitOfWork, tenant: Tenant, name: str, *, skip: str | None = None
    ) -> Healed:
        """Bring gallery ``name`` in line with the database: add the entries it misses (a crash
        between a commit and the index write), drop the ones the database no longer has (an
        erasure or retention sweep whose index write was lost, another process's sweep).

        Cheap when nothing is wrong: one query for the expected ids and a set comparison with
        the index's ids; only missing entries are opened.  An index that cannot list its ids
        (no ``ids()``) is checked with ``in`` and its size; when it holds entries it cannot
        name, it is rebuilt from the sealed rows.  Only rows of the service's network are
        added; the others are skipped and counted (:meth:`stale_counts`)."""
        index = self.indexes.index(tenant.id, name)
        known = self._stale.get((tenant.id, name), set()) if name == BLACKLIST else set()
        listing = getattr(index, "ids", None)
        # the index first, the database second: index writes follow commits, so an entry read
        # here was committed before the query below sees the table (another worker's change in
        # between shows up as "missing" and is re-added harmlessly, never as "extra")
        have = set(listing()) if callable(listing) else None
        expected = self.expected_ids(uow, tenant.id, name) - {skip}
        rebuilt = False
        if have is not None:
            missing, extra = expected - have, have - expected - {skip}
        else:
            missing = {e for e in expected if e not in index}
            extra = set()
            mine = int(skip is not None and skip in index)
            if len(index) - mine > len(expected) - len(missing):
                self.indexes.drop(tenant.id, name)
                index = self.indexes.index(tenant.id, name)
                missing, rebuilt = set(expected), True
        for entry_id in sorted(extra):
            index.remove(entry_id)
        added = 0
        stale = known & expected  # blacklist entries never change: not opened again
        for entry_id in sorted(missing - stale):
            v, other = self._entry(uow, tenant, name, entry_id)
            if v is not None:
                index.add(entry_id, v)
                added += 1
            elif other:
                stale.add(entry_id)
        self._note_stale(tenant.id, name, stale)
        healed = Healed(name, added, len(extra), rebuilt)
        if added or extra or rebuilt:
            index.persist()
            log.warning(
                "face gallery healed: tenant=%s gallery=%s added=%d removed=%d rebuilt=%s",
                tenant.id,
                name,
                healed.added,
                healed.removed,
                rebuilt,
            )
        return healed

    def _note_stale(self, tenant_id: str, name: str, stale: set[str]) -> None:
        """Remember the rows of another network the gallery skips; log (counts only) when
        their number changed."""
        before = self._stale.get((tenant_id, name))
        self._stale[(tenant_id, name)] = stale
        if stale and (before is None or len(before) != len(stale)):
            log.warning(
                "face gallery skips rows of another network: tenant=%s gallery=%s network=%s "
                "count=%d",
                tenant_id,
                name,
                self.network,
                len(stale),
            )

    def stale_counts(self, tenant: Tenant) -> dict[str, int]:
        """Per gallery, how many rows the database holds that this network's gallery skips
        because another network made them (counts only): enrolled subjects with no template of
        this network (they re-enrol or step up), pending subjects whose reference photos are
        all of another network, blacklist entries made with another network (re-add them from
        a photo: until then they match nothing)."""
        with self.svc.store() as uow:
            for name in (REFERENCES, BLACKLIST):
                self.gallery(uow, tenant, name)
            everyone = uow.templates.enrolled_subject_ids(tenant.id)
            mine = uow.templates.enrolled_subject_ids(tenant.id, network=self.network)
        return {
            ENROLLED: len(everyone - mine),
            REFERENCES: len(self._stale.get((tenant.id, REFERENCES), ())),
            BLACKLIST: len(self._stale.get((tenant.id, BLACKLIST), ())),
        }

    def reconcile_all(self, tenant: Tenant) -> list[Healed]:
        """Reconcile every gallery of ``tenant`` now (operators, tests)."""
        with self.svc.store() as uow:
            out = [self.reconcile(uow, tenant, name) for name in GALLERIES]
        self._reconciled.update((tenant.id, name) for name in GALLERIES)
        return out

    def reindex_enrolled(self, uow: UnitOfWork, tenant: Tenant) -> int:
        """Rebuild the tenant's enrolled gallery from the sealed templates (each enrolled
        subject's latest); returns its size."""
        self.indexes.drop(tenant.id, ENROLLED)
        self.reconcile(uow, tenant, ENROLLED)
        self._reconciled.add((tenant.id, ENROLLED))
        return len(self.indexes.index(tenant.id, ENROLLED))

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
            key = self.svc._subject_key(tenant, other)
            raw = self.svc._open(
                key, tenant, "templates", "template_enc", own[-1].id, own[-1].template_enc
            )
            bound = self._fits(raw)
            if bound is None:
                skipped += 1
                continue
            sim = float(self.svc.verifier.score(v, bound))
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
            n = self.svc.counter.add_failure(
                f"vel:{tenant.id}:{dim}:{value}", window, now.timestamp()
            )
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
        dek = self.svc._dek(tenant)
        same = []
        for sig in uow.enrol_signals.recent(tenant.id, since, limit=self.policy.background_recent):
            if sig.background_enc is None or sig.subject_id == subject.id:
                continue
            raw = self.svc._open(
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

    def enrolled(self, tenant: Tenant, subject_id: str, template: bytes) -> None:
        """After the enrolment committed: its reference photo joins the references gallery
        (a crash before this line leaves a *missing* entry, which :meth:`reconcile` adds)."""
        v = self.probe(template, "enrolled")
        if v is None:
            return
        with self._deferred(tenant.id, REFERENCES):
            self.indexes.index(tenant.id, REFERENCES).add(subject_id, v)

    @contextmanager
    def _deferred(self, tenant_id: str, *galleries: str) -> Iterator[None]:
        """An index write after a commit: if it fails (the index store is down, a full disk) the
        decision stands — the row is the truth — and the gallery is reconciled at its next use
        instead of failing a request whose transaction already committed."""
        try:
            yield
        except Exception as exc:  # any index failure: heal at the next use, not here
            self._reconciled.difference_update((tenant_id, g) for g in galleries)
            log.warning(
                "face gallery write deferred to the next reconcile (%s)", type(exc).__name__
            )

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
        with self.svc.store() as uow:
            v = None if template is None else self.probe(template, "capture")
            if v is not None:
                findings += self.blacklisted(uow, tenant, v)
                if session.purpose is SessionPurpose.ENROL:
                    findings += self.duplicates(uow, tenant, subject, v)
            if session.purpose is SessionPurpose.ENROL and frame is not None:
                desc = background.descriptor(frame)
                findings += self.batch_background(uow, tenant, subject, desc, now)
                sig = EnrolSignal(new_id(), tenant.id, subject.id, now, device_hash=device)
                blob = self.svc._seal(
                    self.svc._dek(tenant),
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
        self.svc._audit(
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
        with self.svc.store() as uow:
            self.save(uow, tenant, subject, check_id, findings, now)
            uow.commit()

    def bound(self, tenant: Tenant, subject_id: str, template: bytes) -> None:
        """After a bind committed: the face is now the subject's entry in the enrolled gallery
        (index writes follow the commit, so another worker's :meth:`reconcile` never drops an
        entry whose transaction is still open).  A template of another network changes
        nothing here (logged by count): this network's gallery cannot hold it."""
        v = self.probe(template, "bound")
        if v is None:
            return
        with self._deferred(tenant.id, REFERENCES, ENROLLED):
            self.indexes.index(tenant.id, REFERENCES).remove(subject_id)
            self.indexes.index(tenant.id, ENROLLED).add(subject_id, v)

    def forget(self, tenant_id: str, subject_id: str) -> None:
        """Erasure: the subject leaves the galleries, those of every network (a gallery of a
        network the service no longer runs still holds its face).  A failure is raised (the
        lender retries the idempotent erasure) and the galleries are reconciled at their next
        use anyway."""
        try:
            for gallery in (ENROLLED, REFERENCES):
                self.indexes.index(tenant_id, gallery).remove(subject_id)
                self._remove_everywhere(tenant_id, gallery, subject_id, keep=set())
        except Exception:
            self._reconciled.difference_update({(tenant_id, ENROLLED), (tenant_id, REFERENCES)})
            raise

    def _remove_everywhere(
        self, tenant_id: str, gallery: str, entry_id: str, *, keep: set[str]
    ) -> None:
        """Take ``entry_id`` out of ``gallery`` of every network but ``keep`` (providers that
        can reach other networks' galleries: the embedded and pgvector ones)."""
        remove = getattr(self.indexes, "remove_everywhere", None)
        if callable(remove):
            remove(tenant_id, gallery, entry_id, keep=keep)

    def swept(self, tenant_id: str, subject_ids: set[str]) -> None:
        """After a retention sweep deleted templates of ``subject_ids``: a subject with no
        template of a network left leaves that network's enrolled gallery; one that still has
        a template of this network keeps an entry for its latest remaining one (the expired one
        may have been it)."""
        with self.svc.store() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None:
                return
            index = self.indexes.index(tenant_id, ENROLLED)
            for subject_id in sorted(subject_ids):
                left = {
                    network_of(t.embedder)
                    for t in uow.templates.list_for_subject(tenant_id, subject_id)
                }
                self._remove_everywhere(tenant_id, ENROLLED, subject_id, keep=left | {self.network})
                v = self.vector(uow, tenant, ENROLLED, subject_id) if self.network in left else None
                if v is None:
                    index.remove(subject_id)
                else:
                    index.add(subject_id, v)
            index.persist()


def gallery_sweeper(engine: Any) -> Callable[[str, set[str]], None] | None:
    """For the ``shiren retention sweep`` cron (no models, no service): on PostgreSQL the
    galleries live in the database (pgvector), so each swept subject leaves the enrolled
    gallery of every network it has no template of any more, right here.  A subject that still
    has a (newer) template of a network keeps its entry there.  ``None`` on SQLite: the
    embedded index belongs to the running server, which drops stale entries when it next
    reconciles (start-up, a hit)."""
    if engine.dialect.name != "postgresql":
        return None
    from shiren.fraud.pgvector import PgVectorProvider
    from shiren.storage.sql import SqlStore

    provider = PgVectorProvider(engine)
    provider.ensure()
    store = SqlStore(engine)

    def forget_swept(tenant_id: str, subject_ids: set[str]) -> None:
        with store() as uow:
            left = {
                subject_id: {
                    network_of(t.embedder)
                    for t in uow.templates.list_for_subject(tenant_id, subject_id)
                }
                for subject_id in sorted(subject_ids)
            }
        for subject_id, networks in left.items():
            provider.remove_everywhere(tenant_id, ENROLLED, subject_id, keep=networks)

    return forget_swept


def index_sealers(service: ShirenService) -> tuple[Sealer, Sealer]:
    """Seal / open the embedded index files with each tenant's data key."""

    def dek(tenant_id: str) -> Any:
        # the row the service last used (it is inside a unit of work when the index changes:
        # a second one would deadlock on SQLite); read it only when none was used yet
        tenant = service.tenant_row(tenant_id)
        if tenant is None:
            with service.store() as uow:
                tenant = uow.tenants.get(tenant_id)
        if tenant is None:
            raise StateError("tenant not found", code=ErrorCode.RECORD_NOT_FOUND)
        return tenant, service._dek(tenant)

    def seal(tenant_id: str, purpose: str, data: bytes) -> bytes:
        tenant, key = dek(tenant_id)
        return service._seal(key, tenant, "face_index", purpose, tenant_id, data)

    def open_(tenant_id: str, purpose: str, blob: bytes) -> bytes:
        tenant, key = dek(tenant_id)
        return service._open(key, tenant, "face_index", purpose, tenant_id, blob)

    return seal, open_


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

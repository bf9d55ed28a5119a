"""The 1:N face galleries of a running service: what each holds, and keeping them true.

Three galleries per tenant (:mod:`shiren.fraud.index` providers: the embedded IVF index beside a
SQLite file, or pgvector on PostgreSQL):

* ``enrolled`` — one entry per bound subject (its latest template) under the subject id;
* ``references`` — reference photos of subjects not bound yet, so a ring enrolling one face
  under many ID numbers is flagged before any of its enrolments passes;
* ``blacklist`` — one entry per blacklist entry.

The database is the truth; a gallery is a second copy that index writes keep up with *after* the
commit.  A crash in between, another worker's sweep, or a lost index file leaves a gallery that
disagrees, so each gallery is reconciled with the sealed rows on its first use in a process and
when a hit or a count says it is stale (:meth:`Galleries.reconcile`).

Galleries per network (docs/FRAUD.md): every gallery holds the templates of the service's
network only (its embedder's name and dimension), so a dlib template is never scored against a
MobileFaceNet one.  The rows it follows are those of that network: templates by the name part of
their ``embedder`` (``<name>@sha256:<hex>``); references by their ``embedder`` when recorded,
else by their length (a reference stored before references recorded it); blacklist entries by
their length.  Rows of another network are skipped and counted (:meth:`Galleries.stale_counts`);
a probe of another dimension is skipped with a count-only log line, never an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from shiren.domain.entities import SubjectStatus, Tenant
from shiren.errors import ErrorCode, InputError, StateError
from shiren.fraud.embedded import Sealer
from shiren.fraud.index import FaceIndex, IndexProvider, network_of, provider_for
from shiren.service.context import Context
from shiren.service.vault import KeyVault
from shiren.storage.ports import UnitOfWork, UnitOfWorkFactory
from shiren.verifier import Verifier

ENROLLED = "enrolled"
REFERENCES = "references"
"""Reference photos of subjects not bound yet: a ring enrolling one face under many ID numbers
is flagged before any of its enrolments passes."""
BLACKLIST = "blacklist"
GALLERIES = (ENROLLED, REFERENCES, BLACKLIST)

log = logging.getLogger("shiren.fraud")


@dataclass(frozen=True, slots=True)
class Healed:
    """What one :meth:`Galleries.reconcile` changed (counts only)."""

    gallery: str
    added: int
    removed: int
    rebuilt: bool


class Galleries:
    """The galleries of one service's network (see the module docstring)."""

    def __init__(self, ctx: Context, *, verifier: Verifier, indexes: IndexProvider) -> None:
        self._ctx = ctx
        self.verifier = verifier
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
        return str(self.verifier.embedder.info.name)

    @property
    def dim(self) -> int:
        """The template dimension of the service's embedder."""
        return int(self.verifier.embedder.dim)

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

    # -- reading and healing ----------------------------------------------------------------

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
            vault = self._ctx.vault
            raw = vault.open(
                vault.tenant_key(tenant),
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
        key = self._ctx.vault.subject_key(tenant, subject)
        for row in reversed(rows):  # oldest first: the latest of this network is the entry
            if not self._own(getattr(row, "embedder", None)):
                continue
            raw = self._ctx.vault.open(key, tenant, table, "template_enc", row.id, row.template_enc)
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
        with self._ctx.store() as uow:
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
        with self._ctx.store() as uow:
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

    # -- index writes after commits ---------------------------------------------------------

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
        with self._ctx.store() as uow:
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


def index_sealers(vault: KeyVault, store: UnitOfWorkFactory | None = None) -> tuple[Sealer, Sealer]:
    """Seal / open the embedded index files with each tenant's data key (``store``: where to
    read a tenant row the vault has not seen yet)."""

    def dek(tenant_id: str) -> Any:
        # the row the vault last used (the service is inside a unit of work when the index
        # changes: a second one would deadlock on SQLite); read it only when none was used yet
        tenant = vault.tenant_row(tenant_id)
        if tenant is None and store is not None:
            with store() as uow:
                tenant = uow.tenants.get(tenant_id)
        if tenant is None:
            raise StateError("tenant not found", code=ErrorCode.RECORD_NOT_FOUND)
        return tenant, vault.tenant_key(tenant)

    def seal(tenant_id: str, purpose: str, data: bytes) -> bytes:
        tenant, key = dek(tenant_id)
        return vault.seal(key, tenant, "face_index", purpose, tenant_id, data)

    def open_(tenant_id: str, purpose: str, blob: bytes) -> bytes:
        tenant, key = dek(tenant_id)
        return vault.open(key, tenant, "face_index", purpose, tenant_id, blob)

    return seal, open_


__all__ = [
    "BLACKLIST",
    "ENROLLED",
    "GALLERIES",
    "REFERENCES",
    "Galleries",
    "Healed",
    "gallery_sweeper",
    "index_sealers",
]

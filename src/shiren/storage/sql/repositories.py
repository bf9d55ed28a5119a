"""SQLAlchemy Core repositories: the SQL twins of :mod:`shiren.storage.memory`.

Every state change is one conditional ``UPDATE … WHERE <expected state> RETURNING``: of N
concurrent callers exactly one sees a row come back, under READ COMMITTED on PostgreSQL as under
SQLite's single writer.  Only when no row comes back do we read again, to tell the caller *why*
(missing, wrong nonce, already used, wrong state).

Inserts run inside a SAVEPOINT so that a unique or foreign-key violation becomes a typed
:class:`~shiren.errors.StateError` and leaves the unit of work usable (PostgreSQL would otherwise
abort the whole transaction), matching the in-memory reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Executable, Row, Table, delete, func, or_, select, update
from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shiren.domain.entities import (
    AUDIT_GENESIS_HASH,
    AuditDraft,
    AuditEvent,
    Check,
    Consent,
    Decision,
    DeliveryStatus,
    Evidence,
    LendingEvent,
    Reference,
    ReferenceKind,
    ReviewItem,
    ReviewOutcome,
    ReviewStatus,
    Session,
    SessionPurpose,
    SessionStatus,
    StepUpDecided,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
    WebhookDelivery,
)
from shiren.domain.fallback import (
    FallbackFlow,
    FallbackStatus,
    FallbackTrigger,
    PayoutCheck,
    PayoutOutcome,
)
from shiren.errors import ErrorCode, ServiceError, StateError
from shiren.storage.ports import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP,
    ChainHasher,
    already_used,
    check_sealed_column,
    conflict,
    duplicate,
    nonce_mismatch,
    not_found,
    retry_delay,
)
from shiren.storage.sql import schema as s

if TYPE_CHECKING:
    from shiren.storage.sql.uow import SqlUnitOfWork

E = TypeVar("E")

_UNIQUE_VIOLATION = "23505"
_FK_VIOLATION = "23503"


def _integrity_error(exc: IntegrityError, what: str) -> StateError:
    """Map a driver's integrity error to the contract's codes, on either backend."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    text = str(orig)
    if sqlstate == _UNIQUE_VIOLATION or "UNIQUE constraint failed" in text:
        return duplicate(what)
    if sqlstate == _FK_VIOLATION or "FOREIGN KEY constraint failed" in text:
        return not_found(f"parent of {what}")
    return StateError(
        f"{what} violates a constraint", code=ErrorCode.RECORD_CONFLICT, detail={"entity": what}
    )


def _disk_full(exc: DBAPIError) -> bool:
    """SQLite's ``SQLITE_FULL`` (errno 13), PostgreSQL's ``disk_full`` (SQLSTATE 53100)."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) == "53100"


def unavailable(exc: DBAPIError) -> ServiceError:
    """Lost connection, lock timeout, server shutting down, disk full: the caller may retry
    later (503 + Retry-After).  A full disk has its own code (``storage.full``) so an operator
    alert can tell it from an outage; nothing was written (the transaction rolls back)."""
    if _disk_full(exc):
        return ServiceError(
            "storage is full",
            code=ErrorCode.STORAGE_FULL,
            detail={"driver_error": type(exc.orig).__name__},
        )
    return ServiceError(
        "storage is unavailable",
        code=ErrorCode.STORAGE_UNAVAILABLE,
        detail={"driver_error": type(exc.orig).__name__},
    )


def _loader(cls: Callable[..., E], **convert: Callable[[Any], Any]) -> Callable[[Row[Any]], E]:
    """Row → entity: column names equal field names; ``convert`` turns stored strings back
    into enums (and JSON lists into tuples)."""

    def load(row: Row[Any]) -> E:
        values = dict(row._mapping)
        for name, fn in convert.items():
            if values[name] is not None:
                values[name] = fn(values[name])
        return cls(**values)

    return load


_tenant = _loader(Tenant, status=TenantStatus)
_subject = _loader(Subject, status=SubjectStatus)
_consent = _loader(Consent)
_template = _loader(Template)
_reference = _loader(Reference, kind=ReferenceKind)
_session = _loader(Session, purpose=SessionPurpose, status=SessionStatus)
_check = _loader(Check, decision=Decision, reasons=tuple)
_evidence = _loader(Evidence)
_lending_event = _loader(LendingEvent, decided=StepUpDecided)
_review = _loader(ReviewItem, status=ReviewStatus, outcome=ReviewOutcome)
_delivery = _loader(WebhookDelivery, status=DeliveryStatus)
_audit = _loader(AuditEvent)
_fallback = _loader(
    FallbackFlow, status=FallbackStatus, cause=FallbackTrigger, steps=tuple, reasons=tuple
)
_payout = _loader(PayoutCheck, outcome=PayoutOutcome, reasons=tuple, mismatched=tuple)


def _values(entity: Any, **override: Any) -> dict[str, Any]:
    """Entity → column values (enums stored as their string value)."""
    out: dict[str, Any] = {}
    for name in entity.__slots__:
        value = getattr(entity, name)
        out[name] = value.value if isinstance(value, Enum) else value
    out.update(override)
    return out


class _SqlRepo:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def _exec(self, stmt: Executable) -> Result[Any]:
        try:
            return self._uow.connection().execute(stmt)
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def _subject_ids_with_status(
        self, t: Table, tenant_id: str, status: SubjectStatus, *, network: str | None = None
    ) -> set[str]:
        """Subjects of ``tenant_id`` in ``status`` that have a row in ``t`` (a table with
        ``tenant_id`` and ``subject_id`` columns); ``network``: only rows whose ``embedder``
        (``<network>@sha256:<hex>``) names that network."""
        subj = s.subjects
        stmt = (
            select(t.c.subject_id)
            .distinct()
            .join(subj, subj.c.id == t.c.subject_id)
            .where(
                t.c.tenant_id == tenant_id,
                subj.c.tenant_id == tenant_id,
                subj.c.status == status.value,
            )
        )
        if network is not None:
            stmt = stmt.where(
                or_(
                    t.c.embedder == network, t.c.embedder.startswith(f"{network}@", autoescape=True)
                )
            )
        return set(self._exec(stmt).scalars().all())

    def _rowcount(self, stmt: Executable) -> int:
        result = self._exec(stmt)
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    def _insert(self, table: Table, values: Mapping[str, Any], what: str) -> None:
        conn: Connection = self._uow.connection()
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(**values))
        except IntegrityError as exc:
            raise _integrity_error(exc, what) from None
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def _one(self, stmt: Executable, load: Callable[[Row[Any]], E]) -> E | None:
        row = self._exec(stmt).first()
        return None if row is None else load(row)

    def _all(self, stmt: Executable, load: Callable[[Row[Any]], E]) -> list[E]:
        return [load(row) for row in self._exec(stmt).all()]


class SqlTenantRepository(_SqlRepo):
    t = s.tenants

    def add(self, tenant: Tenant) -> None:
        self._insert(self.t, _values(tenant), "tenant")

    def get(self, tenant_id: str) -> Tenant | None:
        return self._one(select(self.t).where(self.t.c.id == tenant_id), _tenant)

    def get_by_api_key_hash(self, api_key_hash: str) -> Tenant | None:
        return self._one(select(self.t).where(self.t.c.api_key_hash == api_key_hash), _tenant)

    def list_all(self) -> list[Tenant]:
        return self._all(select(self.t).order_by(self.t.c.created_at, self.t.c.id), _tenant)

    def _update(self, tenant_id: str, *where: Any, **values: Any) -> Tenant | None:
        stmt = (
            update(self.t)
            .where(self.t.c.id == tenant_id, *where)
            .values(**values)
            .returning(*self.t.c)
        )
        return self._one(stmt, _tenant)

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        new = self._update(tenant_id, status=status.value)
        if new is None:
            raise not_found("tenant")
        return new

    def set_api_key_hash(self, tenant_id: str, api_key_hash: str) -> Tenant:
        conn = self._uow.connection()
        try:
            with conn.begin_nested():
                new = self._update(tenant_id, api_key_hash=api_key_hash)
        except IntegrityError as exc:
            raise _integrity_error(exc, "tenant api key") from None
        if new is None:
            raise not_found("tenant")
        return new

    def set_webhook(self, tenant_id: str, *, url: str | None, secret_enc: bytes | None) -> Tenant:
        new = self._update(tenant_id, webhook_url=url, webhook_secret_enc=secret_enc)
        if new is None:
            raise not_found("tenant")
        return new

    def rotate_dek(
        self, tenant_id: str, *, wrapped_dek: bytes, dek_version: int, expected_version: int
    ) -> Tenant:
        new = self._update(
            tenant_id,
            self.t.c.dek_version == expected_version,
            wrapped_dek=wrapped_dek,
            dek_version=dek_version,
        )
        if new is not None:
            return new
        current = self.get(tenant_id)
        if current is None:
            raise not_found("tenant")
        raise conflict("tenant dek", str(expected_version), str(current.dek_version))


class SqlSubjectRepository(_SqlRepo):
    t = s.subjects

    def add(self, subject: Subject) -> None:
        self._insert(self.t, _values(subject), "subject")

    def get(self, tenant_id: str, subject_id: str) -> Subject | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == subject_id)
        return self._one(stmt, _subject)

    def get_by_external_ref(self, tenant_id: str, external_ref: str) -> Subject | None:
        stmt = select(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.external_ref == external_ref
        )
        return self._one(stmt, _subject)

    def list_by_pseudonym(self, tenant_id: str, id_pseudonym: str) -> list[Subject]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.id_pseudonym == id_pseudonym)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _subject)

    def _update(
        self, tenant_id: str, subject_id: str, *where: Any, **values: Any
    ) -> Subject | None:
        stmt = (
            update(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.id == subject_id, *where)
            .values(**values)
            .returning(*self.t.c)
        )
        return self._one(stmt, _subject)

    def _why(self, tenant_id: str, subject_id: str, expected: str) -> StateError:
        current = self.get(tenant_id, subject_id)
        if current is None:
            return not_found("subject")
        return conflict("subject", expected, str(current.status))

    def set_status(
        self,
        tenant_id: str,
        subject_id: str,
        status: SubjectStatus,
        *,
        expected: SubjectStatus | None = None,
    ) -> Subject:
        where = [self.t.c.status != SubjectStatus.ERASED.value]
        if expected is not None:
            where.append(self.t.c.status == expected.value)
        new = self._update(tenant_id, subject_id, *where, status=status.value)
        if new is None:
            raise self._why(tenant_id, subject_id, str(expected or "not erased"))
        return new

    def update_identity(
        self,
        tenant_id: str,
        subject_id: str,
        *,
        id_pseudonym: str | None,
        id_number_enc: bytes | None,
        name_enc: bytes | None,
    ) -> Subject:
        new = self._update(
            tenant_id,
            subject_id,
            self.t.c.status != SubjectStatus.ERASED.value,
            id_pseudonym=id_pseudonym,
            id_number_enc=id_number_enc,
            name_enc=name_enc,
        )
        if new is None:
            raise self._why(tenant_id, subject_id, "not erased")
        return new

    def erase(self, tenant_id: str, subject_id: str, at: datetime) -> Subject:
        new = self._update(
            tenant_id,
            subject_id,
            self.t.c.status != SubjectStatus.ERASED.value,
            status=SubjectStatus.ERASED.value,
            erased_at=at,
            id_pseudonym=None,
            id_number_enc=None,
            name_enc=None,
            wrapped_key=None,  # crypto-shredding: the subject key is gone for good
        )
        if new is not None:
            return new
        current = self.get(tenant_id, subject_id)
        if current is None:
            raise not_found("subject")
        return current


class SqlConsentRepository(_SqlRepo):
    t = s.consents

    def add(self, consent: Consent) -> None:
        self._insert(self.t, _values(consent), "consent")

    def get(self, tenant_id: str, consent_id: str) -> Consent | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == consent_id)
        return self._one(stmt, _consent)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Consent]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.granted_at, self.t.c.id)
        )
        return self._all(stmt, _consent)

    def withdraw(self, tenant_id: str, consent_id: str, at: datetime) -> Consent:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == consent_id,
                self.t.c.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=at)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _consent)
        if new is not None:
            return new
        if self.get(tenant_id, consent_id) is None:
            raise not_found("consent")
        raise conflict("consent", "granted", "withdrawn")


class SqlTemplateRepository(_SqlRepo):
    t = s.templates

    def add(self, template: Template) -> None:
        self._insert(self.t, _values(template), "template")

    def get(self, tenant_id: str, template_id: str) -> Template | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == template_id)
        return self._one(stmt, _template)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Template]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _template)

    def delete(self, tenant_id: str, template_id: str) -> bool:
        stmt = delete(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == template_id)
        return self._rowcount(stmt) > 0

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        stmt = delete(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id
        )
        return self._rowcount(stmt)

    def count(self, tenant_id: str) -> int:
        stmt = select(func.count()).select_from(self.t).where(self.t.c.tenant_id == tenant_id)
        return int(self._exec(stmt).scalar_one())

    def list_for_tenant(
        self, tenant_id: str, *, after_id: str = "", limit: int = 1000
    ) -> list[Template]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.id > after_id)
            .order_by(self.t.c.id)
            .limit(max(0, limit))
        )
        return self._all(stmt, _template)

    def count_all(self) -> int:
        return int(self._exec(select(func.count()).select_from(self.t)).scalar_one())

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        stmt = delete(self.t).where(self.t.c.expires_at.is_not(None), self.t.c.expires_at < now)
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)

    def enrolled_subject_ids(self, tenant_id: str, *, network: str | None = None) -> set[str]:
        return self._subject_ids_with_status(
            self.t, tenant_id, SubjectStatus.ENROLLED, network=network
        )

    def expired_subject_ids(self, now: datetime, *, tenant_id: str | None = None) -> set[str]:
        stmt = (
            select(self.t.c.subject_id)
            .distinct()
            .where(self.t.c.expires_at.is_not(None), self.t.c.expires_at < now)
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return set(self._exec(stmt).scalars().all())


class SqlReferenceRepository(_SqlRepo):
    t = s.subject_references

    def pending_subject_ids(self, tenant_id: str) -> set[str]:
        return self._subject_ids_with_status(self.t, tenant_id, SubjectStatus.PENDING)

    def add(self, reference: Reference) -> None:
        self._insert(self.t, _values(reference), "reference")

    def get(self, tenant_id: str, reference_id: str) -> Reference | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == reference_id)
        return self._one(stmt, _reference)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Reference]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _reference)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        stmt = delete(self.t).where(
            self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id
        )
        return self._rowcount(stmt)


class SqlSessionRepository(_SqlRepo):
    t = s.sessions

    def add(self, session: Session) -> None:
        self._insert(self.t, _values(session), "session")

    def get(self, tenant_id: str, session_id: str) -> Session | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == session_id)
        return self._one(stmt, _session)

    def get_by_nonce(self, tenant_id: str, nonce: str) -> Session | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.nonce == nonce)
        return self._one(stmt, _session)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Session]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _session)

    def _transition(
        self, tenant_id: str, session_id: str, *where: Any, status: SessionStatus
    ) -> Session | None:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == session_id,
                self.t.c.status == SessionStatus.OPEN.value,
                *where,
            )
            .values(status=status.value)
            .returning(*self.t.c)
        )
        return self._one(stmt, _session)

    def mark_used(self, tenant_id: str, session_id: str, nonce: str) -> Session:
        new = self._transition(
            tenant_id, session_id, self.t.c.nonce == nonce, status=SessionStatus.USED
        )
        if new is not None:
            return new
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        if current.nonce != nonce:
            raise nonce_mismatch()
        if current.status is SessionStatus.USED:
            raise already_used()
        raise conflict("session", str(SessionStatus.OPEN), str(current.status))

    def expire(self, tenant_id: str, session_id: str) -> Session:
        new = self._transition(tenant_id, session_id, status=SessionStatus.EXPIRED)
        if new is not None:
            return new
        current = self.get(tenant_id, session_id)
        if current is None:
            raise not_found("session")
        raise conflict("session", str(SessionStatus.OPEN), str(current.status))

    def expire_due(self, now: datetime, *, tenant_id: str | None = None) -> int:
        stmt = (
            update(self.t)
            .where(self.t.c.status == SessionStatus.OPEN.value, self.t.c.expires_at < now)
            .values(status=SessionStatus.EXPIRED.value)
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


class SqlCheckRepository(_SqlRepo):
    t = s.checks

    def add(self, check: Check) -> None:
        self._insert(self.t, _values(check, reasons=list(check.reasons)), "check")

    def get(self, tenant_id: str, check_id: str) -> Check | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == check_id)
        return self._one(stmt, _check)

    def _list(self, tenant_id: str, column: str, value: str) -> list[Check]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c[column] == value)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _check)

    def list_for_session(self, tenant_id: str, session_id: str) -> list[Check]:
        return self._list(tenant_id, "session_id", session_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Check]:
        return self._list(tenant_id, "subject_id", subject_id)


class SqlEvidenceRepository(_SqlRepo):
    t = s.evidence

    def add(self, evidence: Evidence) -> None:
        self._insert(self.t, _values(evidence), "evidence")

    def get(self, tenant_id: str, evidence_id: str) -> Evidence | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == evidence_id)
        return self._one(stmt, _evidence)

    def list_for_check(self, tenant_id: str, check_id: str) -> list[Evidence]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.check_id == check_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _evidence)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = (
            select(s.checks.c.id)
            .where(s.checks.c.tenant_id == tenant_id, s.checks.c.subject_id == subject_id)
            .scalar_subquery()
        )
        stmt = delete(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.check_id.in_(checks))
        return self._rowcount(stmt)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        stmt = delete(self.t).where(self.t.c.expires_at < now)
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


class SqlLendingEventRepository(_SqlRepo):
    t = s.lending_events

    def add(self, event: LendingEvent) -> None:
        self._insert(self.t, _values(event), "lending event")

    def get(self, tenant_id: str, event_id: str) -> LendingEvent | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == event_id)
        return self._one(stmt, _lending_event)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[LendingEvent]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _lending_event)


class SqlReviewRepository(_SqlRepo):
    t = s.review_items

    def add(self, item: ReviewItem) -> None:
        self._insert(self.t, _values(item), "review item")

    def get(self, tenant_id: str, item_id: str) -> ReviewItem | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == item_id)
        return self._one(stmt, _review)

    def list_by_status(
        self, tenant_id: str, status: ReviewStatus, *, limit: int = 100
    ) -> list[ReviewItem]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.status == status.value)
            .order_by(self.t.c.created_at, self.t.c.id)
            .limit(limit)
        )
        return self._all(stmt, _review)

    def _update(
        self, tenant_id: str, item_id: str, allowed: Sequence[ReviewStatus], **values: Any
    ) -> ReviewItem | None:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == item_id,
                self.t.c.status.in_([x.value for x in allowed]),
            )
            .values(**values)
            .returning(*self.t.c)
        )
        return self._one(stmt, _review)

    def _why(self, tenant_id: str, item_id: str, expected: str) -> StateError:
        current = self.get(tenant_id, item_id)
        if current is None:
            return not_found("review item")
        return conflict("review item", expected, str(current.status))

    def assign(self, tenant_id: str, item_id: str, reviewer: str) -> ReviewItem:
        new = self._update(
            tenant_id,
            item_id,
            [ReviewStatus.OPEN],
            status=ReviewStatus.IN_REVIEW.value,
            reviewer=reviewer,
        )
        if new is None:
            raise self._why(tenant_id, item_id, str(ReviewStatus.OPEN))
        return new

    def close(
        self, tenant_id: str, item_id: str, *, reviewer: str, outcome: ReviewOutcome, at: datetime
    ) -> ReviewItem:
        new = self._update(
            tenant_id,
            item_id,
            [ReviewStatus.OPEN, ReviewStatus.IN_REVIEW],
            status=ReviewStatus.CLOSED.value,
            reviewer=reviewer,
            outcome=outcome.value,
            closed_at=at,
            candidate_enc=None,
        )
        if new is None:
            raise self._why(tenant_id, item_id, "open or in_review")
        return new

    def clear_candidates_for_subject(self, tenant_id: str, subject_id: str) -> int:
        checks = select(s.checks.c.id).where(
            s.checks.c.tenant_id == tenant_id, s.checks.c.subject_id == subject_id
        )
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.check_id.in_(checks),
                self.t.c.candidate_enc.is_not(None),
            )
            .values(candidate_enc=None)
        )
        return self._rowcount(stmt)

    def clear_candidates_before(self, cutoff: datetime, *, tenant_id: str | None = None) -> int:
        stmt = (
            update(self.t)
            .where(
                self.t.c.status != ReviewStatus.CLOSED.value,
                self.t.c.created_at < cutoff,
                self.t.c.candidate_enc.is_not(None),
            )
            .values(candidate_enc=None)
        )
        if tenant_id is not None:
            stmt = stmt.where(self.t.c.tenant_id == tenant_id)
        return self._rowcount(stmt)


class SqlWebhookOutbox(_SqlRepo):
    t = s.webhook_deliveries

    def enqueue(self, delivery: WebhookDelivery) -> None:
        self._insert(self.t, _values(delivery), "webhook delivery")

    def get(self, tenant_id: str, delivery_id: str) -> WebhookDelivery | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == delivery_id)
        return self._one(stmt, _delivery)

    def list_for_tenant(
        self, tenant_id: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(self.t.c.status == status.value)
        stmt = stmt.order_by(self.t.c.created_at, self.t.c.id).limit(limit)
        return self._all(stmt, _delivery)

    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[WebhookDelivery]:
        due = (
            select(self.t.c.id)
            .where(
                self.t.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value]),
                self.t.c.next_attempt_at <= now,
            )
            .order_by(self.t.c.next_attempt_at, self.t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the writer lock
        )
        ids = list(self._exec(due).scalars().all())
        if not ids:
            return []
        claim = (
            update(self.t)
            .where(self.t.c.id.in_(ids))
            .values(
                status=DeliveryStatus.IN_FLIGHT.value,
                attempts=self.t.c.attempts + 1,
                next_attempt_at=now + lease,
            )
            .returning(*self.t.c)
        )
        claimed = self._all(claim, _delivery)
        order = {delivery_id: i for i, delivery_id in enumerate(ids)}
        return sorted(claimed, key=lambda x: order[x.id])

    def _finish(self, tenant_id: str, delivery_id: str, **values: Any) -> WebhookDelivery:
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == tenant_id,
                self.t.c.id == delivery_id,
                self.t.c.status == DeliveryStatus.IN_FLIGHT.value,
            )
            .values(**values)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _delivery)
        if new is not None:
            return new
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))

    def mark_delivered(self, tenant_id: str, delivery_id: str, at: datetime) -> WebhookDelivery:
        return self._finish(
            tenant_id,
            delivery_id,
            status=DeliveryStatus.DELIVERED.value,
            delivered_at=at,
            last_error=None,
        )

    def mark_failed(
        self,
        tenant_id: str,
        delivery_id: str,
        *,
        now: datetime,
        error: str,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: timedelta = DEFAULT_RETRY_BASE,
        max_delay: timedelta = DEFAULT_RETRY_CAP,
    ) -> WebhookDelivery:
        current = self.get(tenant_id, delivery_id)
        if current is None:
            raise not_found("webhook delivery")
        if current.status is not DeliveryStatus.IN_FLIGHT:
            raise conflict("webhook delivery", str(DeliveryStatus.IN_FLIGHT), str(current.status))
        if current.attempts >= max_attempts:
            return self._finish(
                tenant_id, delivery_id, status=DeliveryStatus.FAILED.value, last_error=error
            )
        return self._finish(
            tenant_id,
            delivery_id,
            status=DeliveryStatus.PENDING.value,
            last_error=error,
            next_attempt_at=now + retry_delay(current.attempts, base_delay, max_delay),
        )


_SEALED_TABLES = {
    "tenants": s.tenants,
    "subjects": s.subjects,
    "templates": s.templates,
    "references": s.subject_references,
    "review_items": s.review_items,
    "evidence": s.evidence,
    "blacklist_entries": s.blacklist_entries,
    "enrol_signals": s.enrol_signals,
}


class SqlSealedFields(_SqlRepo):
    @staticmethod
    def _where(tenant_id: str, table: str, column: str) -> tuple[Table, list[Any]]:
        check_sealed_column(table, column)
        t = _SEALED_TABLES[table]
        owner = t.c.id if table == "tenants" else t.c.tenant_id
        return t, [owner == tenant_id, t.c[column].is_not(None)]

    def scan(
        self, tenant_id: str, table: str, column: str, *, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, bytes]]:
        t, where = self._where(tenant_id, table, column)
        stmt = (
            select(t.c.id, t.c[column])
            .where(*where, t.c.id > after_id)
            .order_by(t.c.id)
            .limit(limit)
        )
        rows: list[Any] = list(self._exec(stmt))
        return [(str(row[0]), bytes(row[1])) for row in rows]

    def replace(
        self, tenant_id: str, table: str, column: str, row_id: str, *, expected: bytes, new: bytes
    ) -> bool:
        t, where = self._where(tenant_id, table, column)
        stmt = update(t).where(*where, t.c.id == row_id, t.c[column] == expected)
        return self._rowcount(stmt.values({column: new})) == 1


class SqlAuditLog(_SqlRepo):
    t = s.audit_events

    def append(self, draft: AuditDraft, hasher: ChainHasher) -> AuditEvent:
        # The tenant row is the chain's lock: FOR NO KEY UPDATE (key_share=True) serialises
        # appends of one tenant until commit without blocking inserts that merely reference the
        # tenant.  Locking the head event instead would not work for the first event (no row).
        lock = (
            select(s.tenants.c.id)
            .where(s.tenants.c.id == draft.tenant_id)
            .with_for_update(key_share=True)
        )
        if self._exec(lock).first() is None:
            raise not_found("tenant")
        head = self.head(draft.tenant_id)
        seq = 1 if head is None else head.seq + 1
        prev_hash = AUDIT_GENESIS_HASH if head is None else head.hash
        link = hasher(seq=seq, prev_hash=prev_hash, draft=draft)
        event = AuditEvent(
            seq=seq,
            tenant_id=draft.tenant_id,
            kind=draft.kind,
            payload=draft.payload,
            created_at=draft.created_at,
            prev_hash=prev_hash,
            hash=link.hash,
            subject_id=draft.subject_id,
            mac=link.mac,
        )
        self._insert(self.t, _values(event), "audit event")
        return event

    def head(self, tenant_id: str) -> AuditEvent | None:
        stmt = (
            select(self.t).where(self.t.c.tenant_id == tenant_id).order_by(self.t.c.seq.desc())
        ).limit(1)
        return self._one(stmt, _audit)

    def read(
        self, tenant_id: str, *, start_seq: int = 1, end_seq: int | None = None, limit: int = 1000
    ) -> list[AuditEvent]:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.seq >= start_seq)
        if end_seq is not None:
            stmt = stmt.where(self.t.c.seq <= end_seq)
        return self._all(stmt.order_by(self.t.c.seq).limit(limit), _audit)


# -- migration 0006: the non-face path and payout ownership ------------------------------------

_FALLBACK_FIXED = frozenset(
    {"id", "tenant_id", "subject_id", "event_id", "cause", "steps", "policy_version", "created_at"}
)


class SqlFallbackRepository(_SqlRepo):
    t = s.fallback_flows

    def add(self, flow: FallbackFlow) -> None:
        self._insert(self.t, _values(flow), "fallback")

    def get(self, tenant_id: str, flow_id: str) -> FallbackFlow | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == flow_id)
        return self._one(stmt, _fallback)

    def _list(self, tenant_id: str, column: str, value: str) -> list[FallbackFlow]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c[column] == value)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _fallback)

    def list_for_event(self, tenant_id: str, event_id: str) -> list[FallbackFlow]:
        return self._list(tenant_id, "event_id", event_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[FallbackFlow]:
        return self._list(tenant_id, "subject_id", subject_id)

    def list_by_status(
        self, tenant_id: str, status: FallbackStatus, *, limit: int = 100
    ) -> list[FallbackFlow]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.status == status.value)
            .order_by(self.t.c.created_at, self.t.c.id)
            .limit(limit)
        )
        return self._all(stmt, _fallback)

    def update(self, flow: FallbackFlow, *, expected_version: int) -> FallbackFlow:
        values = {
            k: v
            for k, v in _values(flow, version=expected_version + 1).items()
            if k not in _FALLBACK_FIXED
        }
        stmt = (
            update(self.t)
            .where(
                self.t.c.tenant_id == flow.tenant_id,
                self.t.c.id == flow.id,
                self.t.c.version == expected_version,
            )
            .values(**values)
            .returning(*self.t.c)
        )
        new = self._one(stmt, _fallback)
        if new is None:
            current = self.get(flow.tenant_id, flow.id)
            if current is None:
                raise not_found("fallback")
            raise conflict("fallback", f"version {expected_version}", f"version {current.version}")
        return new


class SqlPayoutCheckRepository(_SqlRepo):
    t = s.payout_checks

    def add(self, check: PayoutCheck) -> None:
        self._insert(self.t, _values(check), "payout check")

    def get(self, tenant_id: str, check_id: str) -> PayoutCheck | None:
        stmt = select(self.t).where(self.t.c.tenant_id == tenant_id, self.t.c.id == check_id)
        return self._one(stmt, _payout)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[PayoutCheck]:
        stmt = (
            select(self.t)
            .where(self.t.c.tenant_id == tenant_id, self.t.c.subject_id == subject_id)
            .order_by(self.t.c.created_at, self.t.c.id)
        )
        return self._all(stmt, _payout)

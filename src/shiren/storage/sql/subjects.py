"""SQL repositories of tenants and subjects: tenants, subjects, consents, templates and
reference photos (the twins of :mod:`shiren.storage.memory_subjects`).

Two things here are more than a conditional ``UPDATE``: changing a tenant's API key hash runs
in a SAVEPOINT (another tenant may hold the new hash: a typed ``record.duplicate``, the unit of
work still usable), and the ``*_subject_ids`` queries that feed the 1:N galleries join the
subject row to filter by status without reading any ciphertext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from shiren.domain.entities import (
    Consent,
    Reference,
    ReferenceKind,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
)
from shiren.errors import StateError
from shiren.storage.errors import conflict, not_found
from shiren.storage.sql import schema as s
from shiren.storage.sql.base import _integrity_error, _loader, _SqlRepo, _values

_tenant = _loader(Tenant, status=TenantStatus)
_subject = _loader(Subject, status=SubjectStatus)
_consent = _loader(Consent)
_template = _loader(Template)
_reference = _loader(Reference, kind=ReferenceKind)


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


__all__ = [
    "SqlConsentRepository",
    "SqlReferenceRepository",
    "SqlSubjectRepository",
    "SqlTemplateRepository",
    "SqlTenantRepository",
]

"""In-memory repositories of tenants and subjects: tenants, subjects, consents, templates and
reference photos (the ports in :mod:`shiren.storage.subject_ports`).

They enforce what the databases do — unique keys (a tenant's ``external_ref``, the API key hash),
same-tenant parents, "an erased subject never changes again" — so that the contract tests can
hold SQLite and PostgreSQL to this behaviour.  The ``*_subject_ids`` queries feed the 1:N
galleries (issue 6).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shiren.domain.entities import (
    Consent,
    Reference,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
)
from shiren.storage.errors import conflict, duplicate, not_found
from shiren.storage.memory_tables import _by_created, _Repo, _scoped, _sorted


class MemoryTenantRepository(_Repo):
    def add(self, tenant: Tenant) -> None:
        t = self._t
        if tenant.id in t.tenants:
            raise duplicate("tenant")
        if any(x.api_key_hash == tenant.api_key_hash for x in t.tenants.values()):
            raise duplicate("tenant api key")
        t.tenants[tenant.id] = tenant

    def get(self, tenant_id: str) -> Tenant | None:
        return self._t.tenants.get(tenant_id)

    def get_by_api_key_hash(self, api_key_hash: str) -> Tenant | None:
        return next((x for x in self._t.tenants.values() if x.api_key_hash == api_key_hash), None)

    def list_all(self) -> list[Tenant]:
        return sorted(self._t.tenants.values(), key=lambda x: (x.created_at, x.id))

    def _require(self, tenant_id: str) -> Tenant:
        tenant = self._t.tenants.get(tenant_id)
        if tenant is None:
            raise not_found("tenant")
        return tenant

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        new = replace(self._require(tenant_id), status=status)
        self._t.tenants[tenant_id] = new
        return new

    def set_api_key_hash(self, tenant_id: str, api_key_hash: str) -> Tenant:
        current = self._require(tenant_id)
        other = self.get_by_api_key_hash(api_key_hash)
        if other is not None and other.id != tenant_id:
            raise duplicate("tenant api key")
        new = replace(current, api_key_hash=api_key_hash)
        self._t.tenants[tenant_id] = new
        return new

    def set_webhook(self, tenant_id: str, *, url: str | None, secret_enc: bytes | None) -> Tenant:
        new = replace(self._require(tenant_id), webhook_url=url, webhook_secret_enc=secret_enc)
        self._t.tenants[tenant_id] = new
        return new

    def rotate_dek(
        self, tenant_id: str, *, wrapped_dek: bytes, dek_version: int, expected_version: int
    ) -> Tenant:
        current = self._require(tenant_id)
        if current.dek_version != expected_version:
            raise conflict("tenant dek", str(expected_version), str(current.dek_version))
        new = replace(current, wrapped_dek=wrapped_dek, dek_version=dek_version)
        self._t.tenants[tenant_id] = new
        return new


class MemorySubjectRepository(_Repo):
    def add(self, subject: Subject) -> None:
        t = self._t
        if subject.tenant_id not in t.tenants:
            raise not_found("tenant")
        if subject.id in t.subjects:
            raise duplicate("subject")
        if self.get_by_external_ref(subject.tenant_id, subject.external_ref) is not None:
            raise duplicate("subject external_ref")
        t.subjects[subject.id] = subject

    def get(self, tenant_id: str, subject_id: str) -> Subject | None:
        return _scoped(self._t.subjects, tenant_id, subject_id)

    def get_by_external_ref(self, tenant_id: str, external_ref: str) -> Subject | None:
        return next(
            (
                s
                for s in self._t.subjects.values()
                if s.tenant_id == tenant_id and s.external_ref == external_ref
            ),
            None,
        )

    def list_by_pseudonym(self, tenant_id: str, id_pseudonym: str) -> list[Subject]:
        rows = (
            s
            for s in self._t.subjects.values()
            if s.tenant_id == tenant_id and s.id_pseudonym == id_pseudonym
        )
        return sorted(rows, key=lambda s: (s.created_at, s.id))

    def _require(self, tenant_id: str, subject_id: str) -> Subject:
        subject = self.get(tenant_id, subject_id)
        if subject is None:
            raise not_found("subject")
        return subject

    def set_status(
        self,
        tenant_id: str,
        subject_id: str,
        status: SubjectStatus,
        *,
        expected: SubjectStatus | None = None,
    ) -> Subject:
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            raise conflict("subject", str(expected or "not erased"), str(current.status))
        if expected is not None and current.status != expected:
            raise conflict("subject", str(expected), str(current.status))
        new = replace(current, status=status)
        self._t.subjects[subject_id] = new
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
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            raise conflict("subject", "not erased", str(current.status))
        new = replace(
            current, id_pseudonym=id_pseudonym, id_number_enc=id_number_enc, name_enc=name_enc
        )
        self._t.subjects[subject_id] = new
        return new

    def erase(self, tenant_id: str, subject_id: str, at: datetime) -> Subject:
        current = self._require(tenant_id, subject_id)
        if current.status is SubjectStatus.ERASED:
            return current
        new = replace(
            current,
            status=SubjectStatus.ERASED,
            erased_at=at,
            id_pseudonym=None,
            id_number_enc=None,
            name_enc=None,
            wrapped_key=None,  # crypto-shredding: the subject key is gone for good
        )
        self._t.subjects[subject_id] = new
        return new


class MemoryConsentRepository(_Repo):
    def add(self, consent: Consent) -> None:
        self._parent(self._t.subjects, consent.tenant_id, consent.subject_id, "subject")
        if consent.id in self._t.consents:
            raise duplicate("consent")
        self._t.consents[consent.id] = consent

    def get(self, tenant_id: str, consent_id: str) -> Consent | None:
        return _scoped(self._t.consents, tenant_id, consent_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Consent]:
        rows = (
            c
            for c in self._t.consents.values()
            if c.tenant_id == tenant_id and c.subject_id == subject_id
        )
        return sorted(rows, key=lambda c: (c.granted_at, c.id))

    def withdraw(self, tenant_id: str, consent_id: str, at: datetime) -> Consent:
        current = self.get(tenant_id, consent_id)
        if current is None:
            raise not_found("consent")
        if current.withdrawn_at is not None:
            raise conflict("consent", "granted", "withdrawn")
        new = replace(current, withdrawn_at=at)
        self._t.consents[consent_id] = new
        return new


class MemoryTemplateRepository(_Repo):
    def add(self, template: Template) -> None:
        self._parent(self._t.subjects, template.tenant_id, template.subject_id, "subject")
        if template.id in self._t.templates:
            raise duplicate("template")
        self._t.templates[template.id] = template

    def get(self, tenant_id: str, template_id: str) -> Template | None:
        return _scoped(self._t.templates, tenant_id, template_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Template]:
        rows = (
            x
            for x in self._t.templates.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def delete(self, tenant_id: str, template_id: str) -> bool:
        if self.get(tenant_id, template_id) is None:
            return False
        del self._t.templates[template_id]
        return True

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [x.id for x in self.list_for_subject(tenant_id, subject_id)]
        for template_id in doomed:
            del self._t.templates[template_id]
        return len(doomed)

    def count(self, tenant_id: str) -> int:
        return sum(1 for x in self._t.templates.values() if x.tenant_id == tenant_id)

    def list_for_tenant(
        self, tenant_id: str, *, after_id: str = "", limit: int = 1000
    ) -> list[Template]:
        rows = (x for x in self._t.templates.values() if x.tenant_id == tenant_id)
        return sorted((x for x in rows if x.id > after_id), key=lambda x: x.id)[: max(0, limit)]

    def count_all(self) -> int:
        return len(self._t.templates)

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        doomed = [
            x.id
            for x in self._t.templates.values()
            if x.expires_at is not None
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        ]
        for template_id in doomed:
            del self._t.templates[template_id]
        return len(doomed)

    def enrolled_subject_ids(self, tenant_id: str, *, network: str | None = None) -> set[str]:
        return {
            x.subject_id
            for x in self._t.templates.values()
            if x.tenant_id == tenant_id
            and (network is None or x.embedder.split("@", 1)[0] == network)
            and (subj := self._t.subjects.get(x.subject_id)) is not None
            and subj.status is SubjectStatus.ENROLLED
        }

    def expired_subject_ids(self, now: datetime, *, tenant_id: str | None = None) -> set[str]:
        return {
            x.subject_id
            for x in self._t.templates.values()
            if x.expires_at is not None
            and x.expires_at < now
            and (tenant_id is None or x.tenant_id == tenant_id)
        }


class MemoryReferenceRepository(_Repo):
    def add(self, reference: Reference) -> None:
        self._parent(self._t.subjects, reference.tenant_id, reference.subject_id, "subject")
        if reference.id in self._t.references:
            raise duplicate("reference")
        self._t.references[reference.id] = reference

    def get(self, tenant_id: str, reference_id: str) -> Reference | None:
        return _scoped(self._t.references, tenant_id, reference_id)

    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Reference]:
        rows = (
            x
            for x in self._t.references.values()
            if x.tenant_id == tenant_id and x.subject_id == subject_id
        )
        return _sorted(rows, _by_created)

    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int:
        doomed = [x.id for x in self.list_for_subject(tenant_id, subject_id)]
        for reference_id in doomed:
            del self._t.references[reference_id]
        return len(doomed)

    def pending_subject_ids(self, tenant_id: str) -> set[str]:
        return {
            x.subject_id
            for x in self._t.references.values()
            if x.tenant_id == tenant_id
            and (subj := self._t.subjects.get(x.subject_id)) is not None
            and subj.status is SubjectStatus.PENDING
        }


__all__ = [
    "MemoryConsentRepository",
    "MemoryReferenceRepository",
    "MemorySubjectRepository",
    "MemoryTemplateRepository",
    "MemoryTenantRepository",
]

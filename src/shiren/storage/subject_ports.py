"""Repository Protocols of tenants and subjects: who is verified, with what consent and faces.

A tenant owns subjects; a subject owns consents, enrolled templates and reference photos.  These
are the rows erasure and retention act on, and the 1:N galleries are rebuilt from (the
``*_subject_ids`` queries).  Same rules as every port (:mod:`shiren.storage.ports`):
tenant-scoped, typed errors (:mod:`shiren.storage.errors`), ciphertext only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shiren.domain.entities import (
    Consent,
    Reference,
    Subject,
    SubjectStatus,
    Template,
    Tenant,
    TenantStatus,
)


class TenantRepository(Protocol):
    def add(self, tenant: Tenant) -> None: ...
    def get(self, tenant_id: str) -> Tenant | None: ...
    def get_by_api_key_hash(self, api_key_hash: str) -> Tenant | None:
        """Authentication lookup: the one tenant read that cannot be tenant-scoped."""
        ...

    def list_all(self) -> list[Tenant]:
        """All tenants (operators and key-rotation jobs only), ordered by ``created_at``."""
        ...

    def set_status(self, tenant_id: str, status: TenantStatus) -> Tenant: ...
    def set_api_key_hash(self, tenant_id: str, api_key_hash: str) -> Tenant: ...
    def set_webhook(self, tenant_id: str, *, url: str | None, secret_enc: bytes | None) -> Tenant:
        """Set (or, with ``None``, clear) the tenant's webhook URL and sealed secret."""
        ...

    def rotate_dek(
        self, tenant_id: str, *, wrapped_dek: bytes, dek_version: int, expected_version: int
    ) -> Tenant:
        """Store a re-wrapped data key if the stored version is still ``expected_version``
        (``record.conflict`` otherwise: two concurrent rotations must not both win)."""
        ...


class SubjectRepository(Protocol):
    def add(self, subject: Subject) -> None:
        """``record.duplicate`` when the tenant already has this ``external_ref``."""
        ...

    def get(self, tenant_id: str, subject_id: str) -> Subject | None: ...
    def get_by_external_ref(self, tenant_id: str, external_ref: str) -> Subject | None: ...
    def list_by_pseudonym(self, tenant_id: str, id_pseudonym: str) -> list[Subject]:
        """Subjects of this tenant with this ID pseudonym (one person, several accounts)."""
        ...

    def set_status(
        self,
        tenant_id: str,
        subject_id: str,
        status: SubjectStatus,
        *,
        expected: SubjectStatus | None = None,
    ) -> Subject:
        """Change the status; with ``expected``, only from that status.  An erased subject never
        changes status again (``record.conflict``)."""
        ...

    def update_identity(
        self,
        tenant_id: str,
        subject_id: str,
        *,
        id_pseudonym: str | None,
        id_number_enc: bytes | None,
        name_enc: bytes | None,
    ) -> Subject: ...
    def erase(self, tenant_id: str, subject_id: str, at: datetime) -> Subject:
        """Null the pseudonym and ciphertexts, set ``erased`` and ``erased_at``; idempotent (an
        already erased subject is returned unchanged, with its first ``erased_at``)."""
        ...


class ConsentRepository(Protocol):
    def add(self, consent: Consent) -> None: ...
    def get(self, tenant_id: str, consent_id: str) -> Consent | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Consent]: ...
    def withdraw(self, tenant_id: str, consent_id: str, at: datetime) -> Consent:
        """Withdraw once; a second withdrawal is ``record.conflict``."""
        ...


class TemplateRepository(Protocol):
    def add(self, template: Template) -> None: ...
    def get(self, tenant_id: str, template_id: str) -> Template | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Template]: ...
    def delete(self, tenant_id: str, template_id: str) -> bool: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...
    def count(self, tenant_id: str) -> int: ...
    def list_for_tenant(
        self, tenant_id: str, *, after_id: str = "", limit: int = 1000
    ) -> list[Template]:
        """A page of the tenant's templates in id order, after ``after_id`` (rebuilding the 1:N
        index, issue 6)."""
        ...

    def count_all(self) -> int:
        """Templates stored for all tenants: the regulator's 100,000 threshold is per operator."""
        ...

    def delete_expired(self, now: datetime, *, tenant_id: str | None = None) -> int:
        """Retention sweep: delete templates whose ``expires_at < now`` (of every tenant, or of
        ``tenant_id`` only, so the sweep can record per-tenant counts in each tenant's chain)."""
        ...

    def enrolled_subject_ids(self, tenant_id: str, *, network: str | None = None) -> set[str]:
        """Ids of the tenant's *enrolled* subjects that have a template: what the enrolled 1:N
        gallery must hold (issue 6; ids only, no ciphertext is read).  ``network``: only
        templates made by that network (the name part of ``Template.embedder``, before ``@``),
        the galleries being kept per network."""
        ...

    def expired_subject_ids(self, now: datetime, *, tenant_id: str | None = None) -> set[str]:
        """Subjects with a template that :meth:`delete_expired` would delete at ``now`` (the
        sweep takes them out of the 1:N galleries, issue 6)."""
        ...


class ReferenceRepository(Protocol):
    def add(self, reference: Reference) -> None: ...
    def get(self, tenant_id: str, reference_id: str) -> Reference | None: ...
    def list_for_subject(self, tenant_id: str, subject_id: str) -> list[Reference]: ...
    def delete_for_subject(self, tenant_id: str, subject_id: str) -> int: ...
    def pending_subject_ids(self, tenant_id: str) -> set[str]:
        """Ids of the tenant's *pending* subjects that have a reference photo: what the
        references 1:N gallery must hold (issue 6)."""
        ...


__all__ = [
    "ConsentRepository",
    "ReferenceRepository",
    "SubjectRepository",
    "TemplateRepository",
    "TenantRepository",
]

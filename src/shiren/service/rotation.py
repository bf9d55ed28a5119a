"""Rotating a tenant's own data key (DEK), without downtime: ``shiren keys rotate-tenant``.

Master-key rotation (:func:`rotate_master_key`, below) only re-wraps the tenant key;
this replaces the tenant key itself — after a suspected leak of it, or long before its nonce
budget (2^32 random-nonce seals) runs out — and re-seals everything that key sealed:

* subject keys (``subjects.wrapped_key``: re-wrapped, the subject's data is untouched);
* fields sealed directly with the tenant key: the webhook secret, and every field of subjects
  enrolled before subject keys existed (name, ID number, templates, references, review
  candidates, evidence).  Which blobs those are is decided by the blob's key version and an
  authenticated trial opening, so a subject-key blob is never touched.

The procedure, per tenant (each step its own transactions; safe to interrupt and re-run):

1. **start** — a new key (version + 1) becomes *current* and the previous one stays readable:
   ``Tenant.wrapped_dek`` holds both (:func:`shiren.privacy.bundle_tenant_keys`), audited as
   ``key.rotation_started``.  Servers seal new data with the new key and open old rows with the
   old one (:mod:`shiren.service.tenantkeys`), so nothing stops.
2. **grace** — wait until every request that read the tenant row *before* step 1 has finished
   (``grace_s``, default 60 s, counted from step 1; a resumed run waits only what is left), so
   nothing sealed with the old key can still be written after the sweep below.
3. **re-seal** — batches of rows, each a compare-and-set (an erasure or a newer value wins and
   is never overwritten), one transaction per batch.
4. **finish** — a second sweep must find nothing left under the old key; then the old key is
   dropped (``wrapped_dek`` holds the new key alone) and ``key.rotated`` is audited.  From then
   on the old key opens nothing in the database.

A run that finds a rotation in progress (a bundle) resumes it with the keys in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shiren.domain.entities import Tenant, utcnow
from shiren.errors import ErrorCode, ServiceError, StateError
from shiren.privacy import (
    CipherContext,
    DataKey,
    DecryptError,
    blob_key_version,
    bundle_tenant_keys,
    new_data_key,
    open_,
    rewrap_subject_key,
    seal,
    split_tenant_keys,
    wrapped_kek_id,
)
from shiren.service.journal import append_audit
from shiren.service.keys import ServiceKeys
from shiren.service.tenantkeys import wrapper_version
from shiren.service.views import RotationResult
from shiren.storage.ports import SEALED_COLUMNS, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("shiren.service.rotation")

DEFAULT_GRACE_S = 60.0
DEFAULT_BATCH = 500
MAX_SWEEPS = 5


@dataclass(frozen=True, slots=True)
class TenantRotation:
    """What one tenant-key rotation did (counts and versions: no key material)."""

    tenant_id: str
    from_version: int
    to_version: int
    subject_keys: int = 0
    """Subject keys re-wrapped under the new tenant key."""
    fields: int = 0
    """Fields re-sealed (webhook secret, fields of subjects without their own key)."""
    resumed: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "tenant_id": self.tenant_id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "subject_keys_rewrapped": self.subject_keys,
            "fields_resealed": self.fields,
            "resumed": self.resumed,
        }


@dataclass(frozen=True, slots=True)
class _Keys:
    old: DataKey
    new: DataKey
    started_ms: int
    resumed: bool


def rotate_tenant_keys(
    store: UnitOfWorkFactory,
    keys: ServiceKeys,
    tenant_ids: list[str],
    *,
    clock: Callable[[], datetime] = utcnow,
    grace_s: float = DEFAULT_GRACE_S,
    batch: int = DEFAULT_BATCH,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TenantRotation]:
    """Rotate the data keys of ``tenant_ids`` (see the module docstring); re-run to resume.
    Every tenant's rotation is started first, so the grace period is waited once."""
    states = [(tid, _start(store, keys, tid, clock())) for tid in tenant_ids]
    if states:
        wait = max(s.started_ms for _, s in states) / 1000 + grace_s - clock().timestamp()
        if wait > 0:
            sleep(wait)
    return [_complete(store, keys, tid, state, batch, clock) for tid, state in states]


def rotate_tenant_key(
    store: UnitOfWorkFactory,
    keys: ServiceKeys,
    tenant_id: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    grace_s: float = DEFAULT_GRACE_S,
    batch: int = DEFAULT_BATCH,
    sleep: Callable[[float], None] = time.sleep,
) -> TenantRotation:
    """Rotate one tenant's data key (see the module docstring); re-run to resume."""
    (result,) = rotate_tenant_keys(
        store, keys, [tenant_id], clock=clock, grace_s=grace_s, batch=batch, sleep=sleep
    )
    return result


def _complete(
    store: UnitOfWorkFactory,
    keys: ServiceKeys,
    tenant_id: str,
    state: _Keys,
    batch: int,
    clock: Callable[[], datetime],
) -> TenantRotation:
    """Re-seal until a sweep finds nothing under the old key, then drop the old key."""
    subject_keys = fields = 0
    for _ in range(MAX_SWEEPS):
        wrapped, sealed = _reseal_all(store, tenant_id, state.old, state.new, batch)
        subject_keys += wrapped
        fields += sealed
        if not wrapped and not sealed:
            break
    else:  # pragma: no cover - only under a writer that keeps sealing with the old key
        raise ServiceError(
            "rows sealed with the old tenant key keep appearing; run the rotation again",
            code=ErrorCode.INTERNAL,
        )
    result = TenantRotation(
        tenant_id, state.old.version, state.new.version, subject_keys, fields, state.resumed
    )
    _finish(store, keys, tenant_id, state, result, clock())
    log.info(
        "tenant key rotated: tenant=%s v%d -> v%d, %d subject keys, %d fields",
        tenant_id,
        state.old.version,
        state.new.version,
        subject_keys,
        fields,
    )
    return result


def _require(uow: UnitOfWork, tenant_id: str) -> Tenant:
    tenant = uow.tenants.get(tenant_id)
    if tenant is None:
        raise StateError(
            "tenant not found", code=ErrorCode.RECORD_NOT_FOUND, detail={"entity": "tenant"}
        )
    return tenant


def _start(store: UnitOfWorkFactory, keys: ServiceKeys, tenant_id: str, now: datetime) -> _Keys:
    """Make a new key current (keeping the old one readable), or resume a started rotation."""
    ring = keys.ring
    with store() as uow:
        tenant = _require(uow, tenant_id)
        wrapped, started = split_tenant_keys(tenant.wrapped_dek)
        if started is not None and len(wrapped) >= 2:
            deks = ring.unwrap_tenant_keys(tenant_id, tenant.wrapped_dek)
            return _Keys(deks[1], deks[0], started, resumed=True)
        old = ring.unwrap_tenant_key(tenant_id, tenant.wrapped_dek)
        new = new_data_key(version=old.version + 1)
        started_ms = int(now.timestamp() * 1000)
        bundle = bundle_tenant_keys([ring.wrap_tenant_key(tenant_id, new), wrapped[0]], started_ms)
        uow.tenants.rotate_dek(
            tenant_id,
            wrapped_dek=bundle,
            dek_version=new.version,
            expected_version=tenant.dek_version,
        )
        append_audit(
            uow,
            keys.audit_key,
            tenant_id,
            "key.rotation_started",
            None,
            {"from_version": old.version, "to_version": new.version},
            now,
        )
        uow.commit()
    return _Keys(old, new, started_ms, resumed=False)


def reseal(
    tenant_id: str, table: str, column: str, row_id: str, blob: bytes, old: DataKey, new: DataKey
) -> bytes | None:
    """``blob`` moved from ``old`` to ``new`` (re-wrapped or re-sealed), or ``None`` when it
    was not made with ``old`` (a newer blob, or one sealed with a subject's own key)."""
    if (table, column) == ("subjects", "wrapped_key"):
        if wrapper_version(blob) != old.version:
            return None
        return rewrap_subject_key(old, new, tenant_id, row_id, blob)
    context = CipherContext(tenant_id, table, column, row_id)
    try:
        if blob_key_version(blob) != old.version:
            return None
        plain = open_(old, blob, context)
    except DecryptError:
        return None  # sealed with a subject key of the same version number: not ours
    return seal(new, plain, context)


def _reseal_all(
    store: UnitOfWorkFactory, tenant_id: str, old: DataKey, new: DataKey, batch: int
) -> tuple[int, int]:
    """One sweep over every sealed column: (subject keys re-wrapped, fields re-sealed)."""
    wrapped = sealed = 0
    for table, column in SEALED_COLUMNS:
        after = ""
        while True:
            with store() as uow:
                rows = uow.sealed.scan(tenant_id, table, column, after_id=after, limit=batch)
                for row_id, blob in rows:
                    moved = reseal(tenant_id, table, column, row_id, blob, old, new)
                    if moved is not None and uow.sealed.replace(
                        tenant_id, table, column, row_id, expected=blob, new=moved
                    ):
                        if column == "wrapped_key":
                            wrapped += 1
                        else:
                            sealed += 1
                uow.commit()
            if len(rows) < batch:
                break
            after = rows[-1][0]
    return wrapped, sealed


def _finish(
    store: UnitOfWorkFactory,
    keys: ServiceKeys,
    tenant_id: str,
    state: _Keys,
    result: TenantRotation,
    now: datetime,
) -> None:
    """Drop the old key from the tenant row and audit ``key.rotated``."""
    with store() as uow:
        tenant = _require(uow, tenant_id)
        current = keys.ring.unwrap_tenant_key(tenant_id, tenant.wrapped_dek)
        if current != state.new:
            raise StateError(
                "the tenant key changed during the rotation; run it again",
                code=ErrorCode.RECORD_CONFLICT,
            )
        uow.tenants.rotate_dek(
            tenant_id,
            wrapped_dek=keys.ring.wrap_tenant_key(tenant_id, state.new),
            dek_version=state.new.version,
            expected_version=tenant.dek_version,
        )
        payload = result.to_dict()
        del payload["tenant_id"]
        append_audit(uow, keys.audit_key, tenant_id, "key.rotated", None, payload, now)
        uow.commit()


def rotate_master_key(store: UnitOfWorkFactory, keys: ServiceKeys, now: datetime) -> RotationResult:
    """Re-wrap every tenant's data key under the ring's current master key.

    Why this is enough and safe without downtime: the tenant key itself does not change (only
    its wrapping does), so no row is re-encrypted and every blob sealed before keeps opening.
    The procedure is: (1) deploy the new master key as current with the old one in
    ``SHIREN_RETIRED_MASTER_KEYS`` — servers then open keys wrapped either way, and wrap new
    tenants under the new key; (2) run this (``shiren keys rotate``), as often as needed: it
    skips tenants already re-wrapped; (3) drop the old key once it reports nothing left.

    One transaction per tenant (re-read, re-wrap, audit ``key.rewrapped``, commit), so a crash
    mid-run leaves every tenant either fully old or fully new, and a concurrent tenant-key
    rotation wins cleanly (``dek_version`` is checked; the loser is retried at the next run).
    """
    ring = keys.ring
    to_key = ring.current.key_id
    with store() as uow:
        tenant_ids = [t.id for t in uow.tenants.list_all()]
    rewrapped = already = 0
    failed: list[str] = []
    for tenant_id in tenant_ids:
        with store() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None or not ring.needs_rewrap(tenant.wrapped_dek):
                already += 1
                continue
            try:
                old_id = wrapped_kek_id(tenant.wrapped_dek)
                wrapped = ring.rewrap(tenant_id, tenant.wrapped_dek)
            except DecryptError as exc:  # UnknownKeyError: its old master key is not configured
                log.error("key rotation: tenant=%s cannot be unwrapped (%s)", tenant_id, exc.code)
                failed.append(tenant_id)
                continue
            try:
                uow.tenants.rotate_dek(
                    tenant_id,
                    wrapped_dek=wrapped,
                    dek_version=tenant.dek_version,  # same data key, only re-wrapped
                    expected_version=tenant.dek_version,
                )
            except StateError as exc:
                if exc.code is not ErrorCode.RECORD_CONFLICT:
                    raise
                failed.append(tenant_id)  # a concurrent tenant-key rotation: run again
                continue
            append_audit(
                uow,
                keys.audit_key,
                tenant_id,
                "key.rewrapped",
                None,
                {"from_key_id": old_id, "to_key_id": to_key, "dek_version": tenant.dek_version},
                now,
            )
            uow.commit()
        rewrapped += 1
    log.info(
        "key rotation to %s: %d re-wrapped, %d already current, %d failed",
        to_key,
        rewrapped,
        already,
        len(failed),
    )
    return RotationResult(to_key, rewrapped, already, tuple(failed))


__all__ = [
    "DEFAULT_GRACE_S",
    "TenantRotation",
    "reseal",
    "rotate_master_key",
    "rotate_tenant_key",
    "rotate_tenant_keys",
]

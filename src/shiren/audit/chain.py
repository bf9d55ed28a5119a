"""The audit log's hash chain: computing and verifying it (pure; storing it is a repository's job).

Every event is linked to the one before it::

    hash(n) = SHA-256( prev_hash(n) || canonical_json(event n) )      prev_hash(1) = "0" * 64

``prev_hash`` enters as its 64 ASCII hex characters and the canonical JSON as UTF-8 bytes, so an
auditor can re-check a row with nothing but ``printf '%s%s' "$prev" "$json" | sha256sum``.  The
canonical JSON is the object ``{seq, tenant_id, kind, subject_id, payload, created_at}`` with
sorted keys, no whitespace, ``ensure_ascii=False``; ``created_at`` is ISO-8601 UTC with
microseconds and a ``Z`` (``2024-05-01T08:00:00.000000Z``); NaN and infinities are refused.

What the chain detects, and what it does not (two modes):

* **Plain hashes** detect accidental or naive tampering: an edited row (its hash no longer
  matches), a deleted row (a gap in ``seq``), reordered or inserted rows (``seq`` / ``prev_hash``
  out of line).  A truncated *tail* leaves a perfectly valid shorter chain, so it is detected
  only against an anchor the caller kept elsewhere: pass ``head_hash`` (the latest hash, e.g.
  published daily or kept in another system) to :func:`verify`.  But anyone with write access
  to the table can also *recompute* every hash after an edit; only an external anchor catches
  that.
* **Keyed mode** (``audit_key``): each row also stores ``mac = HMAC-SHA256(audit_key, hash)``.
  Without the key — which lives in the service's settings, not in the database — a rewritten
  chain cannot get valid MACs, so an attacker who can write to the database but cannot read the
  service's secrets is detected even without an anchor.  Tail truncation still needs the anchor.

Storage must give back exactly what was hashed: keep ``payload`` as the canonical JSON *text*
(or a JSON type that does not renormalise numbers — PostgreSQL ``jsonb`` turns ``1e+16`` into
``10000000000000000``) and ``created_at`` with microseconds.

Chains are per whatever sequence the caller stores; one chain per tenant is recommended, so that
a tenant's export verifies on its own.  :func:`append` assigns ``seq`` itself (previous + 1, or
1), so the store should insert with a unique (tenant, seq) constraint and retry on conflict.

Payload guard: the audit log must never hold biometrics or ID numbers (an append-only log cannot
honour erasure).  :func:`check_payload` — applied by :class:`AuditEvent` — refuses keys named like
templates, images, embeddings or ID numbers, string values shaped like an ID number or a long
encoded blob, and long lists of numbers (the shape of an embedding).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from shiren.errors import ErrorCode, ServiceError

__all__ = [
    "FIRST_SEQ",
    "GENESIS_HASH",
    "AuditEvent",
    "AuditPayloadError",
    "ChainProblem",
    "ChainedEvent",
    "VerifyResult",
    "append",
    "canonical_bytes",
    "check_payload",
    "compute_hash",
    "compute_mac",
    "head",
    "verify",
]

GENESIS_HASH: Final = "0" * 64
FIRST_SEQ: Final = 1
MIN_AUDIT_KEY_BYTES: Final = 32

_FORBIDDEN_KEY_PARTS: Final = (
    "template",
    "image",
    "img",
    "embedding",
    "photo",
    "selfie",
    "biometric",
    "idnumber",
    "idno",
    "idcard",
)
"""Matched as substrings of the key lower-cased with everything but letters and digits removed
(``faceImage``, ``id_number``, ``ID-No`` all match)."""
_ID_LIKE: Final = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_BLOB_LIKE: Final = re.compile(r"[A-Za-z0-9+/_-]{128,}={0,2}")
_MAX_NUMBER_LIST: Final = 32
"""A list of more numbers than this looks like an embedding (128–512 floats) or raw pixels."""


class AuditPayloadError(ServiceError, ValueError):
    """A payload that must not enter the audit log: a bug in the calling code, not bad client
    input, hence a (non-retryable) service error.  ``detail = {"reason", "path"}``; the path names
    keys only, never the offending value."""

    code = ErrorCode.AUDIT_PAYLOAD_FORBIDDEN
    retryable = False

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(
            f"audit payload refused ({reason} at {path})", detail={"reason": reason, "path": path}
        )


def check_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe deep copy of ``payload``, or :class:`AuditPayloadError`.

    Reasons: ``key`` (a forbidden key name), ``value`` (an ID-number-like string or a long
    encoded blob), ``shape`` (a long list of numbers), ``type`` (not JSON: bytes, sets, NaN …).
    """
    if not isinstance(payload, Mapping):
        raise AuditPayloadError("type", "$")
    copied = _check_value(payload, "$")
    assert isinstance(copied, dict)
    return copied


def _check_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditPayloadError("type", path)
        return value
    if isinstance(value, str):
        if not _utf8(value):
            raise AuditPayloadError("type", path)
        if _ID_LIKE.search(value) or _BLOB_LIKE.search(value):
            raise AuditPayloadError("value", path)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not _utf8(key):
                raise AuditPayloadError("type", path)
            squashed = re.sub(r"[^0-9a-z]", "", key.lower())
            if any(part in squashed for part in _FORBIDDEN_KEY_PARTS):
                raise AuditPayloadError("key", f"{path}.{key}")
            out[key] = _check_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        numbers = sum(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if numbers > _MAX_NUMBER_LIST:
            raise AuditPayloadError("shape", path)
        return [_check_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise AuditPayloadError("type", path)


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (lone surrogates do not, and could not be hashed)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An event to be appended: everything but ``seq`` and the hashes.

    ``payload`` is checked by :func:`check_payload` and deep-copied on construction, so a caller
    mutating its dict afterwards cannot change what gets hashed.  ``created_at`` must be
    timezone-aware; it is normalised to UTC.
    """

    tenant_id: str
    kind: str
    subject_id: str | None
    payload: Mapping[str, Any]
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", check_payload(self.payload))
        object.__setattr__(self, "created_at", _utc(self.created_at))


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """A stored audit row: the event, its ``seq``, its link and its hash (and MAC when keyed).

    Construction does not re-check the payload: rows read back from storage must be verifiable
    as they are, even if a rule has since become stricter.
    """

    seq: int
    tenant_id: str
    kind: str
    subject_id: str | None
    payload: Mapping[str, Any]
    created_at: datetime
    prev_hash: str
    hash: str
    mac: str | None = field(default=None)


def canonical_bytes(
    seq: int,
    tenant_id: str,
    kind: str,
    subject_id: str | None,
    payload: Mapping[str, Any],
    created_at: datetime,
) -> bytes:
    """The canonical JSON (UTF-8) that is hashed for one event."""
    document = {
        "seq": seq,
        "tenant_id": tenant_id,
        "kind": kind,
        "subject_id": subject_id,
        "payload": payload,
        "created_at": _iso(created_at),
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def compute_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 over the previous hash's ASCII hex followed by the canonical JSON; hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def compute_mac(audit_key: bytes, hash_hex: str) -> str:
    """HMAC-SHA256 of a row hash under the audit key; hex."""
    if len(audit_key) < MIN_AUDIT_KEY_BYTES:
        raise ValueError(f"the audit key must have at least {MIN_AUDIT_KEY_BYTES} bytes")
    return hmac.new(audit_key, hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


def _row_bytes(row: ChainedEvent) -> bytes:
    return canonical_bytes(
        row.seq, row.tenant_id, row.kind, row.subject_id, row.payload, row.created_at
    )


def append(
    prev: ChainedEvent | None, event: AuditEvent, *, audit_key: bytes | None = None
) -> ChainedEvent:
    """``event`` chained after ``prev`` (``None`` for the first event of a chain)."""
    seq = FIRST_SEQ if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    canonical = canonical_bytes(
        seq, event.tenant_id, event.kind, event.subject_id, event.payload, event.created_at
    )
    digest = compute_hash(prev_hash, canonical)
    return ChainedEvent(
        seq=seq,
        tenant_id=event.tenant_id,
        kind=event.kind,
        subject_id=event.subject_id,
        payload=event.payload,
        created_at=event.created_at,
        prev_hash=prev_hash,
        hash=digest,
        mac=None if audit_key is None else compute_mac(audit_key, digest),
    )


class ChainProblem(StrEnum):
    """Why :func:`verify` stopped."""

    SEQ_GAP = "seq_gap"
    """A ``seq`` is missing: a row was deleted (or rows were reordered)."""
    SEQ_ORDER = "seq_order"
    """A ``seq`` repeats or goes backwards: rows were reordered or duplicated."""
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    """The row does not link to the row before it: inserted, replaced or re-linked."""
    HASH_MISMATCH = "hash_mismatch"
    """The row's content does not match its hash: edited."""
    MAC_MISSING = "mac_missing"
    """Keyed verification, but the row has no MAC."""
    MAC_MISMATCH = "mac_mismatch"
    """The row's MAC is wrong: the chain was recomputed by someone without the audit key."""
    HEAD_MISMATCH = "head_mismatch"
    """The last hash is not the expected head: the tail was truncated or the chain rewritten."""
    UNREADABLE = "unreadable"
    """The row cannot even be serialised (a timestamp without a zone, a non-JSON payload)."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``checked`` rows verified before the first problem; ``first_bad_seq`` is the first seq
    that cannot be trusted (for a deleted row, the missing seq; for a truncated tail, the seq
    after the last row)."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None


def verify(
    events: Iterable[ChainedEvent],
    *,
    head_hash: str | None = None,
    audit_key: bytes | None = None,
    prev_hash: str = GENESIS_HASH,
    first_seq: int = FIRST_SEQ,
) -> VerifyResult:
    """Verify ``events`` in storage order, stopping at the first problem.

    ``head_hash``: the expected hash of the last event (an anchor kept outside the database);
    without it a truncated tail cannot be told from a shorter log.  ``audit_key``: check every
    row's MAC too.  ``prev_hash`` / ``first_seq``: verify a window that starts mid-chain, from
    a trusted earlier row.
    """
    expected_seq = first_seq
    expected_prev = prev_hash
    checked = 0
    for row in events:
        if row.seq != expected_seq:
            problem = ChainProblem.SEQ_GAP if row.seq > expected_seq else ChainProblem.SEQ_ORDER
            return VerifyResult(False, checked, expected_seq, problem)
        if row.prev_hash != expected_prev:
            return _bad(checked, row.seq, ChainProblem.PREV_HASH_MISMATCH)
        try:
            digest = compute_hash(expected_prev, _row_bytes(row))
        except (TypeError, ValueError):
            return _bad(checked, row.seq, ChainProblem.UNREADABLE)
        if row.hash != digest:
            return _bad(checked, row.seq, ChainProblem.HASH_MISMATCH)
        if audit_key is not None:
            if row.mac is None:
                return _bad(checked, row.seq, ChainProblem.MAC_MISSING)
            if not _same(row.mac, compute_mac(audit_key, digest)):
                return _bad(checked, row.seq, ChainProblem.MAC_MISMATCH)
        expected_prev = digest
        expected_seq += 1
        checked += 1
    if head_hash is not None and head_hash != expected_prev:
        return _bad(checked, expected_seq, ChainProblem.HEAD_MISMATCH)
    return VerifyResult(True, checked)


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of MACs (strings from storage may hold any characters)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _bad(checked: int, seq: int, problem: ChainProblem) -> VerifyResult:
    return VerifyResult(False, checked, seq, problem)


def head(events: Sequence[ChainedEvent]) -> str:
    """The hash to anchor externally: the last event's, or :data:`GENESIS_HASH` when empty."""
    return events[-1].hash if events else GENESIS_HASH

"""The append-only, hash-chained audit log: computing and verifying the chain (pure).

Storing the events is a repository like any other (``shiren.storage``); everything here works on
values, so an auditor can verify an exported log with this package alone.
"""

from __future__ import annotations

from shiren.audit.chain import (
    FIRST_SEQ,
    GENESIS_HASH,
    AuditEvent,
    AuditPayloadError,
    ChainedEvent,
    ChainProblem,
    VerifyResult,
    append,
    canonical_bytes,
    check_payload,
    compute_hash,
    compute_mac,
    head,
    verify,
)

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

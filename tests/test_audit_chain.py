"""The audit hash chain: canonical form, tamper detection in both modes, the payload guard."""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditPayloadError,
    ChainedEvent,
    ChainProblem,
    append,
    canonical_bytes,
    check_payload,
    head,
    verify,
)
from shiren.errors import ErrorCode

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
KEY = b"k" * 32


def event(i: int, payload: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(
        tenant_id="tenant-a",
        kind="check.decided",
        subject_id=f"subject-{i % 3}",
        payload={"decision": "pass", "attempt": i} if payload is None else payload,
        created_at=T0 + timedelta(seconds=i),
    )


def build(n: int, *, audit_key: bytes | None = None) -> list[ChainedEvent]:
    rows: list[ChainedEvent] = []
    for i in range(n):
        rows.append(append(rows[-1] if rows else None, event(i), audit_key=audit_key))
    return rows


def test_canonical_form_and_hash_are_reproducible_by_hand() -> None:
    local = timezone(timedelta(hours=8))
    draft = AuditEvent("t", "k", None, {"b": "中", "a": [1, 2.5]}, T0.astimezone(local))
    row = append(None, draft)
    expected_json = (
        '{"created_at":"2024-05-01T08:00:00.000000Z","kind":"k",'
        '"payload":{"a":[1,2.5],"b":"中"},"seq":1,"subject_id":null,"tenant_id":"t"}'
    )
    assert canonical_bytes(1, "t", "k", None, draft.payload, draft.created_at) == (
        expected_json.encode("utf-8")
    )
    assert row.seq == 1
    assert row.prev_hash == GENESIS_HASH == "0" * 64
    assert row.hash == hashlib.sha256((GENESIS_HASH + expected_json).encode()).hexdigest()
    assert row.created_at.tzinfo is UTC
    assert row.mac is None


def test_valid_chain_verifies_in_both_modes() -> None:
    rows = build(5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert verify(rows).ok
    assert verify(rows, head_hash=head(rows)).checked == 5
    keyed = build(5, audit_key=KEY)
    assert verify(keyed, audit_key=KEY, head_hash=head(keyed)).ok
    assert [r.hash for r in keyed] == [r.hash for r in rows]  # the MAC is on top, not inside
    assert verify([]).ok
    assert verify([], head_hash=GENESIS_HASH).ok


def test_window_verification_from_a_trusted_row() -> None:
    rows = build(6)
    result = verify(rows[3:], prev_hash=rows[2].hash, first_seq=4, head_hash=rows[-1].hash)
    assert result.ok
    assert result.checked == 3


def test_edited_row() -> None:
    rows = build(5)
    rows[2] = replace(rows[2], payload={"decision": "review", "attempt": 2})
    assert verify(rows) == verify(rows, head_hash=head(rows))
    result = verify(rows)
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 2, 3)
    assert result.problem is ChainProblem.HASH_MISMATCH


def test_deleted_row() -> None:
    rows = build(5)
    del rows[1]
    result = verify(rows)
    assert (result.first_bad_seq, result.problem) == (2, ChainProblem.SEQ_GAP)


def test_reordered_rows() -> None:
    rows = build(5)
    rows[1], rows[2] = rows[2], rows[1]
    result = verify(rows)
    assert not result.ok
    assert result.first_bad_seq == 2
    rows = build(5)
    rows[3], rows[4] = rows[4], rows[3]
    assert verify(rows).first_bad_seq == 4


def test_inserted_row() -> None:
    rows = build(4)
    forged = append(rows[1], event(99, {"decision": "pass"}))  # seq 3, linked to row 2
    renumbered = [replace(r, seq=r.seq + 1) for r in rows[2:]]
    result = verify([*rows[:2], forged, *renumbered])
    assert (result.first_bad_seq, result.problem) == (4, ChainProblem.PREV_HASH_MISMATCH)
    duplicated = verify([*rows[:3], rows[2], rows[3]])
    assert (duplicated.first_bad_seq, duplicated.problem) == (4, ChainProblem.SEQ_ORDER)


def test_truncated_tail_needs_the_head_anchor() -> None:
    rows = build(5)
    anchor = head(rows)
    assert verify(rows[:3]).ok  # indistinguishable from a shorter log without an anchor
    result = verify(rows[:3], head_hash=anchor)
    assert (result.ok, result.checked, result.first_bad_seq) == (False, 3, 4)
    assert result.problem is ChainProblem.HEAD_MISMATCH
    assert not verify([], head_hash=anchor).ok


def recompute_from(rows: list[ChainedEvent], start: int, audit_key: bytes | None) -> None:
    """What an attacker with write access does: edit a row, then re-hash everything after it."""
    for i in range(start, len(rows)):
        r = rows[i]
        draft = AuditEvent(r.tenant_id, r.kind, r.subject_id, r.payload, r.created_at)
        rows[i] = append(rows[i - 1] if i else None, draft, audit_key=audit_key)


def test_recomputed_chain_is_caught_by_an_anchor_or_the_audit_key() -> None:
    plain = build(5)
    anchor = head(plain)
    plain[1] = replace(plain[1], payload={"decision": "pass", "attempt": 999})
    recompute_from(plain, 1, None)
    assert verify(plain).ok  # plain mode alone cannot see it (documented)
    assert verify(plain, head_hash=anchor).problem is ChainProblem.HEAD_MISMATCH

    keyed = build(5, audit_key=KEY)
    keyed[1] = replace(keyed[1], payload={"decision": "pass", "attempt": 999})
    recompute_from(keyed, 1, b"attacker-guess-key-of-32-bytes!!")
    result = verify(keyed, audit_key=KEY)
    assert (result.first_bad_seq, result.problem) == (2, ChainProblem.MAC_MISMATCH)

    stripped = [replace(r, mac=None) for r in build(3, audit_key=KEY)]
    assert verify(stripped, audit_key=KEY).problem is ChainProblem.MAC_MISSING
    assert verify(stripped).ok


def test_unreadable_row_is_reported_not_raised() -> None:
    rows = build(3)
    rows[1] = replace(rows[1], created_at=datetime(2024, 5, 1))  # naive
    assert verify(rows).problem is ChainProblem.UNREADABLE
    rows = build(3)
    rows[2] = replace(rows[2], payload={"x": math.nan})
    assert verify(rows).problem is ChainProblem.UNREADABLE


def test_append_copies_the_payload() -> None:
    payload: dict[str, Any] = {"decision": "pass", "nested": {"n": 1}}
    row = append(None, event(0, payload))
    payload["nested"]["n"] = 2
    payload["decision"] = "fail"
    assert verify([row]).ok


# ---- payload guard ----


@pytest.mark.parametrize(
    "payload",
    [
        {"template": "x"},
        {"template_enc": "x"},
        {"faceImage": "x"},
        {"selfie_url": "x"},
        {"embedding": [0.1]},
        {"id_number": "x"},
        {"ID-No": "x"},
        {"idCard": "x"},
        {"photo": None},
        {"meta": {"reference": {"image_sha256": "ab"}}},
        {"list": [{"biometric_score": 1}]},
    ],
)
def test_forbidden_keys(payload: dict[str, Any]) -> None:
    with pytest.raises(AuditPayloadError) as caught:
        event(0, payload)
    assert caught.value.detail["reason"] == "key"
    assert caught.value.code is ErrorCode.AUDIT_PAYLOAD_FORBIDDEN
    assert isinstance(caught.value, ValueError)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"note": "subject 11010519491231002X"}, "value"),
        ({"note": "110105491231002"}, "value"),
        ({"ref": "QUJD" * 40}, "value"),
        ({"vector": [0.5] * 128}, "shape"),
        ({"pixels": list(range(100))}, "shape"),
        ({"raw": b"bytes"}, "type"),
        ({"tags": {"a", "b"}}, "type"),
        ({"score": math.inf}, "type"),
        ({1: "int key"}, "type"),
        ({"text": "\ud800"}, "type"),
    ],
)
def test_forbidden_values(payload: dict[Any, Any], reason: str) -> None:
    with pytest.raises(AuditPayloadError) as caught:
        check_payload(payload)
    assert caught.value.detail["reason"] == reason
    assert "11010519491231002X" not in str(caught.value.to_dict())


def test_allowed_payload() -> None:
    payload = {
        "decision": "review",
        "reasons": ["liveness.spoof_suspected", "match.below_threshold"],
        "scores": {"liveness": 0.42, "match": 0.91},
        "policy_version": "2024-05",
        "pseudonym": "4d7e41513856fae9dad8195efb90c3d7b2860f7c63113a24069276030de66d05",
        "amount": 1_500_000,
        "idempotent": True,
        "note": None,
    }
    assert check_payload(payload) == payload


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        AuditEvent("t", "k", None, {}, datetime(2024, 1, 1))


# ---- property-based: any single edit or deletion anywhere is detected ----

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.characters(codec="utf-8"), max_size=8),
)
payloads = st.dictionaries(
    st.sampled_from(["decision", "reason", "level", "score", "attempt", "note", "状态"]),
    st.one_of(json_leaf, st.lists(json_leaf, max_size=3)),
    max_size=4,
)


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[ChainedEvent], bytes | None]:
    audit_key = draw(st.sampled_from([None, KEY]))
    n = draw(st.integers(1, 8))
    rows: list[ChainedEvent] = []
    for i in range(n):
        draft = AuditEvent(
            tenant_id=draw(st.sampled_from(["tenant-a", "租户"])),
            kind=draw(st.sampled_from(["session.opened", "check.decided", "subject.erased"])),
            subject_id=draw(st.one_of(st.none(), st.sampled_from(["s1", "s2"]))),
            payload=draw(payloads),
            created_at=T0 + timedelta(microseconds=draw(st.integers(0, 10**9)) + i),
        )
        rows.append(append(rows[-1] if rows else None, draft, audit_key=audit_key))
    return rows, audit_key


FIELDS = [
    "seq",
    "tenant_id",
    "kind",
    "subject_id",
    "payload",
    "created_at",
    "prev_hash",
    "hash",
    "mac",
]


def edited(row: ChainedEvent, name: str, data: st.DataObject) -> ChainedEvent:
    if name == "seq":
        return replace(row, seq=data.draw(st.integers(-5, 50).filter(lambda s: s != row.seq)))
    if name in ("tenant_id", "kind"):
        suffix = data.draw(st.sampled_from(["x", " "]))
        return replace(row, **{name: getattr(row, name) + suffix})
    if name == "subject_id":
        return replace(row, subject_id="s9" if row.subject_id is not None else "s1")
    if name == "payload":
        new = data.draw(payloads.filter(lambda p: p != row.payload))
        return replace(row, payload=new)
    if name == "created_at":
        shift = data.draw(st.integers(-(10**6), 10**6).filter(bool))
        return replace(row, created_at=row.created_at + timedelta(microseconds=shift))
    value: str = getattr(row, name) or "0" * 64
    position = data.draw(st.integers(0, 63))
    flipped = "1" if value[position] != "1" else "2"
    changes: dict[str, Any] = {name: value[:position] + flipped + value[position + 1 :]}
    return replace(row, **changes)


@given(chains(), st.data())
@settings(max_examples=300)
def test_any_single_field_edit_is_detected(
    chain: tuple[list[ChainedEvent], bytes | None], data: st.DataObject
) -> None:
    rows, audit_key = chain
    anchor = head(rows)
    index = data.draw(st.integers(0, len(rows) - 1))
    names = FIELDS if audit_key is not None else FIELDS[:-1]
    name = data.draw(st.sampled_from(names))
    before = rows[index]
    tampered = [*rows[:index], edited(before, name, data), *rows[index + 1 :]]
    result = verify(tampered, audit_key=audit_key, head_hash=anchor)
    assert not result.ok
    assert result.first_bad_seq == before.seq
    assert result.checked == index
    assert verify(rows, audit_key=audit_key, head_hash=anchor).ok


@given(chains(), st.data())
@settings(max_examples=200)
def test_any_deletion_is_detected(
    chain: tuple[list[ChainedEvent], bytes | None], data: st.DataObject
) -> None:
    rows, audit_key = chain
    anchor = head(rows)
    start = data.draw(st.integers(0, len(rows) - 1))
    count = data.draw(st.integers(1, len(rows) - start))
    remaining = rows[:start] + rows[start + count :]
    result = verify(remaining, audit_key=audit_key, head_hash=anchor)
    assert not result.ok
    assert result.first_bad_seq == rows[start].seq
    if start + count < len(rows):  # not the tail: detected even without the anchor
        assert not verify(remaining, audit_key=audit_key).ok

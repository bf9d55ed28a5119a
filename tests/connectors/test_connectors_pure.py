"""Validation, masking, the one-time-code rules and the sandbox's magic values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shiren.connectors import sandbox as sbx
from shiren.connectors.errors import ConnectorError
from shiren.connectors.otp import OtpCheck, OtpRules, OtpState, attempts_left, check, issue
from shiren.connectors.types import (
    AuthorityOutcome,
    AuthorityQuery,
    CardOutcome,
    CardQuery,
    luhn_ok,
    mask_card,
    mask_name,
    mask_phone,
    normalise_card,
    normalise_phone,
    with_luhn,
)
from shiren.errors import ErrorCode, InputError, StateError

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
RULES = OtpRules(ttl_s=300, max_attempts=3, resend_cooldown_s=60, max_sends=2)


def test_phone_and_card_validation_and_masks() -> None:
    assert normalise_phone("+86 139-1234-5678") == "13912345678"
    for bad in (
        "12912345678",
        "23912345678",
        "10012345678",
        "1391234567",
        "139123456789",
        "1391234567a",
        "１３９１２３４５６７８",
    ):
        with pytest.raises(InputError) as exc:
            normalise_phone(bad)
        assert exc.value.code is ErrorCode.PHONE_INVALID
    card = with_luhn("622202123456789")
    assert luhn_ok(card)
    assert normalise_card(card[:4] + " " + card[4:]) == card
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    with pytest.raises(InputError) as exc2:
        normalise_card(wrong)
    assert exc2.value.code is ErrorCode.CARD_NUMBER_INVALID
    assert mask_card(card) == "**** " + card[-4:]
    assert mask_phone("13912345678") == "139****5678"
    assert mask_name("张三丰") == "张**"
    assert card not in repr(CardQuery("张三", "11010519491231002X", card, "13912345678"))


def test_otp_verifies_once_and_never_stores_the_code() -> None:
    code, state = issue(OtpState(), key=KEY, scope="f1", now=T0, rules=RULES)
    assert len(code) == 6
    assert code.isdigit()
    assert state.code_hash is not None
    assert code not in state.code_hash
    result, after = check(state, code, key=KEY, scope="f1", now=T0, rules=RULES)
    assert result is OtpCheck.VERIFIED
    assert after.code_hash is None
    with pytest.raises(StateError) as exc:
        check(after, code, key=KEY, scope="f1", now=T0, rules=RULES)
    assert exc.value.code is ErrorCode.OTP_NOT_SENT


def test_otp_code_is_bound_to_its_scope_and_key() -> None:
    code, state = issue(OtpState(), key=KEY, scope="f1", now=T0, rules=RULES)
    assert check(state, code, key=KEY, scope="f2", now=T0, rules=RULES)[0] is OtpCheck.WRONG
    assert check(state, code, key=b"x" * 32, scope="f1", now=T0, rules=RULES)[0] is OtpCheck.WRONG


def test_otp_attempts_expiry_cooldown_and_send_cap() -> None:
    code, state = issue(OtpState(), key=KEY, scope="f", now=T0, rules=RULES)
    wrong = "000000" if code != "000000" else "111111"
    for left in (2, 1, 0):
        result, state = check(state, wrong, key=KEY, scope="f", now=T0, rules=RULES)
        assert result is OtpCheck.WRONG
        assert attempts_left(state, RULES) == left
    with pytest.raises(StateError) as exc:
        check(state, code, key=KEY, scope="f", now=T0, rules=RULES)  # even the right one
    assert exc.value.code is ErrorCode.OTP_ATTEMPTS_EXCEEDED
    with pytest.raises(StateError) as exc:
        issue(state, key=KEY, scope="f", now=T0 + timedelta(seconds=59), rules=RULES)
    assert exc.value.code is ErrorCode.OTP_RESEND_TOO_SOON
    assert exc.value.detail["retry_after_s"] == 1
    code2, state = issue(state, key=KEY, scope="f", now=T0 + timedelta(seconds=60), rules=RULES)
    with pytest.raises(StateError) as exc:
        check(state, code2, key=KEY, scope="f", now=T0 + timedelta(seconds=361), rules=RULES)
    assert exc.value.code is ErrorCode.OTP_EXPIRED
    with pytest.raises(StateError) as exc:
        issue(state, key=KEY, scope="f", now=T0 + timedelta(hours=1), rules=RULES)
    assert exc.value.code is ErrorCode.OTP_RESEND_TOO_SOON
    assert "max_sends" in exc.value.detail


def _card(magic: str) -> str:
    return with_luhn("62220200000" + magic)


@pytest.mark.parametrize(
    ("magic", "outcome", "mismatched"),
    [
        ("1234", CardOutcome.MATCH, ()),
        ("0001", CardOutcome.MISMATCH, ("name",)),
        ("0002", CardOutcome.MISMATCH, ("id_number",)),
        ("0003", CardOutcome.MISMATCH, ("phone",)),
        ("0004", CardOutcome.MISMATCH, ("name", "id_number")),
        ("0009", CardOutcome.UNKNOWN, ()),
    ],
)
def test_sandbox_bank_card_magic(
    magic: str, outcome: CardOutcome, mismatched: tuple[str, ...]
) -> None:
    q = CardQuery("张三", "11010519491231002X", _card(magic), "13912345678")
    r = sbx.SandboxBankCard().verify(q, idempotency_key="k")
    assert (r.outcome, r.mismatched, r.sandbox) == (outcome, mismatched, True)


def test_sandbox_failures_idempotency_and_outbox() -> None:
    cards = sbx.SandboxBankCard()
    for magic, code in (("0500", ErrorCode.CONNECTOR_UNAVAILABLE), ("0408", "connector.timeout")):
        with pytest.raises(ConnectorError) as exc:
            cards.verify(CardQuery("a", "b", _card(magic), "c"), idempotency_key=magic)
        assert exc.value.code == code
        assert exc.value.retryable
    q = CardQuery("张三", "x", _card("1234"), "13912345678")
    first = cards.verify(q, idempotency_key="same")
    assert cards.verify(q, idempotency_key="same") == first
    assert cards.calls == 1
    with pytest.raises(InputError):
        cards.verify(CardQuery("李四", "x", _card("1234"), "13912345678"), idempotency_key="same")
    sms = sbx.SandboxSms()
    sms.send_code("13912345678", "123456", idempotency_key="a")
    sms.send_code("13912345678", "123456", idempotency_key="a")
    assert sms.outbox == {"13912345678": "123456"}
    assert sms.deliveries == 1
    for phone in (sbx.SMS_UNAVAILABLE, sbx.SMS_TIMEOUT):
        with pytest.raises(ConnectorError):
            sms.send_code(phone, "1", idempotency_key=phone)
    with pytest.raises(InputError):
        sms.send_code(sbx.SMS_REJECTED, "1", idempotency_key="r")


@pytest.mark.parametrize(
    ("order", "outcome", "photo"),
    [
        ("001", AuthorityOutcome.MATCH, True),
        ("998", AuthorityOutcome.MISMATCH, None),
        ("999", AuthorityOutcome.NOT_FOUND, None),
        ("995", AuthorityOutcome.MATCH, False),
    ],
)
def test_sandbox_authority_magic(order: str, outcome: AuthorityOutcome, photo: bool | None) -> None:
    id_number = "11010519491231" + order + "X"
    r = sbx.SandboxAuthority().verify(
        AuthorityQuery("张三", id_number, b"jpg"), idempotency_key="k"
    )
    assert (r.outcome, r.photo_match) == (outcome, photo)
    with pytest.raises(ConnectorError):
        sbx.SandboxAuthority().verify(
            AuthorityQuery("张三", "11010519491231996X"), idempotency_key="k"
        )

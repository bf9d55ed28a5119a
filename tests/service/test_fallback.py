"""The non-face path as use cases (memory storage, real encryption, SANDBOX connectors): who
may open it, the SMS code and bank-card steps, exhaustion into manual review, expiry, provider
failures, and what is stored, audited and announced."""

from __future__ import annotations

import pytest

from shiren.connectors.errors import ConnectorError, timeout
from shiren.connectors.sandbox import SandboxSms
from shiren.connectors.types import SmsReceipt
from shiren.domain.entities import Decision
from shiren.domain.fallback import StepKind
from shiren.errors import ErrorCode, InputError, StateError
from tests.service.fallback_support import ID_NUMBER, NAME, PHONE, World, card, make_world


@pytest.fixture
def world() -> World:
    return make_world()


def _code(world: World) -> str:
    return world.sms.outbox[PHONE]


def test_refusing_face_goes_straight_to_sms_and_bank_card_and_passes(world: World) -> None:
    sid = world.subject()
    eid = world.event(sid)
    svc = world.fallbacks()
    flow = svc.start(world.tenant, eid, phone="+86 139 1234 5678", refuse_face=True)
    assert (flow["cause"], flow["status"], flow["next_step"]) == ("face_refused", "open", "sms_otp")
    assert flow["phone"] == "*******5678"
    with pytest.raises(StateError) as exc:
        svc.submit_bank_card(world.tenant, flow["id"], card())  # steps go in order
    assert exc.value.code is ErrorCode.FALLBACK_WRONG_STEP
    sent = svc.send_code(world.tenant, flow["id"])
    assert sent["sandbox_code"] == _code(world)
    verified = svc.verify_code(world.tenant, flow["id"], _code(world))
    assert verified["verified"] is True
    assert verified["next_step"] == "bank_card_4"
    done = svc.submit_bank_card(world.tenant, flow["id"], card())
    assert (done["status"], done["decision"], done["next_step"]) == ("passed", "pass", None)
    assert done["bank_card"]["result"] == "match"
    assert done["reasons"] == [
        "fallback.face_refused",
        "fallback.sms_verified",
        "fallback.bank_card_matched",
    ]
    hooks = [h for h in world.webhook_events() if h["event"] == "fallback.decided"]
    assert [(h["decision"], h["fallback_id"], h["event_id"]) for h in hooks] == [
        ("pass", flow["id"], eid)
    ]
    kinds = world.audit_kinds()
    assert kinds.count("fallback.decided") == 1
    assert kinds.index("fallback.started") < kinds.index("fallback.decided")
    text = world.audit_text()
    for secret in (NAME, ID_NUMBER, PHONE, card(), _code(world)):
        assert secret not in text
    assert svc.start(world.tenant, eid, phone=PHONE)["id"] == flow["id"]  # idempotent
    with pytest.raises(StateError) as exc:
        svc.send_code(world.tenant, flow["id"])
    assert exc.value.code is ErrorCode.FALLBACK_CLOSED


def test_who_may_open_the_fallback(world: World) -> None:
    svc = world.fallbacks()
    sid = world.subject()
    eid = world.event(sid)

    def start_code(event_id: str) -> object:
        with pytest.raises(StateError) as exc:
            svc.start(world.tenant, event_id, phone=PHONE)
        return exc.value.code

    assert start_code(eid) is ErrorCode.FALLBACK_NOT_ALLOWED  # no face attempt yet
    world.face_check(sid, eid, Decision.RETRY)
    world.face_check(sid, eid, Decision.REVIEW)
    assert start_code(eid) is ErrorCode.FALLBACK_NOT_ALLOWED  # 2 < face_failures = 3
    world.face_check(sid, eid, Decision.RETRY)
    assert svc.start(world.tenant, eid, phone=PHONE)["cause"] == "face_failed"
    locked = world.event(sid)
    world.face_check(sid, locked, Decision.FALLBACK)  # the face path locked the subject
    assert svc.start(world.tenant, locked, phone=PHONE)["cause"] == "face_locked"
    passed = world.event(sid)
    world.face_check(sid, passed, Decision.PASS)
    assert start_code(passed) is ErrorCode.FALLBACK_NOT_ALLOWED
    later = world.event(sid)  # failures count since the last pass: none yet
    assert start_code(later) is ErrorCode.FALLBACK_NOT_ALLOWED
    for _ in range(3):  # failures on several events of the subject add up
        world.face_check(sid, world.event(sid), Decision.RETRY)
    assert svc.start(world.tenant, later, phone=PHONE)["cause"] == "face_failed"
    assert start_code(world.event(sid, needed=False)) is ErrorCode.FALLBACK_NOT_ALLOWED
    assert start_code("0" * 32) is ErrorCode.RECORD_NOT_FOUND
    other = make_world(world.store)
    with pytest.raises(StateError) as exc:
        other.fallbacks().start(other.tenant, eid, phone=PHONE, refuse_face=True)
    assert exc.value.code is ErrorCode.RECORD_NOT_FOUND  # another tenant's event
    with pytest.raises(InputError) as bad:
        svc.start(world.tenant, eid, phone="12345")
    assert bad.value.code is ErrorCode.PHONE_INVALID


def test_wrong_codes_exhaust_into_manual_review_then_a_reviewer_decides(world: World) -> None:
    svc = world.fallbacks(step_failures=2)
    sid = world.subject()
    flow = svc.start(world.tenant, world.event(sid), phone=PHONE, refuse_face=True)
    fid = flow["id"]
    for round_ in range(2):
        svc.send_code(world.tenant, fid)
        wrong = "000000" if _code(world) != "000000" else "111111"
        for left in (4, 3, 2, 1):
            out = svc.verify_code(world.tenant, fid, wrong)
            assert (out["verified"], out["attempts_left"]) == (False, left)
        out = svc.verify_code(world.tenant, fid, wrong)  # 5th wrong code: this code is dead
        if round_ == 0:
            assert (out["status"], out["step_failures"]) == ("open", 1)
            with pytest.raises(StateError) as exc:
                svc.verify_code(world.tenant, fid, _code(world))
            assert exc.value.code is ErrorCode.OTP_ATTEMPTS_EXCEEDED
            with pytest.raises(StateError) as exc:
                svc.send_code(world.tenant, fid)  # inside the 60 s cool-down
            assert exc.value.code is ErrorCode.OTP_RESEND_TOO_SOON
            world.clock.advance(61)
    assert (out["status"], out["decision"]) == ("review", "review")
    assert out["reasons"][-1] == "fallback.exhausted"
    assert [f["id"] for f in svc.list(world.tenant, "review")] == [fid]
    world.clock.advance(1)
    closed = svc.decide_review(world.tenant, fid, outcome="approve", reviewer="alice", note="ok")
    assert (closed["status"], closed["decision"]) == ("approved", "approved")
    with pytest.raises(StateError) as exc:
        svc.decide_review(world.tenant, fid, outcome="reject", reviewer="bob")
    assert exc.value.code is ErrorCode.FALLBACK_CLOSED
    decisions = [h["decision"] for h in world.webhook_events() if h["event"] == "fallback.decided"]
    assert decisions == ["review", "approved"]


def test_card_mismatches_go_to_review_and_say_which_element(world: World) -> None:
    svc = world.fallbacks(steps=(StepKind.BANK_CARD_4,), step_failures=2)
    sid = world.subject()
    fid = svc.start(world.tenant, world.event(sid), phone=PHONE, refuse_face=True)["id"]
    first = svc.submit_bank_card(world.tenant, fid, card("0004"))
    assert first["bank_card"]["mismatched"] == ["name", "id_number"]
    assert first["bank_card"]["card"] == "**** " + card("0004")[-4:]
    assert first["status"] == "open"
    second = svc.submit_bank_card(world.tenant, fid, card("0009"))
    assert second["bank_card"]["result"] == "unknown"
    assert second["status"] == "review"
    assert second["reasons"][-2:] == ["fallback.bank_card_unknown", "fallback.exhausted"]
    with pytest.raises(InputError) as exc:
        svc.submit_bank_card(world.tenant, fid, "6222020000012345")  # bad check digit
    assert exc.value.code is ErrorCode.CARD_NUMBER_INVALID


def test_provider_failures_change_nothing_and_can_be_retried(world: World) -> None:
    svc = world.fallbacks(steps=(StepKind.BANK_CARD_4,))
    sid = world.subject()
    fid = svc.start(world.tenant, world.event(sid), phone=PHONE, refuse_face=True)["id"]
    for magic, code in (("0500", ErrorCode.CONNECTOR_UNAVAILABLE), ("0408", "connector.timeout")):
        with pytest.raises(ConnectorError) as exc:
            svc.submit_bank_card(world.tenant, fid, card(magic))
        assert exc.value.code == code
    state = svc.get(world.tenant, fid)
    assert (state["status"], state["step_failures"]) == ("open", 0)
    assert svc.submit_bank_card(world.tenant, fid, card())["decision"] == "pass"


def test_sms_provider_failure_keeps_the_send_budget(world: World) -> None:
    svc = world.fallbacks()
    sid = world.subject()
    fid = svc.start(world.tenant, world.event(sid), phone="13800000500", refuse_face=True)["id"]
    with pytest.raises(ConnectorError):
        svc.send_code(world.tenant, fid)
    assert svc.get(world.tenant, fid)["code_sends"] == 0


def test_a_send_repeated_after_a_lost_answer_is_a_new_code(world: World) -> None:
    class LosesFirstAnswer(SandboxSms):
        def send_code(self, phone: str, code: str, *, idempotency_key: str) -> SmsReceipt:
            receipt = super().send_code(phone, code, idempotency_key=idempotency_key)
            if self.deliveries == 1:
                raise timeout(self.name)  # delivered, but the answer was lost
            return receipt

    world.sms = LosesFirstAnswer()
    svc = world.fallbacks()
    fid = svc.start(world.tenant, world.event(world.subject()), phone=PHONE, refuse_face=True)
    with pytest.raises(ConnectorError):
        svc.send_code(world.tenant, fid["id"])
    out = svc.send_code(world.tenant, fid["id"])  # not refused as a reused idempotency key
    assert out["code_sends"] == 1
    assert world.sms.deliveries == 2
    assert svc.verify_code(world.tenant, fid["id"], _code(world))["verified"] is True


def test_an_unfinished_fallback_expires(world: World) -> None:
    svc = world.fallbacks(ttl_s=600)
    sid = world.subject()
    eid = world.event(sid)
    fid = svc.start(world.tenant, eid, phone=PHONE, refuse_face=True)["id"]
    world.clock.advance(601)
    with pytest.raises(StateError) as exc:
        svc.send_code(world.tenant, fid)
    assert exc.value.code is ErrorCode.FALLBACK_CLOSED
    assert svc.get(world.tenant, fid)["status"] == "expired"
    again = svc.start(world.tenant, eid, phone=PHONE, refuse_face=True)
    assert again["id"] != fid  # a new case for the event


def test_authority_step(world: World) -> None:
    svc = world.fallbacks(steps=(StepKind.AUTHORITY,), step_failures=1)
    ok = world.subject()
    fid = svc.start(world.tenant, world.event(ok), phone=PHONE, refuse_face=True)["id"]
    out = svc.submit_authority(world.tenant, fid, b"\xff\xd8photo")
    assert (out["decision"], out["authority"]["photo_match"]) == ("pass", True)
    missing = world.subject(id_number="11010519491231999X")
    fid = svc.start(world.tenant, world.event(missing), phone=PHONE, refuse_face=True)["id"]
    out = svc.submit_authority(world.tenant, fid)
    assert out["decision"] == "review"
    assert "fallback.authority_not_found" in out["reasons"]

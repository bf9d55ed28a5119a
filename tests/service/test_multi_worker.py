"""Two workers (two :class:`ShirenService` built by the production wiring, each with its own
connection pool) over ONE PostgreSQL database and ONE real Redis (random key prefix): a session
is single use across workers, failures on both reach the lock-out, the daily cap is shared, and
a replay sent to the other worker is still caught.

Redis: ``SHIREN_TEST_REDIS_URL`` (default the local server); skipped when unreachable, a failure
when ``CI`` is set — like PostgreSQL (``tests/storage/conftest.py``).
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shiren.domain.decisions import RetryRules
from shiren.errors import ErrorCode, StateError
from shiren.service.app import CheckView, ConsentIn, Engine, ShirenService
from shiren.service.bootstrap import build_service
from shiren.service.replay import RedisReplayGuard
from shiren.service.settings import Settings
from tests.conftest import lfw
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, ID_NUMBER, NAME, Recording
from tests.storage.conftest import fresh_pg_database

REDIS_URL = os.environ.get("SHIREN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@pytest.fixture
def redis_prefix() -> Iterator[tuple[Any, str]]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL} in CI")
        pytest.skip("Redis is not reachable")
    prefix = f"shiren-test-{uuid.uuid4().hex}:"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def workers(
    engine: Engine, recording: Recording, clock: FakeClock, redis_prefix: tuple[Any, str]
) -> Iterator[tuple[ShirenService, ShirenService]]:
    with fresh_pg_database() as url:
        settings = Settings(
            database_url=url,
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix[1],
            master_key=_key(),  # type: ignore[arg-type]
            audit_key=_key(),  # type: ignore[arg-type]
            challenge_key=_key(),  # type: ignore[arg-type]
        )
        pair = []
        for _ in range(2):
            svc = build_service(settings, engine=engine)
            svc.clock = clock
            svc.draw = recording.drawer()
            pair.append(svc)
        try:
            yield pair[0], pair[1]
        finally:
            for svc in pair:
                svc.store.dispose()  # type: ignore[attr-defined]


def _no_replay_guard(*services: ShirenService) -> None:
    """These sessions are all assembled from ONE recording: to the shared guard they are
    replays (which is what the last test checks); switch it off where that is not the point."""
    for svc in services:
        svc.checker.replay_guard = None


def _enrol(svc: ShirenService, tenant: Any, image: bytes) -> Any:
    return svc.enrol(
        tenant,
        external_ref="u1",
        name=NAME,
        id_number=ID_NUMBER,
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        reference_image=image,
    )


def _submit(svc: ShirenService, tenant: Any, view: Any, recording: Recording) -> CheckView:
    frames, times = recording.answer(view.challenge)
    return svc.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )


def test_a_session_is_single_use_across_workers(
    workers: tuple[ShirenService, ShirenService], recording: Recording, clock: FakeClock
) -> None:
    w1, w2 = workers
    _no_replay_guard(w1, w2)
    tenant, _ = w1.create_tenant("lender")
    subject, view = _enrol(w1, tenant, recording.still_frame())
    assert _submit(w1, tenant, view, recording).check.decision.value == "pass"
    with pytest.raises(StateError) as err:
        _submit(w2, tenant, view, recording)
    assert err.value.code is ErrorCode.SESSION_ALREADY_USED

    # the same session sent to both workers at the same moment: exactly one judges it
    clock.advance(60)
    step = w2.start_step_up(
        tenant, subject.id, event_type="disbursement", amount_minor=5_000_000, device_id="d1"
    )
    assert step.session is not None
    frames, times = recording.answer(step.session.challenge)
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def send(svc: ShirenService) -> None:
        barrier.wait()
        try:
            outcomes.append(
                svc.submit(
                    tenant,
                    step.session.session.id,  # type: ignore[union-attr]
                    nonce=step.session.session.nonce,  # type: ignore[union-attr]
                    frames=frames,
                    times_ms=times,
                )
            )
        except StateError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=send, args=(w,)) for w in (w1, w2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    judged = [o for o in outcomes if isinstance(o, CheckView)]
    assert len(judged) == 1, outcomes
    assert [o for o in outcomes if not isinstance(o, CheckView)] == [ErrorCode.SESSION_ALREADY_USED]
    assert judged[0].check.decision.value == "pass"


def test_failures_on_both_workers_reach_the_lockout(
    workers: tuple[ShirenService, ShirenService], recording: Recording, clock: FakeClock
) -> None:
    w1, w2 = workers
    _no_replay_guard(w1, w2)
    for w in workers:
        w.rules = RetryRules(max_failures=3)  # 5 in production: same code path, shorter test
    tenant, _ = w1.create_tenant("lender")
    subject, view = _enrol(w1, tenant, lfw("Jeb_Bush", 1).read_bytes())  # another person
    outcomes = []
    spare = None
    for i, worker in enumerate((w1, w2, w1)):
        check = _submit(worker, tenant, view, recording)
        outcomes.append((check.check.decision.value, check.retry_after_s, check.check.reasons))
        clock.advance(5)
        if i < 2:
            view = worker.start_step_up(tenant, subject.id, event_type="registration").session
            assert view is not None
        if i == 1:  # opened before the lock-out, answered on the other worker after it
            spare = worker.start_step_up(tenant, subject.id, event_type="registration").session
    assert all(o in ("retry", "review") for o, _, _ in outcomes[:2]), outcomes
    assert outcomes[2][:2] == ("fallback", 1800)  # third failure, counted over both workers
    assert "limit.locked" in outcomes[2][2]
    assert spare is not None
    late = _submit(w2, tenant, spare, recording)
    assert late.check.decision.value == "fallback"  # the other worker sees the lock
    assert "limit.locked" in late.check.reasons
    assert 0 < (late.retry_after_s or 0) <= 1800
    step = w2.start_step_up(tenant, subject.id, event_type="registration")  # and no new link
    assert step.session is None
    assert step.requirement.reasons == ("limit.locked",)


def test_the_daily_cap_is_shared(
    workers: tuple[ShirenService, ShirenService], recording: Recording, clock: FakeClock
) -> None:
    """The cap counts today's attempts per ID number; it bites on a failed attempt (a pass is
    a pass), so a different person's face makes the failures."""
    w1, w2 = workers
    _no_replay_guard(w1, w2)
    for w in workers:
        w.rules = RetryRules(daily_cap=2, max_failures=10)
    tenant, _ = w1.create_tenant("lender")
    subject, view = _enrol(w1, tenant, lfw("Jeb_Bush", 1).read_bytes())
    first = _submit(w1, tenant, view, recording)  # attempt 1 today
    assert first.check.decision.value in ("retry", "review"), first.check.reasons
    assert "limit.daily_cap" not in first.check.reasons
    clock.advance(5)
    step = w2.start_step_up(tenant, subject.id, event_type="registration")
    assert step.session is not None
    capped = _submit(w2, tenant, step.session, recording)  # attempt 2, on the other worker
    assert capped.check.decision.value == "fallback"
    assert "limit.daily_cap" in capped.check.reasons


def test_a_replay_sent_to_the_other_worker_is_caught(
    workers: tuple[ShirenService, ShirenService], recording: Recording
) -> None:
    w1, w2 = workers
    assert isinstance(w2.checker.replay_guard, RedisReplayGuard)  # the production wiring
    tenant, _ = w1.create_tenant("lender")
    subject, view = _enrol(w1, tenant, recording.still_frame())
    frames, times = recording.answer(view.challenge)
    first = w1.submit(
        tenant, view.session.id, nonce=view.session.nonce, frames=frames, times_ms=times
    )
    assert first.check.decision.value == "pass"
    step = w2.start_step_up(tenant, subject.id, event_type="password_reset")
    assert step.session is not None
    again = w2.submit(
        tenant,
        step.session.session.id,
        nonce=step.session.session.nonce,
        frames=frames,
        times_ms=times,
    )
    assert again.check.decision.value == "review"
    assert "liveness.replay_suspected" in again.check.reasons


def test_redis_replay_guard_semantics(redis_prefix: tuple[Any, str]) -> None:
    client, prefix = redis_prefix
    g1 = RedisReplayGuard(client, prefix, capacity=3)
    g2 = RedisReplayGuard(client, prefix, capacity=3)
    fp = (0x0F0F0F0F0F0F0F0F, 0x1234, 0xFFFF0000FFFF0000)
    near = (fp[0] ^ 0b111, fp[1] ^ 0b1, fp[2])  # a re-encoded copy: a few bits differ
    far = (fp[0] ^ 0xFFFF, fp[1], fp[2])
    assert g1.seen_before(fp, "n1") is False
    assert g2.seen_before(fp, "n1") is False  # the same session again is not a replay
    assert g2.seen_before(near, "n2") is True  # the same frames under a new nonce
    assert g1.seen_before(far, "n3") is False
    for i in range(3):  # capacity 3: the oldest entries fall out
        g1.seen_before((i, i, i), f"x{i}")
    assert g2.seen_before(fp, "n4") is False

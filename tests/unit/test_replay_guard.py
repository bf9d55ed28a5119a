"""The in-process replay guard: the same frames under a new nonce are a replay; near copies (a
few bits of the difference hashes) too; the ring forgets the oldest captures."""

from __future__ import annotations

import random

from shiren.liveness.check import MemoryReplayGuard


def _print(rng: random.Random) -> tuple[int, ...]:
    return tuple(rng.getrandbits(64) for _ in range(3))


def _flip(value: int, bits: int) -> int:
    for b in range(bits):
        value ^= 1 << (b * 7)
    return value


def test_same_frames_under_another_nonce_are_a_replay() -> None:
    guard = MemoryReplayGuard()
    fp = _print(random.Random(1))
    assert not guard.seen_before(fp, "n1")
    assert not guard.seen_before(fp, "n1")  # the same session asking again is no replay
    assert guard.seen_before(fp, "n2")


def test_near_copies_within_the_distance() -> None:
    guard = MemoryReplayGuard(max_distance=6)
    fp = _print(random.Random(2))
    assert not guard.seen_before(fp, "a")
    near = (_flip(fp[0], 6), fp[1], _flip(fp[2], 3))
    far = (_flip(fp[0], 7), fp[1], fp[2])
    assert guard.seen_before(near, "b")
    assert not guard.seen_before(far, "c")  # one frame 7 bits off: not the same capture


def test_unrelated_captures_never_collide() -> None:
    rng = random.Random(3)
    guard = MemoryReplayGuard(capacity=2000)
    assert not any(guard.seen_before(_print(rng), f"n{i}") for i in range(2000))


def test_the_ring_forgets_the_oldest() -> None:
    rng = random.Random(4)
    guard = MemoryReplayGuard(capacity=3)
    first = _print(rng)
    guard.seen_before(first, "x0")
    for i in range(3):
        guard.seen_before(_print(rng), f"x{i + 1}")
    assert not guard.seen_before(first, "later")  # evicted
    assert guard.seen_before(first, "again")  # remembered anew under "later"

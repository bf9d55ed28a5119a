"""Replay detection: a capture's fingerprint, and guards that remember fingerprints by nonce.

Why: a genuine capture answers exactly one challenge.  The same frames submitted again under a
fresh nonce (an attacker replaying a recorded session, whose upload metadata they control) must
be refused before any model runs.  A capture's fingerprint is the difference hashes of three of its
frames, which survive re-encoding and small rescaling; a guard remembers recent fingerprints with
the nonce they answered and reports a close match under another nonce.  :class:`MemoryReplayGuard`
sees one process's captures; the service has a shared one (:mod:`shiren.service.replay`).
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from shiren.liveness.frames import FrameSequence


class ReplayGuard(Protocol):
    """Remembers sessions' frame fingerprints; says when frames come back under a new nonce."""

    def seen_before(self, fingerprint: tuple[int, ...], nonce: str) -> bool: ...


class MemoryReplayGuard:
    """In-process guard: a ring of the last ``capacity`` fingerprints, compared all at once
    (a Python loop over 10,000 entries cost ~15 ms per check once the ring was full)."""

    def __init__(self, capacity: int = 10_000, max_distance: int = 6) -> None:
        self._prints = np.zeros((capacity, FINGERPRINT_FRAMES), dtype=np.uint64)
        self._nonces: list[str | None] = [None] * capacity
        self._size = 0
        self._next = 0
        self._max_distance = max_distance
        self._lock = threading.Lock()

    def seen_before(self, fingerprint: tuple[int, ...], nonce: str) -> bool:
        probe = np.array(fingerprint, dtype=np.uint64)
        with self._lock:
            known = self._prints[: self._size]
            close = (np.bitwise_count(known ^ probe) <= self._max_distance).all(axis=1)
            if any(self._nonces[i] != nonce for i in np.flatnonzero(close)):
                return True
            self._prints[self._next] = probe
            self._nonces[self._next] = nonce
            self._next = (self._next + 1) % len(self._nonces)
            self._size = min(self._size + 1, len(self._nonces))
            return False


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of a frame (robust to re-encoding and small rescaling)."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


FINGERPRINT_FRAMES = 3
"""The first, middle and last frames' difference hashes make a capture's fingerprint."""


def fingerprint(frames: FrameSequence) -> tuple[int, ...]:
    n = len(frames)
    return tuple(dhash(frames.frames[i].image) for i in (0, n // 2, n - 1))


__all__ = ["FINGERPRINT_FRAMES", "MemoryReplayGuard", "ReplayGuard", "dhash", "fingerprint"]

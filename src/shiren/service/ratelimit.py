"""Attempt counters for retry limits and lock-outs, shared by every worker.

Two implementations of one Protocol: Redis (several workers behind a load balancer see the same
counts; sorted sets give an exact rolling window, keys expire by themselves) and in-process (the
embedded single-worker mode, and tests).  Keys are opaque strings built by the service from
tenant + subject / device / ID-number *pseudonym*, never from a raw ID number.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Any, Protocol


class AttemptCounter(Protocol):
    def add_failure(self, key: str, window_s: int, now: float | None = None) -> int:
        """Record one failure; return the failures within the rolling window, this one included."""
        ...

    def failures(self, key: str, window_s: int, now: float | None = None) -> int: ...

    def lock(self, key: str, seconds: int, now: float | None = None) -> None: ...

    def locked_for(self, key: str, now: float | None = None) -> int:
        """Seconds left on a lock (0 = not locked)."""
        ...

    def add_daily(self, key: str, now: float | None = None) -> int:
        """Count one attempt today (UTC day); return today's count."""
        ...

    def clear(self, key: str) -> None:
        """Forget failures and lock (after a pass)."""
        ...


def _day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


class MemoryCounter:
    def __init__(self) -> None:
        self._fail: dict[str, deque[float]] = defaultdict(deque)
        self._locks: dict[str, float] = {}
        self._daily: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()

    def _trim(self, key: str, window_s: int, now: float) -> deque[float]:
        q = self._fail[key]
        while q and q[0] <= now - window_s:
            q.popleft()
        return q

    def add_failure(self, key: str, window_s: int, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._lock:
            q = self._trim(key, window_s, t)
            q.append(t)
            return len(q)

    def failures(self, key: str, window_s: int, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._lock:
            return len(self._trim(key, window_s, t))

    def lock(self, key: str, seconds: int, now: float | None = None) -> None:
        t = time.time() if now is None else now
        with self._lock:
            self._locks[key] = t + seconds

    def locked_for(self, key: str, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._lock:
            until = self._locks.get(key, 0.0)
            return max(0, int(until - t + 0.999))

    def add_daily(self, key: str, now: float | None = None) -> int:
        t = time.time() if now is None else now
        with self._lock:
            self._daily[(key, _day(t))] += 1
            return self._daily[(key, _day(t))]

    def clear(self, key: str) -> None:
        with self._lock:
            self._fail.pop(key, None)
            self._locks.pop(key, None)


class RedisCounter:
    """Redis-backed counters (``redis.Redis`` client injected; key prefix per deployment)."""

    def __init__(self, client: Any, prefix: str = "shiren:") -> None:
        self._r = client
        self._p = prefix

    def add_failure(self, key: str, window_s: int, now: float | None = None) -> int:
        t = time.time() if now is None else now
        k = f"{self._p}fail:{key}"
        pipe = self._r.pipeline()
        pipe.zremrangebyscore(k, "-inf", t - window_s)
        pipe.zadd(k, {uuid.uuid4().hex: t})
        pipe.zcard(k)
        pipe.expire(k, window_s + 60)
        return int(pipe.execute()[2])

    def failures(self, key: str, window_s: int, now: float | None = None) -> int:
        t = time.time() if now is None else now
        return int(self._r.zcount(f"{self._p}fail:{key}", f"({t - window_s}", "+inf"))

    def lock(self, key: str, seconds: int, now: float | None = None) -> None:
        t = time.time() if now is None else now
        self._r.set(f"{self._p}lock:{key}", repr(t + seconds), ex=max(1, seconds))

    def locked_for(self, key: str, now: float | None = None) -> int:
        t = time.time() if now is None else now
        raw = self._r.get(f"{self._p}lock:{key}")
        if raw is None:
            return 0
        return max(0, int(float(raw) - t + 0.999))

    def add_daily(self, key: str, now: float | None = None) -> int:
        t = time.time() if now is None else now
        k = f"{self._p}day:{_day(t)}:{key}"
        pipe = self._r.pipeline()
        pipe.incr(k)
        pipe.expire(k, 2 * 86400)
        return int(pipe.execute()[0])

    def clear(self, key: str) -> None:
        self._r.delete(f"{self._p}fail:{key}", f"{self._p}lock:{key}")


__all__ = ["AttemptCounter", "MemoryCounter", "RedisCounter"]

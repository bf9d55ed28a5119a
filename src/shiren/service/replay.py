"""A liveness replay guard shared by every worker, in Redis.

Why: the guard remembers the fingerprints of recent captures so that the *same frames* sent
again under a new nonce (a recorded session replayed into a fresh challenge) are caught.  The
in-process :class:`~shiren.liveness.check.MemoryReplayGuard` only sees the captures of its own
process; behind a load balancer a replay sent to another worker would pass unnoticed.  This
guard keeps one bounded list per deployment in Redis instead.

Fingerprints match *approximately* (a few bits of Hamming distance per frame hash, robust to
re-encoding), which no Redis index can look up, so the guard pushes its entry and then reads the
recent list back (one MULTI/EXEC round trip) and compares in Python — the same O(capacity) scan
the in-process guard does.  Pushing *before* reading means two workers that receive the same
frames at the same moment both see the other's entry: both are flagged, never neither (a false
alarm only for a replay race, which goes to review rather than passing).
"""

from __future__ import annotations

from typing import Any

DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_DISTANCE = 6
DEFAULT_TTL_S = 24 * 3600


def _near(a: tuple[int, ...], b: tuple[int, ...], max_distance: int) -> bool:
    return len(a) == len(b) and all(
        bin(x ^ y).count("1") <= max_distance for x, y in zip(a, b, strict=True)
    )


def _encode(fingerprint: tuple[int, ...], nonce: str) -> str:
    return ",".join(format(h, "x") for h in fingerprint) + "|" + nonce


def _decode(raw: Any) -> tuple[tuple[int, ...], str] | None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    hashes, sep, nonce = text.partition("|")
    if not sep:
        return None
    try:
        return tuple(int(h, 16) for h in hashes.split(",")), nonce
    except ValueError:
        return None


class RedisReplayGuard:
    """:class:`~shiren.liveness.check.ReplayGuard` over Redis (client injected; key prefix per
    deployment, random per test)."""

    def __init__(
        self,
        client: Any,
        prefix: str = "shiren:",
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self._r = client
        self._key = f"{prefix}replay"
        self._capacity = capacity
        self._max_distance = max_distance
        self._ttl_s = ttl_s

    def seen_before(self, fingerprint: tuple[int, ...], nonce: str) -> bool:
        pipe = self._r.pipeline(transaction=True)
        pipe.lpush(self._key, _encode(fingerprint, nonce))
        pipe.ltrim(self._key, 0, self._capacity - 1)
        pipe.lrange(self._key, 0, self._capacity - 1)
        pipe.expire(self._key, self._ttl_s)
        recent = pipe.execute()[2]
        for raw in recent:
            entry = _decode(raw)
            if (
                entry is not None
                and entry[1] != nonce
                and _near(entry[0], fingerprint, self._max_distance)
            ):
                return True
        return False


__all__ = ["RedisReplayGuard"]

"""Redis failures as typed, retryable errors (issue 7, docs/RELIABILITY.md "Faults").

The retry counters, lock-outs, daily caps (:mod:`shiren.service.ratelimit`) and the replay guard
(:mod:`shiren.service.replay`) are shared by every worker through Redis.  When Redis is down they
**fail closed**: a check that cannot read its subject's lock-out or record its failure, or cannot
ask whether a capture was seen before, is not judged at all.  Falling back to per-process
counters would hand every worker (and every restart) a fresh set of attempts and let a replayed
capture through on another worker: a security hole, not a degradation.

:class:`GuardedRedis` wraps the ``redis.Redis`` client so that any Redis error (refused
connection, timeout, server going down mid-command) becomes a :class:`~shiren.errors.ServiceError`
``storage.shared_state_unavailable`` — HTTP 503 with ``Retry-After`` — instead of an unexpected
exception (a 500).  The client itself gets short socket timeouts (:func:`connect`) so a Redis
that hangs costs seconds, not the request deadline.  Nothing needs restarting when Redis comes
back: the next command opens a new connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiren.errors import ErrorCode, ServiceError

SOCKET_TIMEOUT_S = 2.0


def shared_state_unavailable(exc: Exception) -> ServiceError:
    return ServiceError(
        "shared counters are unavailable",
        code=ErrorCode.SHARED_STATE_UNAVAILABLE,
        detail={"driver_error": type(exc).__name__},
    )


def _redis_error() -> type[Exception]:
    import redis

    error: type[Exception] = redis.exceptions.RedisError
    return error


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    error = _redis_error()

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except error as exc:
            raise shared_state_unavailable(exc) from None

    return call


class _GuardedPipeline:
    """A pipeline queues commands locally; only :meth:`execute` talks to Redis."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _guard(self._pipe.execute)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


class GuardedRedis:
    """A ``redis.Redis`` whose commands raise ``storage.shared_state_unavailable`` on failure."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def pipeline(self, *args: Any, **kwargs: Any) -> _GuardedPipeline:
        return _GuardedPipeline(self._client.pipeline(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        return _guard(attr) if callable(attr) else attr


def connect(url: str) -> GuardedRedis:
    """The service's Redis client: short connect/read timeouts, errors typed."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S
    )
    return GuardedRedis(client)


__all__ = ["GuardedRedis", "connect", "shared_state_unavailable"]

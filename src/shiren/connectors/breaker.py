"""A circuit breaker: stop calling a provider that keeps failing, and probe it now and then.

States: **closed** (calls go through; ``failure_threshold`` consecutive failures open it),
**open** (calls fail at once with ``connector.circuit_open`` for ``reset_after_s``), then
**half-open** (up to ``half_open_calls`` probe calls go through: a success closes the circuit,
a failure opens it again for another ``reset_after_s``).

Only failures of the *provider* count (down, timeouts, 5xx, unreadable answers): a provider
that refuses bad input is healthy.  The clock is injected (monotonic seconds), so tests move
time instead of sleeping.  Thread-safe: one breaker per provider, shared by every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 5
    reset_after_s: float = 30.0
    half_open_calls: int = 1


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._current()

    def _current(self) -> CircuitState:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.settings.reset_after_s
        ):
            self._state = CircuitState.HALF_OPEN
            self._probes = 0
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now (a half-open circuit lets a few probes through)."""
        with self._lock:
            state = self._current()
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.HALF_OPEN and self._probes < self.settings.half_open_calls:
                self._probes += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._probes = 0

    def record_failure(self) -> None:
        with self._lock:
            state = self._current()
            self._failures += 1
            if state is CircuitState.HALF_OPEN or self._failures >= self.settings.failure_threshold:
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
                self._failures = 0
                self._probes = 0


__all__ = ["BreakerSettings", "CircuitBreaker", "CircuitState"]

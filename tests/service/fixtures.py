"""Session-scoped fixtures shared by tests/service and tests/api (imported by both conftests):
the real engine is loaded once per test process, the recording's meshes tracked once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shiren.service.app import Engine, ShirenService
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from shiren.storage.sql import SqlStore, make_engine, migrate
from tests.service.support import Recording, build_engine, load_recording


class FakeClock:
    """A settable UTC clock (sessions expire after 5 minutes: tests move time, not sleep)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_service(
    kind: str,
    db_path: Path,
    engine: Engine,
    recording: Recording,
    clock: FakeClock,
    **options: Any,
) -> ShirenService:
    """A service on a fresh in-memory store (``kind="memory"``) or a migrated SQLite file, with
    the real models, a fake clock and challenges the recording can answer.  Replay detection is
    off: every session here is assembled from one recording."""
    store: Any
    if kind == "memory":
        store = MemoryStore()
    else:
        sql = make_engine(f"sqlite:///{db_path}")
        migrate(sql)
        store = SqlStore(sql)
    return ShirenService(
        store=store,
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
        **options,
    )


@pytest.fixture(scope="session")
def engine(real_pad: Any) -> Engine:
    return build_engine(real_pad)


@pytest.fixture(scope="session")
def recording(real_mov_frames: Any, engine: Engine) -> Recording:
    return load_recording(real_mov_frames, engine.checker.tracker)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    return FakeClock()

"""Faults become typed, retryable errors (docs/RELIABILITY.md "Faults"): the driver errors a
full disk, a lost database connection and an unreachable Redis raise, mapped to their stable
codes.  The end-to-end versions (real processes) are in ``tests/faults``."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sqlalchemy.exc import InterfaceError, OperationalError

from shiren.api.app import _lost_database, status_of
from shiren.errors import ErrorCode, ServiceError
from shiren.service.ratelimit import RedisCounter
from shiren.service.redis_guard import connect
from shiren.service.replay import RedisReplayGuard
from shiren.storage.sql.repositories import unavailable


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("server error")
        self.sqlstate = sqlstate


def test_a_full_disk_is_storage_full_and_retryable() -> None:
    for orig in (sqlite3.OperationalError("database or disk is full"), _PgError("53100")):
        err = unavailable(OperationalError("INSERT …", {}, orig))
        assert err.code is ErrorCode.STORAGE_FULL
        assert status_of(err) == 503


def test_other_driver_errors_are_storage_unavailable() -> None:
    for orig in (sqlite3.OperationalError("database is locked"), _PgError("57P01")):
        err = unavailable(OperationalError("SELECT 1", {}, orig))
        assert err.code is ErrorCode.STORAGE_UNAVAILABLE
        assert status_of(err) == 503


def test_lost_connections_are_recognised_outside_repositories() -> None:
    assert _lost_database(OperationalError("SELECT 1", {}, Exception("gone")))
    assert _lost_database(InterfaceError("SELECT 1", {}, Exception("closed")))
    assert not _lost_database(ValueError("a bug is still a 500"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed


def test_unreachable_redis_fails_closed_with_a_typed_error() -> None:
    client = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    counter, guard = RedisCounter(client), RedisReplayGuard(client)
    calls = [
        lambda: counter.locked_for("k"),
        lambda: counter.add_failure("k", 60),
        lambda: counter.add_daily("k"),
        lambda: guard.seen_before((1, 2, 3), "nonce"),
    ]
    for call in calls:
        with pytest.raises(ServiceError) as info:
            call()
        assert info.value.code is ErrorCode.SHARED_STATE_UNAVAILABLE
        assert status_of(info.value) == 503

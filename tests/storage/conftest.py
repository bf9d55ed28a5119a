"""Backends for the storage contract tests: memory, SQLite (a tmp file) and PostgreSQL.

PostgreSQL gets a fresh database per test module (``shiren_test_<random>``, dropped afterwards)
on ``SHIREN_TEST_PG_URL`` (default: the local trust-auth server).  When it is unreachable the
PostgreSQL tests skip — or fail when ``CI`` is set, so CI can never go green by skipping them.
Between tests every table is emptied (cheaper than a new database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from shiren.storage.memory import MemoryStore
from shiren.storage.ports import UnitOfWork, UnitOfWorkFactory
from shiren.storage.sql import SqlStore, make_engine, metadata, migrate

PG_ADMIN_URL = os.environ.get(
    "SHIREN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("memory", "sqlite", "postgresql")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL required in CI: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration of the block; yields its URL."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    name = f"shiren_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means "no server"
        admin.dispose()
        _unavailable(f"{type(exc).__name__}: {exc}".splitlines()[0])
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Backend:
    """One storage backend under test: ``factory()`` opens a unit of work; ``reset()`` empties
    it; ``engine`` is the SQL engine (``None`` for memory)."""

    name: str
    factory: UnitOfWorkFactory
    reset: Callable[[], None]
    engine: Engine | None = None


def _emptier(engine: Engine) -> Callable[[], None]:
    tables = [t.name for t in reversed(metadata.sorted_tables)]

    def reset() -> None:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(tables)))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))

    return reset


@contextmanager
def open_backend(name: str, tmp: Path) -> Iterator[Backend]:
    """A migrated, empty backend of kind ``name``."""
    if name == "memory":
        holder = [MemoryStore()]

        def reset() -> None:
            holder[0] = MemoryStore()

        def factory() -> UnitOfWork:
            return holder[0]()

        yield Backend(name, factory, reset)
        return
    if name == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'shiren.db'}")
        migrate(engine)
        try:
            yield Backend(name, SqlStore(engine), _emptier(engine), engine)
        finally:
            engine.dispose()
        return
    with fresh_pg_database() as url:
        engine = make_engine(url, pool_size=12, max_overflow=4)
        migrate(engine)
        try:
            yield Backend(name, SqlStore(engine), _emptier(engine), engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def backend_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    with open_backend(request.param, tmp_path_factory.mktemp(request.param)) as backend:
        yield backend


@pytest.fixture
def backend(backend_module: Backend) -> Backend:
    backend_module.reset()
    return backend_module


@pytest.fixture
def uow_factory(backend: Backend) -> UnitOfWorkFactory:
    return backend.factory

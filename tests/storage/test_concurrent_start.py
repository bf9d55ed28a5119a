"""Several workers starting at once on one fresh PostgreSQL database (``shiren serve --workers
N``): each process migrates and creates the 1:N index's extension, table and index.  ``IF NOT
EXISTS`` alone does not make that safe — two concurrent ``CREATE EXTENSION`` both pass the check
and one fails on the catalogue's unique key (seen: a worker died at start in the kill-9 fault
test), and concurrent migrations of a fresh database race to create the same tables.  Advisory
locks serialise both steps; this test starts separate processes together and expects every one
to come up.  Each worker then scopes the provider to the shipped network (MobileFaceNet, 192-d:
a table of its own, created under the same lock), as the service's ``FraudGuard`` does."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

from sqlalchemy import text

from shiren.fraud.pgvector import TABLE, table_for
from shiren.storage.sql import make_engine
from tests.storage.conftest import fresh_pg_database

WORKERS = 4


def _start(url: str, barrier: Any, failures: Any) -> None:
    """One worker's start-up, as ``shiren.service.bootstrap.build_service`` runs it."""
    from shiren.fraud.pgvector import PgVectorProvider
    from shiren.storage.sql import make_engine, migrate

    engine = make_engine(url)
    try:
        barrier.wait(timeout=60)
        migrate(engine)
        barrier.wait(timeout=60)  # the index step starts together too
        provider = PgVectorProvider(engine)
        provider.ensure()
        provider.for_network("mobilefacenet-onnx", 192)  # creates the 192-d table
    except Exception as exc:  # what would have killed the worker
        failures.put(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


def test_workers_starting_together_all_migrate_and_create_the_index() -> None:
    ctx = mp.get_context("spawn")
    with fresh_pg_database() as url:
        barrier = ctx.Barrier(WORKERS)
        failures = ctx.Queue()
        procs = [ctx.Process(target=_start, args=(url, barrier, failures)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        hung = [p for p in procs if p.is_alive()]
        for p in hung:
            p.kill()
        found = []
        while not failures.empty():
            found.append(failures.get())
        assert not hung, f"{len(hung)} of {WORKERS} workers never came up"
        assert found == []
        assert [p.exitcode for p in procs] == [0] * WORKERS
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
                assert conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() == 0
                assert conn.execute(text(f"SELECT count(*) FROM {table_for(192)}")).scalar() == 0
                ext = "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
                assert conn.execute(text(ext)).scalar() == 1
        finally:
            engine.dispose()

"""The Alembic migrations create exactly the schema of ``shiren.storage.sql.schema``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from shiren.storage.sql import alembic_config, downgrade, make_engine, metadata, migrate

from .conftest import fresh_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    with fresh_pg_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _diffs(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))


def test_migration_matches_models_exactly(empty_engine: Engine) -> None:
    migrate(empty_engine)
    assert _diffs(empty_engine) == []
    tables = set(inspect(empty_engine).get_table_names())
    assert tables == {t.name for t in metadata.sorted_tables} | {"alembic_version"}


def test_migrate_is_idempotent_and_reversible(empty_engine: Engine) -> None:
    migrate(empty_engine)
    migrate(empty_engine)
    downgrade(empty_engine, "base")
    assert set(inspect(empty_engine).get_table_names()) == {"alembic_version"}
    migrate(empty_engine)
    assert _diffs(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0009"


def test_migrate_accepts_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_single_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == ["0009"]

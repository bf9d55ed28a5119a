"""Engine factory: SQLite pragmas, URL handling, UTC columns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from shiren.errors import ConfigError, ErrorCode
from shiren.storage.sql import make_engine
from shiren.storage.sql.schema import UTCDateTime


def test_sqlite_connections_get_wal_foreign_keys_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", sqlite_busy_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "secure_delete")
            }
    finally:
        engine.dispose()
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 1234,
                      "secure_delete": 1}  # fmt: skip


def test_postgres_urls_use_psycopg3() -> None:
    engine = make_engine("postgresql://u@localhost/db")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unsupported_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        make_engine("mysql://u@localhost/db")
    assert err.value.code is ErrorCode.CONFIG_INVALID


def test_utc_column_refuses_naive_datetimes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with pytest.raises(ValueError, match="naive"):
            UTCDateTime().process_bind_param(datetime(2025, 1, 1), engine.dialect)
    finally:
        engine.dispose()

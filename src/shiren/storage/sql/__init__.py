"""SQL storage (SQLAlchemy 2 Core): SQLite (WAL, the single-node default) and PostgreSQL.

Typical start-up::

    engine = make_engine(settings.database_url)
    migrate(engine)
    uow_factory = SqlStore(engine)
"""

from __future__ import annotations

from shiren.storage.sql.engine import (
    alembic_config,
    checkpoint_sqlite,
    downgrade,
    make_engine,
    migrate,
)
from shiren.storage.sql.schema import metadata
from shiren.storage.sql.uow import SqlStore, SqlUnitOfWork

__all__ = [
    "SqlStore",
    "SqlUnitOfWork",
    "alembic_config",
    "checkpoint_sqlite",
    "downgrade",
    "make_engine",
    "metadata",
    "migrate",
]

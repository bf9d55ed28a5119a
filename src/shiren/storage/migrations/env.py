"""Alembic environment: runs on a connection handed over by :func:`shiren.storage.sql.migrate`
(``config.attributes["connection"]``), or on ``sqlalchemy.url`` when run by the ``alembic`` CLI.

``render_as_batch`` makes future ALTERs work on SQLite (copy-and-move), and ``compare_type`` lets
``alembic check`` / the schema test catch a column whose type drifted from the models.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shiren.storage.sql.engine import make_engine
from shiren.storage.sql.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

"""Engine factory and programmatic migrations.

One place decides how shiren talks to a database, so that the service, the CLI and the tests all
get the same connection semantics:

* **SQLite** (the single-node default): WAL so readers never block the writer;
  ``foreign_keys=ON`` because SQLite ignores foreign keys otherwise (and tenant isolation relies on
  them); ``busy_timeout`` so a writer waits for the lock instead of failing at once;
  ``secure_delete=ON`` so erased or expired ciphertext is overwritten, not left in free pages.
  Every transaction starts with ``BEGIN IMMEDIATE``: it takes the single writer lock up front, so
  a read-then-write (audit head → append, outbox select → claim) can never be invalidated by
  another writer, and lock waits happen at ``BEGIN`` where ``busy_timeout`` applies, instead of
  as an unretryable ``SQLITE_BUSY`` at the first write.
* **PostgreSQL** through psycopg 3 (``postgresql://`` is rewritten to ``postgresql+psycopg://``),
  session time zone UTC, ``pool_pre_ping`` so a restarted server costs one retry, not an error.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from shiren.errors import ConfigError, ErrorCode

DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000


def _normalise_url(url: str | URL) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":  # SQLAlchemy 2.0's default driver is psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise ConfigError(
        f"unsupported database backend {backend!r}: use sqlite:/// or postgresql://",
        code=ErrorCode.CONFIG_INVALID,
        detail={"backend": backend},
    )


def make_engine(
    url: str | URL,
    *,
    echo: bool = False,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    **kwargs: Any,
) -> Engine:
    """The engine for ``url`` (``sqlite:///path.db`` or ``postgresql://…``), configured as the
    module docstring explains.  Extra keyword arguments go to :func:`sqlalchemy.create_engine`."""
    parsed = _normalise_url(url)
    # bound parameters (sealed blobs, session nonces, signed challenges, hashes) never appear in
    # SQL log lines or in the text of a database exception (issue 7, docs/RELIABILITY.md)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, echo=echo, **kwargs)
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("options", "-c timezone=UTC")
    return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN DEFERRED lazily
        # and commit before DDL); SQLAlchemy's "begin" event below issues BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def checkpoint_sqlite(engine: Engine) -> None:
    """Fold SQLite's write-ahead log into the database file and truncate the log.

    With ``secure_delete`` deleted rows are zeroed in the new page images, but the old images
    stay in the ``-wal`` file until a checkpoint; run this after an erasure or a retention sweep
    so that deleted ciphertext is gone from disk too.  A no-op on other backends.
    """
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction: checkpoints cannot run inside one
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def migrations_dir() -> Path:
    """Where the Alembic scripts live (inside the installed package)."""
    return Path(str(resources.files("shiren.storage") / "migrations"))


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged scripts (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return cfg


MIGRATION_LOCK = 0x5348_4952_454E_0001
"""PostgreSQL advisory-lock key held while migrating ("SHIREN" + 1)."""


def migrate(url: str | URL | Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the latest).  Idempotent; the service runs
    it at start, tests run it on every fresh database."""
    _run_alembic(url, "upgrade", revision)


def downgrade(url: str | URL | Engine, revision: str) -> None:
    """Downgrade to ``revision`` (``"base"`` drops everything shiren created)."""
    _run_alembic(url, "downgrade", revision)


def _run_alembic(url: str | URL | Engine, action: str, revision: str) -> None:
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        cfg = alembic_config()
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # every worker migrates at start: on a fresh database they would race to create
                # the same tables; one runs, the others wait and find nothing left to do
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            cfg.attributes["connection"] = connection
            getattr(command, action)(cfg, revision)
    finally:
        if engine is not url:
            engine.dispose()


__all__ = [
    "alembic_config",
    "checkpoint_sqlite",
    "downgrade",
    "make_engine",
    "migrate",
    "migrations_dir",
]

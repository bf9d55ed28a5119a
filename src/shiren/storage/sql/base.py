"""What every SQL repository shares: typed errors from driver errors, row ↔ entity mapping and
the statement helpers of :class:`_SqlRepo`.

Every state change is one conditional ``UPDATE … WHERE <expected state> RETURNING``: of N
concurrent callers exactly one sees a row come back, under READ COMMITTED on PostgreSQL as under
SQLite's single writer.  Only when no row comes back do we read again, to tell the caller *why*
(missing, wrong nonce, already used, wrong state).

Inserts run inside a SAVEPOINT so that a unique or foreign-key violation becomes a typed
:class:`~shiren.errors.StateError` and leaves the unit of work usable (PostgreSQL would otherwise
abort the whole transaction), matching the in-memory reference.

This module sits below the repositories (:mod:`.subjects`, :mod:`.checks`, :mod:`.reviews`,
:mod:`.events`, :mod:`.sealed`, :mod:`.console`, :mod:`.fraud_repositories`) and the unit of work
(:mod:`.uow`) that assembles them.  A repository sees the unit of work only as "something that
hands out the connection" (:class:`_HasConnection`), and :func:`unavailable` lives here for both,
so nothing here imports the unit of work and the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Protocol, TypeVar

from sqlalchemy import Executable, Row, Table, or_, select
from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from shiren.domain.entities import SubjectStatus
from shiren.errors import ErrorCode, ServiceError, StateError
from shiren.storage.errors import duplicate, not_found
from shiren.storage.sql import schema as s

E = TypeVar("E")

_UNIQUE_VIOLATION = "23505"
_FK_VIOLATION = "23503"


def _integrity_error(exc: IntegrityError, what: str) -> StateError:
    """Map a driver's integrity error to the contract's codes, on either backend."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    text = str(orig)
    if sqlstate == _UNIQUE_VIOLATION or "UNIQUE constraint failed" in text:
        return duplicate(what)
    if sqlstate == _FK_VIOLATION or "FOREIGN KEY constraint failed" in text:
        return not_found(f"parent of {what}")
    return StateError(
        f"{what} violates a constraint", code=ErrorCode.RECORD_CONFLICT, detail={"entity": what}
    )


def _disk_full(exc: DBAPIError) -> bool:
    """SQLite's ``SQLITE_FULL`` (errno 13), PostgreSQL's ``disk_full`` (SQLSTATE 53100)."""
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) == 13 or "database or disk is full" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) == "53100"


def unavailable(exc: DBAPIError) -> ServiceError:
    """Lost connection, lock timeout, server shutting down, disk full: the caller may retry
    later (503 + Retry-After).  A full disk has its own code (``storage.full``) so an operator
    alert can tell it from an outage; nothing was written (the transaction rolls back)."""
    if _disk_full(exc):
        return ServiceError(
            "storage is full",
            code=ErrorCode.STORAGE_FULL,
            detail={"driver_error": type(exc.orig).__name__},
        )
    return ServiceError(
        "storage is unavailable",
        code=ErrorCode.STORAGE_UNAVAILABLE,
        detail={"driver_error": type(exc.orig).__name__},
    )


def _loader(cls: Callable[..., E], **convert: Callable[[Any], Any]) -> Callable[[Row[Any]], E]:
    """Row → entity: column names equal field names; ``convert`` turns stored strings back
    into enums (and JSON lists into tuples)."""

    def load(row: Row[Any]) -> E:
        values = dict(row._mapping)
        for name, fn in convert.items():
            if values[name] is not None:
                values[name] = fn(values[name])
        return cls(**values)

    return load


def _values(entity: Any, **override: Any) -> dict[str, Any]:
    """Entity → column values (enums stored as their string value)."""
    out: dict[str, Any] = {}
    for name in entity.__slots__:
        value = getattr(entity, name)
        out[name] = value.value if isinstance(value, Enum) else value
    out.update(override)
    return out


class _HasConnection(Protocol):
    """What a repository is given: the unit of work, seen only as the keeper of the connection."""

    def connection(self) -> Connection: ...


class _SqlRepo:
    def __init__(self, uow: _HasConnection) -> None:
        self._uow = uow

    def _exec(self, stmt: Executable) -> Result[Any]:
        try:
            return self._uow.connection().execute(stmt)
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def _subject_ids_with_status(
        self, t: Table, tenant_id: str, status: SubjectStatus, *, network: str | None = None
    ) -> set[str]:
        """Subjects of ``tenant_id`` in ``status`` that have a row in ``t`` (a table with
        ``tenant_id`` and ``subject_id`` columns); ``network``: only rows whose ``embedder``
        (``<network>@sha256:<hex>``) names that network."""
        subj = s.subjects
        stmt = (
            select(t.c.subject_id)
            .distinct()
            .join(subj, subj.c.id == t.c.subject_id)
            .where(
                t.c.tenant_id == tenant_id,
                subj.c.tenant_id == tenant_id,
                subj.c.status == status.value,
            )
        )
        if network is not None:
            stmt = stmt.where(
                or_(
                    t.c.embedder == network, t.c.embedder.startswith(f"{network}@", autoescape=True)
                )
            )
        return set(self._exec(stmt).scalars().all())

    def _rowcount(self, stmt: Executable) -> int:
        result = self._exec(stmt)
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    def _insert(self, table: Table, values: Mapping[str, Any], what: str) -> None:
        conn: Connection = self._uow.connection()
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(**values))
        except IntegrityError as exc:
            raise _integrity_error(exc, what) from None
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def _one(self, stmt: Executable, load: Callable[[Row[Any]], E]) -> E | None:
        row = self._exec(stmt).first()
        return None if row is None else load(row)

    def _all(self, stmt: Executable, load: Callable[[Row[Any]], E]) -> list[E]:
        return [load(row) for row in self._exec(stmt).all()]


__all__ = ["unavailable"]

"""Scan a database for plaintext that must never be stored (templates, images, ID numbers).

Why in the package and not only in the tests: the same check is useful to the service's tests
(which plug in the real encryption) and to an operator who wants evidence for an assessment
("a dump of the production database contains no ID number of these test subjects").

Two views are scanned, because each catches what the other misses:

* **the files** of a SQLite database (main file, ``-wal``, ``-journal``): finds data in free
  pages, the write-ahead log and indexes, which no ``SELECT`` returns;
* **every row of every table as text** (the ``pg_dump`` equivalent): every value, plus on
  PostgreSQL each row cast to ``text``, which is how a dump or a log would render it.

Each marker is searched raw and in the encodings plaintext typically leaks in (hex, base64), so
a column that stores ``template.hex()`` is caught too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, select, text


@dataclass(frozen=True, slots=True)
class MarkerHit:
    """Where a marker was found (``file:<path>`` or ``<table>.<column>`` / ``<table>.*``) and
    in which encoding."""

    where: str
    marker: str
    encoding: str


def marker_forms(marker: bytes | str) -> dict[str, bytes]:
    """The byte patterns a marker may appear as: raw (UTF-8 for text), hex (both cases), base64."""
    raw = marker.encode("utf-8") if isinstance(marker, str) else bytes(marker)
    if not raw:
        raise ValueError("empty marker")
    forms = {
        "raw": raw,
        "hex": raw.hex().encode("ascii"),
        "HEX": raw.hex().upper().encode("ascii"),
    }
    if len(raw) >= 9:  # shorter base64 cores match by chance
        # base64 of data containing the marker contains one of three "cores", depending on the
        # marker's offset modulo 3; drop the 4-character groups shared with unknown neighbours
        for shift in range(3):
            encoded = base64.b64encode(bytes(shift) + raw)
            start = 4 if shift else 0
            end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)
            forms[f"base64+{shift}"] = encoded[start:end]
    return forms


def scan_bytes(data: bytes, markers: Iterable[bytes | str], where: str) -> list[MarkerHit]:
    """Every (marker, encoding) found in ``data``."""
    hits = []
    for marker in markers:
        for encoding, pattern in marker_forms(marker).items():
            if pattern in data:
                hits.append(MarkerHit(where, _label(marker), encoding))
    return hits


def scan_files(paths: Iterable[Path], markers: Iterable[bytes | str]) -> list[MarkerHit]:
    """Scan the raw bytes of each existing file."""
    wanted = list(markers)
    hits: list[MarkerHit] = []
    for path in paths:
        if path.exists():
            hits.extend(scan_bytes(path.read_bytes(), wanted, f"file:{path}"))
    return hits


def sqlite_files(engine: Engine) -> list[Path]:
    """The files of a file-backed SQLite database: the database, its WAL and its journal."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return []
    db = Path(engine.url.database)
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-journal", "-shm"))]


def dump_rows(engine: Engine) -> Iterator[tuple[str, bytes]]:
    """Every stored value of every table as ``(where, bytes)``: ``bytes`` columns raw, other
    values as their text; on PostgreSQL also each whole row cast to text."""
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes | bytearray | memoryview):
                        yield f"{table.name}.{column}", bytes(value)
                    else:
                        yield f"{table.name}.{column}", str(value).encode("utf-8")
            if engine.dialect.name == "postgresql":
                quoted = engine.dialect.identifier_preparer.quote(table.name)
                for (as_text,) in conn.execute(text(f"SELECT CAST(t AS text) FROM {quoted} AS t")):
                    yield f"{table.name}.*", str(as_text).encode("utf-8")


def scan_database(engine: Engine, markers: Iterable[bytes | str]) -> list[MarkerHit]:
    """Markers found in the rows (all backends) and in the files (SQLite)."""
    wanted = list(markers)
    hits: list[MarkerHit] = []
    for where, data in dump_rows(engine):
        hits.extend(scan_bytes(data, wanted, where))
    hits.extend(scan_files(sqlite_files(engine), wanted))
    return hits


def table_names(engine: Engine) -> list[str]:
    """Tables present in the database (for reports)."""
    return sorted(inspect(engine).get_table_names())


def _label(marker: bytes | str) -> str:
    shown = marker if isinstance(marker, str) else marker.hex()
    return shown if len(shown) <= 16 else shown[:16] + "…"


__all__ = [
    "MarkerHit",
    "dump_rows",
    "marker_forms",
    "scan_bytes",
    "scan_database",
    "scan_files",
    "sqlite_files",
    "table_names",
]

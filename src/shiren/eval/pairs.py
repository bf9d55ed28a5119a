"""Verification pair lists: LFW ``pairs.txt`` and a simple CSV, read into :class:`Pair` records.

Two formats are detected from the first non-blank line:

* **LFW** (`LFW README <http://vis-www.cs.umass.edu/lfw/README.txt>`_, View 2): a header
  ``"<folds>\\t<n>"`` followed, for every fold, by ``n`` same-person lines ``name idx1 idx2`` and
  then ``n`` different-person lines ``name1 idx1 name2 idx2``.  The older one-fold files
  (``pairsDevTrain.txt``) have the header ``"<n>"`` and are read as a single fold ``0``.  An image
  path is ``{name}/{name}_{idx:04d}.jpg``.
* **CSV**: a header row whose first three columns are the two image paths and ``same``
  (``1``/``0`` or ``true``/``false``), with optional ``cohort`` and ``fold`` columns anywhere
  after them.  Without a ``fold`` column, rows get 10 folds by row order in contiguous, equal
  (±1) blocks: row ``i`` of ``N`` gets fold ``i * 10 // N``.  For a CSV written in LFW order
  (6000 rows) that reproduces the LFW folds exactly.

Malformed input raises :class:`~shiren.errors.InputError` with ``detail={"line": n}`` (1-based).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shiren.errors import ErrorCode, InputError

CSV_DEFAULT_FOLDS = 10
"""Folds assigned to a CSV without a ``fold`` column (the LFW protocol uses 10)."""

_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


@dataclass(frozen=True, slots=True)
class Pair:
    """One verification trial: two image paths (relative to an images dir) and the truth."""

    a: str
    b: str
    same: bool
    fold: int | None = None
    cohort: str | None = None


def read_pairs(path: Path) -> list[Pair]:
    """Read a pair list, LFW ``pairs.txt`` or CSV (see the module docstring), in file order."""
    lines = _read_lines(path)
    first = next(((n, line) for n, line in enumerate(lines, 1) if line.strip()), None)
    if first is None:
        raise _bad("the pair list is empty", 1)
    line_no, header = first
    tokens = header.split()
    if 1 <= len(tokens) <= 2 and all(_is_uint(t) for t in tokens):
        return _read_lfw(lines, line_no, [int(t) for t in tokens])
    if "," in header:
        return _read_csv(lines)
    raise _bad("unrecognised pair list: expected an LFW header or a CSV header row", line_no)


def limit_per_fold(pairs: Sequence[Pair], n: int) -> list[Pair]:
    """At most ``n`` pairs of each fold, keeping both classes (for ``--limit N``).

    Per fold (``fold=None`` counts as one fold) keep the first ``ceil(n/2)`` same-person and the
    first ``floor(n/2)`` different-person pairs in file order; the result stays in file order.
    """
    if n < 0:
        raise InputError(
            "the limit must be >= 0", code=ErrorCode.INPUT_INVALID, detail={"limit": n}
        )
    quota = {True: math.ceil(n / 2), False: n // 2}
    taken: dict[tuple[int | None, bool], int] = {}
    kept: list[Pair] = []
    for pair in pairs:
        key = (pair.fold, pair.same)
        if taken.get(key, 0) < quota[pair.same]:
            taken[key] = taken.get(key, 0) + 1
            kept.append(pair)
    return kept


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputError(
            "the pair list does not exist",
            code=ErrorCode.INPUT_FILE_NOT_FOUND,
            detail={"path": str(path)},
        ) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        reason = type(exc).__name__
        raise _bad(f"the pair list cannot be read as UTF-8 text ({reason})", 1) from None


def _is_uint(token: str) -> bool:
    # str.isdigit() alone accepts '²' and other digits int() refuses.
    return token.isascii() and token.isdigit()


def _bad(message: str, line: int) -> InputError:
    return InputError(message, code=ErrorCode.INPUT_INVALID, detail={"line": line})


# --- LFW pairs.txt ----------------------------------------------------------------------------


def _read_lfw(lines: list[str], header_line: int, header: list[int]) -> list[Pair]:
    n_folds, per_class = header if len(header) == 2 else [1, header[0]]
    if n_folds < 1 or per_class < 1:
        raise _bad("the LFW header must give at least one fold and one pair", header_line)
    body = [(n, line) for n, line in enumerate(lines, 1) if n > header_line and line.strip()]
    expected = n_folds * 2 * per_class
    if len(body) != expected:
        at = body[expected][0] if len(body) > expected else len(lines) + 1
        raise _bad(f"the LFW header promises {expected} pair lines, found {len(body)}", at)
    pairs = []
    for i, (line_no, line) in enumerate(body):
        fold, same = i // (2 * per_class), (i % (2 * per_class)) < per_class
        pairs.append(_lfw_pair(line.split(), same, fold, line_no))
    return pairs


def _lfw_pair(tokens: list[str], same: bool, fold: int, line_no: int) -> Pair:
    if same and len(tokens) == 3:
        name_a, idx_a, name_b, idx_b = tokens[0], tokens[1], tokens[0], tokens[2]
    elif not same and len(tokens) == 4:
        name_a, idx_a, name_b, idx_b = tokens
    else:
        kind = "same-person 'name idx1 idx2'" if same else "different-person 'n1 idx1 n2 idx2'"
        raise _bad(f"expected a {kind} line", line_no)
    return Pair(
        _lfw_path(name_a, idx_a, line_no), _lfw_path(name_b, idx_b, line_no), same=same, fold=fold
    )


def _lfw_path(name: str, idx: str, line_no: int) -> str:
    if not _is_uint(idx) or int(idx) < 1:
        raise _bad("an LFW image index must be a positive integer", line_no)
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise _bad("an LFW name must not contain a path separator", line_no)
    return f"{name}/{name}_{int(idx):04d}.jpg"


# --- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Columns:
    n: int
    cohort: int | None
    fold: int | None


def _read_csv(lines: list[str]) -> list[Pair]:
    reader = csv.reader(lines)
    columns: _Columns | None = None
    rows: list[tuple[int, Pair]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if columns is None:
            columns = _csv_columns(row, reader.line_num)
        else:
            rows.append((reader.line_num, _csv_pair(row, columns, reader.line_num)))
    if not rows:
        raise _bad("the CSV pair list has a header but no pairs", reader.line_num + 1)
    if columns is not None and columns.fold is None:
        return _assign_folds([pair for _, pair in rows], CSV_DEFAULT_FOLDS)
    return [pair for _, pair in rows]


def _csv_columns(header: list[str], line_no: int) -> _Columns:
    names = [cell.strip().lower() for cell in header]
    if len(names) < 3 or names[2] != "same" or not names[0] or not names[1]:
        raise _bad("the CSV header must start with two image columns and 'same'", line_no)
    extra = names[3:]
    for name in ("cohort", "fold"):
        if extra.count(name) > 1:
            raise _bad(f"the CSV header names '{name}' twice", line_no)
    return _Columns(
        n=len(names),
        cohort=3 + extra.index("cohort") if "cohort" in extra else None,
        fold=3 + extra.index("fold") if "fold" in extra else None,
    )


def _csv_pair(row: list[str], cols: _Columns, line_no: int) -> Pair:
    if len(row) != cols.n:
        raise _bad(f"expected {cols.n} CSV columns, found {len(row)}", line_no)
    a, b = row[0].strip(), row[1].strip()
    if not a or not b:
        raise _bad("an image path is empty", line_no)
    cohort = (row[cols.cohort].strip() or None) if cols.cohort is not None else None
    fold = _parse_fold(row[cols.fold], line_no) if cols.fold is not None else None
    return Pair(a, b, same=_parse_same(row[2], line_no), fold=fold, cohort=cohort)


def _parse_same(cell: str, line_no: int) -> bool:
    value = cell.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad("'same' must be 1/0 or true/false", line_no)


def _parse_fold(cell: str, line_no: int) -> int:
    value = cell.strip()
    if not _is_uint(value):
        raise _bad("'fold' must be a non-negative integer", line_no)
    return int(value)


def _assign_folds(pairs: Iterable[Pair], n_folds: int) -> list[Pair]:
    items = list(pairs)
    total = len(items)
    return [
        Pair(p.a, p.b, same=p.same, fold=i * n_folds // total, cohort=p.cohort)
        for i, p in enumerate(items)
    ]

"""PAD labels: reading and checking a ``labels.csv`` of live and attack images.

Why a reader of its own: the labels decide every reported rate, so a malformed file must fail
loudly with its line number rather than be half read, and a labels file is *data*: its paths must
stay inside the data root, so that a crafted file cannot make the evaluator read arbitrary files.
The file's sha256 is kept for the report's provenance.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shiren.errors import ErrorCode, InputError

LIVE_LABEL = "live"
DEFAULT_ATTACK_LABEL = "attack"
SPLIT_COLUMNS = ("split", "official_nuaa_split")


@dataclass(frozen=True, slots=True)
class PadSample:
    """One labelled image: ``path`` relative to the data root, ``label`` the attack type (or
    ``"live"``), ``split`` and ``subject`` when the CSV has them."""

    path: str
    is_live: bool
    label: str
    split: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class PadLabels:
    """The rows of a ``labels.csv`` and what is known about the file itself."""

    samples: tuple[PadSample, ...]
    source: Path
    sha256: str
    has_split: bool
    has_subject: bool

    def rows(self, split: str | None) -> list[PadSample]:
        """Rows of ``split``; every row when the CSV has no split column or ``split`` is None."""
        if split is None or not self.has_split:
            return list(self.samples)
        return [s for s in self.samples if s.split == split]

    def label_counts(self, rows: Iterable[PadSample]) -> dict[str, int]:
        return dict(sorted(Counter(s.label for s in rows).items()))


def read_pad_labels(path: Path) -> PadLabels:
    """Read a PAD ``labels.csv``: columns ``path``, ``is_live`` (1 bona fide / 0 attack) and
    optionally ``label`` (attack type; live rows are ``live``), ``split`` or
    ``official_nuaa_split``, ``subject``.

    Paths must be relative and stay inside the data root (no ``..``): a labels file is data, and
    data must not make the evaluator read arbitrary files.  Errors are :class:`InputError` with
    the offending line number.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            "labels file not found", code=ErrorCode.INPUT_FILE_NOT_FOUND, detail={"file": path.name}
        ) from None
    except OSError:
        raise InputError(
            "labels file cannot be read",
            code=ErrorCode.INPUT_FILE_UNREADABLE,
            detail={"file": path.name},
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad_labels("labels file is not UTF-8", path, 0) from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if not {"path", "is_live"} <= set(columns):
        raise _bad_labels("labels file needs the columns path and is_live", path, 1)
    split_col = next((c for c in SPLIT_COLUMNS if c in columns), None)
    samples: list[PadSample] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        rel = row["path"]
        if not rel:
            raise _bad_labels("empty path", path, line)
        pure = PurePosixPath(rel.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts:
            raise _bad_labels("paths must be relative to the data root, without '..'", path, line)
        if rel in seen:
            raise _bad_labels("duplicate path", path, line)
        seen.add(rel)
        flag = row["is_live"].lower()
        if flag not in {"0", "1", "true", "false"}:
            raise _bad_labels("is_live must be 1 (bona fide) or 0 (attack)", path, line)
        live = flag in {"1", "true"}
        label = row.get("label") or (LIVE_LABEL if live else DEFAULT_ATTACK_LABEL)
        if not live and label == LIVE_LABEL:
            raise _bad_labels("an attack row (is_live=0) is labelled live", path, line)
        samples.append(
            PadSample(
                path=str(pure),
                is_live=live,
                label=LIVE_LABEL if live else label,
                split=(row.get(split_col) or None) if split_col else None,
                subject=row.get("subject") or None,
            )
        )
    if not samples:
        raise _bad_labels("labels file has no rows", path, 1)
    return PadLabels(
        samples=tuple(samples),
        source=path,
        sha256=hashlib.sha256(data).hexdigest(),
        has_split=split_col is not None,
        has_subject="subject" in columns,
    )


def _bad_labels(message: str, path: Path, line: int) -> InputError:
    return InputError(
        message, code=ErrorCode.INPUT_INVALID, detail={"file": path.name, "line": line}
    )


__all__ = [
    "DEFAULT_ATTACK_LABEL",
    "LIVE_LABEL",
    "SPLIT_COLUMNS",
    "PadLabels",
    "PadSample",
    "read_pad_labels",
]

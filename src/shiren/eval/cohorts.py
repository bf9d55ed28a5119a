"""Image-level cohort labels for fairness measurement (stdlib only).

Two forms are read:

* a CSV with at least ``path,cohort`` and optionally ``identity,gender,age`` (``path`` relative
  to the images folder; empty cells mean "unknown"), as in ``utkface_cohorts/labels.csv`` and
  ``casia_facev5_subset/labels.csv``;
* a folder of ``<cohort>_names.txt`` lists of LFW file names (``lfw_view2/cohorts/``): one image
  file name per line, ``.jpg`` sometimes missing; the identity is the person's name, the path
  ``Name/Name_NNNN.jpg``.

Cohorts are for measurement only: no decision of shiren takes a demographic as input.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_LFW_FILE = re.compile(r"^(?P<name>.+)_(?P<num>\d{4})(?:\.jpg)?$")


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """One labelled image; ``identity``, ``gender`` and ``age`` (years) may be unknown."""

    path: str
    cohort: str
    identity: str | None = None
    gender: str | None = None
    age: int | None = None


def read_labels(source: Path) -> list[LabelledImage]:
    """Labels from a CSV file or a folder of ``<cohort>_names.txt`` lists."""
    if source.is_dir():
        return labels_from_name_lists(source)
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "cohort"} <= set(rows[0]):
        raise ValueError(f"{source}: needs the columns path and cohort")
    return [_from_row(row) for row in rows]


def _from_row(row: dict[str, str]) -> LabelledImage:
    age = (row.get("age") or "").strip()
    return LabelledImage(
        path=row["path"].strip(),
        cohort=row["cohort"].strip(),
        identity=(row.get("identity") or "").strip() or None,
        gender=(row.get("gender") or "").strip() or None,
        age=int(float(age)) if age else None,
    )


def labels_from_name_lists(folder: Path) -> list[LabelledImage]:
    """LFW-style name lists: cohort from the file name ``<cohort>_names.txt``."""
    lists = sorted(folder.glob("*_names.txt"))
    if not lists:
        raise ValueError(f"{folder}: no *_names.txt lists")
    out: dict[str, LabelledImage] = {}
    for listing in lists:
        cohort = listing.name.removesuffix("_names.txt")
        for line in listing.read_text(encoding="utf-8").splitlines():
            match = _LFW_FILE.match(line.strip())
            if match:
                name = match["name"]
                path = f"{name}/{name}_{match['num']}.jpg"
                out.setdefault(path, LabelledImage(path, cohort, identity=name))
    return list(out.values())


def filter_min_age(labels: Sequence[LabelledImage], min_age: int | None) -> list[LabelledImage]:
    """Only images whose known age is ``>= min_age`` (unknown ages are kept; None: all)."""
    if min_age is None:
        return list(labels)
    return [x for x in labels if x.age is None or x.age >= min_age]


def restrict_to(labels: Sequence[LabelledImage], paths: Iterable[str]) -> list[LabelledImage]:
    """Only the images whose path is in ``paths`` (e.g. those a pairs file refers to)."""
    keep = set(paths)
    return [x for x in labels if x.path in keep]

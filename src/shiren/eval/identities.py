"""Who is in each image: identity labels for the multi-image protocol (stdlib only).

Two sources are read:

* a CSV with at least the columns ``path`` and ``identity`` (``path`` relative to the images
  folder), as ``casia_facev5_subset/labels.csv`` and ``asian_celeb_subset/labels.csv``; rows
  with an empty identity are left out and counted;
* a folder of one sub-folder per person (LFW's ``lfw-deepfunneled/<Name>/<Name>_NNNN.jpg``):
  the identity is the sub-folder's name, the path ``<Name>/<file>`` relative to that folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True, slots=True)
class Identities:
    """Image paths by person, and how many labelled rows had no identity."""

    people: dict[str, list[str]] = field(default_factory=dict)
    n_unlabelled: int = 0


def read_identities(source: Path) -> Identities:
    """Identities from a ``path,identity`` CSV or a folder of per-person folders."""
    if source.is_dir():
        return _from_folders(source)
    with source.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"path", "identity"} <= set(rows[0]):
        raise ValueError(f"{source}: needs the columns path and identity")
    people: dict[str, list[str]] = {}
    unlabelled = 0
    for row in rows:
        person, path = (row.get("identity") or "").strip(), (row.get("path") or "").strip()
        if not person or not path:
            unlabelled += 1
            continue
        people.setdefault(person, []).append(path)
    return Identities({p: sorted(set(v)) for p, v in people.items()}, unlabelled)


def _from_folders(folder: Path) -> Identities:
    people: dict[str, list[str]] = {}
    for person_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(
            f"{person_dir.name}/{f.name}"
            for f in person_dir.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            people[person_dir.name] = files
    if not people:
        raise ValueError(f"{folder}: no per-person folders with images")
    return Identities(people, 0)


__all__ = ["IMAGE_SUFFIXES", "Identities", "read_identities"]

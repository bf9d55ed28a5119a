"""Provenance of an evaluation run, and a strict JSON writer for reports.

A report without provenance cannot be reproduced or compared, so every report records the git
commit (and whether the tree was dirty), the UTC time, the Python and platform, the versions of
the numeric and model runtimes, the settings and the model files (name, sha256, ...).

Package versions come from :mod:`importlib.metadata`: the heavy modules (onnxruntime, mediapipe,
dlib, OpenCV) are never imported just to be named.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

UNKNOWN = "unknown"
_GIT_TIMEOUT_S = 10.0

# Import name → distributions that provide it, first found wins.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "shiren": ("shiren",),
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "mediapipe": ("mediapipe",),
    "usearch": ("usearch",),
    "dlib": ("dlib-bin", "dlib"),
    "opencv": (
        "opencv-python-headless",
        "opencv-python",
        "opencv-contrib-python-headless",
        "opencv-contrib-python",
    ),
}


def provenance(
    settings: Mapping[str, object],
    models: list[dict[str, str]],
    *,
    repo: Path | None = None,
) -> dict[str, object]:
    """A JSON-ready provenance record.

    ``repo`` is where to ask git (default: the directory of this file, i.e. the checkout shiren
    runs from).  ``git.sha`` is ``"unknown"`` outside a git work tree or before the first commit;
    ``git.dirty`` is ``None`` when git cannot say, else whether tracked files differ from HEAD
    (untracked files are ignored).  Package versions are ``None`` when not installed.
    """
    where = repo if repo is not None else Path(__file__).resolve().parent
    return {
        "git": {"sha": git_sha(where), "dirty": git_dirty(where)},
        "timestamp_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "settings": dict(settings),
        "models": [dict(m) for m in models],
    }


def git_sha(repo: Path) -> str:
    """``git rev-parse HEAD`` in ``repo``, or ``"unknown"``."""
    out = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    return out.strip() if out and out.strip() else UNKNOWN


def git_dirty(repo: Path) -> bool | None:
    """Whether tracked files in ``repo`` differ from HEAD; ``None`` if git cannot tell."""
    out = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def package_versions() -> dict[str, str | None]:
    """Installed versions of shiren's key packages, by import name; ``None`` if absent."""
    return {name: _first_version(dists) for name, dists in _DISTRIBUTIONS.items()}


def write_json(path: Path, obj: object) -> Path:
    """Write ``obj`` as UTF-8 JSON (sorted keys, indent 2, non-ASCII kept) and return ``path``.

    NaN and ±inf become ``null`` (JSON has no such numbers); numpy scalars and arrays, tuples,
    dataclasses, enums and paths are converted.  The file is replaced atomically.
    """
    text = json.dumps(
        to_jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def to_jsonable(obj: object) -> object:
    """``obj`` with every value turned into a plain JSON type (see :func:`write_json`)."""
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return sorted((to_jsonable(v) for v in obj), key=repr)  # sets have no stable order
    if isinstance(obj, np.ndarray | list | tuple):
        items = obj.tolist() if isinstance(obj, np.ndarray) else obj
        return [to_jsonable(v) for v in items]
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _first_version(distributions: tuple[str, ...]) -> str | None:
    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None

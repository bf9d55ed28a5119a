"""Models by name, loaded lazily; unknown names get a did-you-mean error.

``build_model(kind, name)`` looks the name up in the built-in manifest (plus any user manifest),
imports the adapter class named by the entry's ``adapter`` field ("module:Class") and constructs
it.  ``dlib-resnet-v1-onnx`` is special: it is shiren's own ONNX translation of the CC0 dlib
ResNet, built once from the installed ``.dat`` (no download) into the model cache folder, with a
pinned sha256 like every other model.
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Any

from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, builtin_manifest, sha256_file, verified_path

ONNX_DLIB = "dlib-resnet-v1-onnx"
CONVERTER_VERSION = "1"
# sha256 of the converter's output for the pinned .dat (deterministic; checked by the tests).
DLIB_ONNX_SHA256 = "6e96855860967cf21fa12825078e3d1e11687656a76a59c0aa0f42c0df60f225"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return (
        f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
    )


def get_entry(
    name: str, extra: dict[str, ManifestEntry] | None = None, model_dir: Path | None = None
) -> ManifestEntry:
    """The manifest entry for ``name`` (built-in, the ONNX translation, or a user entry)."""
    entries = {**builtin_manifest(), **(extra or {})}
    if name in entries:
        return entries[name]
    if name == ONNX_DLIB:
        return dlib_onnx_entry(model_dir or default_model_dir())
    known = [*entries, ONNX_DLIB]
    raise ModelError(
        f"unknown model {name!r}{_did_you_mean(name, known)}",
        code=ErrorCode.MODEL_UNKNOWN,
        detail={"model": name},
    )


def build_model(
    name: str,
    *,
    extra: dict[str, ManifestEntry] | None = None,
    model_dir: Path | None = None,
    **kwargs: Any,
) -> Any:
    """Construct the adapter for model ``name`` with ``kwargs`` passed to its constructor."""
    entry = get_entry(name, extra, model_dir)
    module_name, _, class_name = entry.adapter.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise ModelError(
            f"adapter {entry.adapter!r} for model {name!r} cannot be imported",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"model": name},
        ) from None
    return cls(entry, **kwargs)


def default_model_dir() -> Path:
    """``$XDG_CACHE_HOME/shiren/models`` (``~/.cache/shiren/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shiren" / "models"


def dlib_onnx_entry(model_dir: Path) -> ManifestEntry:
    """The entry for the ONNX translation, building the file first if it is not there yet.

    The converter is deterministic, so the translated file's sha256 is pinned here like any other
    model's: a file that does not match (corrupt, tampered, stale) is rebuilt once from the verified
    ``.dat``, and a rebuild that still does not match is a ``model.checksum_mismatch`` error.
    """
    source = builtin_manifest()["dlib-resnet-v1"]
    onnx_path = model_dir / f"dlib_resnet_v1.c{CONVERTER_VERSION}.onnx"
    entry = ManifestEntry(
        name=ONNX_DLIB,
        version=f"{source.version}+onnx.c{CONVERTER_VERSION}",
        sha256=DLIB_ONNX_SHA256,
        licence=source.licence,
        source=f"{source.source}; translated to ONNX (opset 17) by shiren's converter "
        f"v{CONVERTER_VERSION}",
        input_size=source.input_size,
        adapter="shiren.models.onnx_embedder:OnnxEmbedder",
        file=str(onnx_path),
        options={"layout": "NHWC", "channel_order": "RGB", "metric": "cosine"},
    )
    if not onnx_path.exists() or sha256_file(onnx_path) != DLIB_ONNX_SHA256:
        build_dlib_onnx(source, onnx_path)
    verified_path(entry)
    return entry


def build_dlib_onnx(source: ManifestEntry, onnx_path: Path) -> str:
    """Translate the verified dlib ``.dat`` to ONNX, atomically; returns the file's sha256."""
    from shiren.models.dlib_convert import convert_dlib_resnet

    dat = verified_path(source)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_name(f"{onnx_path.name}.{os.getpid()}.tmp")
    try:
        digest = convert_dlib_resnet(dat, tmp)
        tmp.replace(onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest

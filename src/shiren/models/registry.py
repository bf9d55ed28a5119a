"""Models by name, loaded lazily; unknown names get a did-you-mean error.

``build_model(kind, name)`` looks the name up in the built-in manifest (plus any user manifest),
imports the adapter class named by the entry's ``adapter`` field ("module:Class") and constructs
it.  ``dlib-resnet-v1-onnx`` is special: it is shiren's own ONNX translation of the CC0 dlib
ResNet, built once from the installed ``.dat`` (no download) into the model cache folder, with a
pinned sha256 like every other model.

The MiniFASNet anti-spoofing models (``minifasnet-v2``, ``minifasnet-v1se`` and their ensemble
``minifasnet``) are handled the same way, except that their source ``.pth`` files are in no
registry package: the user supplies them in the folder named by the environment variable
``SHIREN_MINIFASNET_DIR`` (files ``2.7_80x80_MiniFASNetV2.pth`` and
``4_0_0_80x80_MiniFASNetV1SE.pth`` from minivision-ai/Silent-Face-Anti-Spoofing, commit
:data:`MINIFASNET_COMMIT`, checked against pinned sha256s).  Once the ONNX translation is in the
model cache folder and matches its pinned sha256, that folder is no longer needed.  The source
entries are defined here, not in ``data/models.json``, because every entry there must resolve
without any configuration (``shiren models build`` and the manifest tests verify them all).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiren.errors import ErrorCode, ModelError
from shiren.models import dtn_fas, human_fas, mobilefacenet
from shiren.models.manifest import (
    ManifestEntry,
    build_atomically,
    builtin_manifest,
    sha256_file,
    verified_path,
)

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
    if name in MINIFASNET_MODELS:
        return minifasnet_onnx_entry(name, model_dir or default_model_dir())
    if name == MINIFASNET_ENSEMBLE:
        return minifasnet_ensemble_entry(model_dir or default_model_dir())
    if name == mobilefacenet.NAME:
        return mobilefacenet.onnx_entry(model_dir or default_model_dir())
    if name == dtn_fas.NAME:
        return dtn_fas.onnx_entry(model_dir or default_model_dir())
    if name in human_fas.MODELS:
        return human_fas.onnx_entry(name, model_dir or default_model_dir())
    known = [
        *entries,
        ONNX_DLIB,
        mobilefacenet.NAME,
        dtn_fas.NAME,
        *human_fas.NAMES,
        *MINIFASNET_MODELS,
        MINIFASNET_ENSEMBLE,
    ]
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
    return build_atomically(onnx_path, lambda tmp: convert_dlib_resnet(dat, tmp))


MINIFASNET_ENV = "SHIREN_MINIFASNET_DIR"
"""Environment variable: the folder holding the MiniFASNet ``.pth`` files (see module docstring)."""
MINIFASNET_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
MINIFASNET_CONVERTER_VERSION = "1"
MINIFASNET_ENSEMBLE = "minifasnet"
_MINIFASNET_SOURCE = (
    "GitHub minivision-ai/Silent-Face-Anti-Spoofing@" + MINIFASNET_COMMIT
    + " resources/anti_spoof_models/{file}"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MiniFasNetSpec:
    """One MiniFASNet checkpoint: its file, pinned hashes and crop scale."""

    name: str
    file: str
    pth_sha256: str
    onnx_sha256: str
    """sha256 of shiren's ONNX translation (deterministic; checked by the tests)."""
    scale: float
    arch: str


MINIFASNET_MODELS: dict[str, MiniFasNetSpec] = {
    "minifasnet-v2": MiniFasNetSpec(
        name="minifasnet-v2",
        file="2.7_80x80_MiniFASNetV2.pth",
        pth_sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        onnx_sha256="527a0ffb219594114bce97f24ab2b7ebb72a4589097b705a67e8327adb144e2e",
        scale=2.7,
        arch="MiniFASNetV2",
    ),
    "minifasnet-v1se": MiniFasNetSpec(
        name="minifasnet-v1se",
        file="4_0_0_80x80_MiniFASNetV1SE.pth",
        pth_sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        onnx_sha256="bdc7cc11876600a93c181b27da847f2c51b20334635224a61aeab0124c88b749",
        scale=4.0,
        arch="MiniFASNetV1SE",
    ),
}


def minifasnet_source_entry(name: str) -> ManifestEntry:
    """The entry for the user-supplied ``.pth`` of ``name`` in ``$SHIREN_MINIFASNET_DIR``.

    Raises ``model.unavailable`` (naming the variable) when it is unset or the file is absent.
    """
    spec = MINIFASNET_MODELS[name]
    folder = os.environ.get(MINIFASNET_ENV, "").strip()
    path = Path(folder) / spec.file if folder else None
    if path is None or not path.is_file():
        raise ModelError(
            f"model {name!r} needs {spec.file}: set {MINIFASNET_ENV} to the folder holding the "
            f"MiniFASNet .pth files (minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0)",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"model": name, "file": spec.file, "env": MINIFASNET_ENV},
        )
    return ManifestEntry(
        name=f"{name}-pth",
        version=f"{spec.arch}@{MINIFASNET_COMMIT[:12]}",
        sha256=spec.pth_sha256,
        licence="Apache-2.0",
        source=_MINIFASNET_SOURCE.format(file=spec.file),
        input_size=(80, 80),
        adapter="",
        file=str(path),
    )


def minifasnet_entry(name: str, model_dir: Path) -> ManifestEntry:
    """The entry for ``name``'s ONNX translation in ``model_dir``, without building anything."""
    spec = MINIFASNET_MODELS[name]
    stem = name.replace("-", "_")
    return ManifestEntry(
        name=name,
        version=f"{spec.arch}@{MINIFASNET_COMMIT[:12]}+onnx.c{MINIFASNET_CONVERTER_VERSION}",
        sha256=spec.onnx_sha256,
        licence="Apache-2.0",
        source=_MINIFASNET_SOURCE.format(file=spec.file)
        + f"; translated to ONNX (opset 17) by shiren's converter v{MINIFASNET_CONVERTER_VERSION}",
        input_size=(80, 80),
        adapter="shiren.models.minifasnet:MiniFasNet",
        file=str(model_dir / f"{stem}.c{MINIFASNET_CONVERTER_VERSION}.onnx"),
        options={"scale": spec.scale, "channel_order": "BGR", "input_range": 255.0},
    )


def minifasnet_onnx_entry(name: str, model_dir: Path) -> ManifestEntry:
    """``name``'s entry, building its ONNX translation first when the cached file is absent or
    does not match the pinned sha256 (which needs ``$SHIREN_MINIFASNET_DIR``)."""
    entry = minifasnet_entry(name, model_dir)
    onnx_path = Path(entry.file)
    if not onnx_path.is_file() or sha256_file(onnx_path) != entry.sha256:
        build_minifasnet_onnx(name, onnx_path)
    verified_path(entry)
    return entry


def minifasnet_ensemble_entry(model_dir: Path) -> ManifestEntry:
    """The ensemble's entry; its members are built (or verified) first.

    Its sha256 is the sha256 of the members' ``name:sha256`` lines, so it changes whenever a
    member does and can be pinned in reports like a file's.
    """
    members = [minifasnet_onnx_entry(name, model_dir) for name in MINIFASNET_MODELS]
    return minifasnet_ensemble_description(model_dir, members)


def minifasnet_ensemble_description(
    model_dir: Path, members: list[ManifestEntry] | None = None
) -> ManifestEntry:
    """The ensemble's entry without building its members (for listings)."""
    members = members or [minifasnet_entry(name, model_dir) for name in MINIFASNET_MODELS]
    digest = hashlib.sha256(
        "".join(f"{m.name}:{m.sha256}\n" for m in members).encode("ascii")
    ).hexdigest()
    return ManifestEntry(
        name=MINIFASNET_ENSEMBLE,
        version="+".join(m.version for m in members),
        sha256=digest,
        licence="Apache-2.0",
        source="mean softmax of " + ", ".join(m.name for m in members),
        input_size=(80, 80),
        adapter="shiren.models.minifasnet:MiniFasNetEnsemble",
        file="",
        options={"members": [m.name for m in members], "model_dir": str(model_dir)},
    )


def build_minifasnet_onnx(name: str, onnx_path: Path) -> str:
    """Translate the verified ``.pth`` of ``name`` to ONNX, atomically; returns its sha256."""
    from shiren.models.minifasnet_convert import convert_minifasnet

    pth = verified_path(minifasnet_source_entry(name))
    return build_atomically(onnx_path, lambda tmp: convert_minifasnet(pth, tmp))


PASSIVE_AUTO = "auto"
"""The passive PAD model a liveness check uses when none is named (issue 19): MiniFASNet when
its weights are configured (``SHIREN_MINIFASNET_DIR``) or already translated into the model
cache, else the registry's own :data:`REGISTRY_PASSIVE` (``human-antispoof``, from the npm
tarball of ``@vladmandic/human`` the set-up packs; ``dtn-fas`` on a machine whose set-up predates
it), so a fresh machine never runs without a passive signal.  The measurements behind the choice
are in docs/LIVENESS.md."""
REGISTRY_PASSIVE = (human_fas.DEFAULT, dtn_fas.NAME)
"""The registry's passive models in order of preference when MiniFASNet is absent."""


def minifasnet_available(model_dir: Path | None = None) -> bool:
    """Whether MiniFASNet can be loaded without error: its verified ONNX translations are in
    ``model_dir``, or ``$SHIREN_MINIFASNET_DIR`` holds both ``.pth`` files."""
    folder = model_dir or default_model_dir()
    cached = all(
        Path(e.file).is_file() and sha256_file(Path(e.file)) == e.sha256
        for e in (minifasnet_entry(name, folder) for name in MINIFASNET_MODELS)
    )
    source = os.environ.get(MINIFASNET_ENV, "").strip()
    configured = bool(source) and all(
        (Path(source) / spec.file).is_file() for spec in MINIFASNET_MODELS.values()
    )
    return cached or configured


def registry_passive_model(model_dir: Path | None = None) -> str:
    """The first of :data:`REGISTRY_PASSIVE` whose npm tarball (or built translation) is in
    ``model_dir`` (nothing is built); the last one when none is."""
    folder = model_dir or default_model_dir()
    built = Path(human_fas.entry(human_fas.DEFAULT, folder).file)
    if built.is_file() or (mobilefacenet.npm_dir(folder) / human_fas.TARBALL).is_file():
        return human_fas.DEFAULT
    return dtn_fas.NAME


def active_passive_model(model_dir: Path | None = None) -> str:
    """The name :func:`build_passive_model` loads for :data:`PASSIVE_AUTO` (nothing is built)."""
    if minifasnet_available(model_dir):
        return MINIFASNET_ENSEMBLE
    return registry_passive_model(model_dir)


def build_passive_model(
    name: str = PASSIVE_AUTO, *, model_dir: Path | None = None, **kwargs: Any
) -> Any:
    """The passive PAD adapter for ``name``; :data:`PASSIVE_AUTO` is MiniFASNet when it loads,
    else the first registry model of :data:`REGISTRY_PASSIVE` that loads.  A model that is
    present but broken (a checksum mismatch) is an error, never a silent fallback."""
    if name != PASSIVE_AUTO:
        return build_model(name, model_dir=model_dir, **kwargs)
    *preferred, last = (MINIFASNET_ENSEMBLE, *REGISTRY_PASSIVE)
    for candidate in preferred:
        try:
            return build_model(candidate, model_dir=model_dir, **kwargs)
        except ModelError as exc:
            if exc.code is not ErrorCode.MODEL_UNAVAILABLE:
                raise
    return build_model(last, model_dir=model_dir, **kwargs)

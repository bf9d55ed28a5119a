"""A pure-Python reader for dlib's serialized DNN files (``*.dat`` made by ``dlib::serialize``).

Only what dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, CC0) and
networks built from the same layer types need is understood; anything else fails with
:class:`~shiren.errors.ModelError` (code ``model.invalid``) naming the byte offset.

Primitive encodings (``dlib/serialize.h``, ``dlib/float_details.h``):

* integers: one control byte — low 4 bits = number of payload bytes, bit 0x80 = negative (signed
  types only) — then that many little-endian magnitude bytes.  ``0`` is ``01 00``.
* floats/doubles *as scalars*: a ``float_details`` pair — an int64 mantissa and an int16 exponent,
  each an integer as above; the value is ``mantissa * 2**exponent``, except the exponents
  32000/32001/32002 which mean +inf/-inf/NaN.
* ``bool``: the ASCII byte ``'1'`` or ``'0'``.  ``std::string``: an integer length, then the bytes.
* tensors (``dlib/dnn/tensor.h``): version ``2``, then ``num_samples, k, nr, nc`` and the data as
  raw little-endian IEEE float32 in ``n, k, nr, nc`` order.  ``alias_tensor``: version ``1`` and
  the four sizes only.

Network layout (``dlib/dnn/core.h``): ``add_loss_layer`` writes ``1``, the loss details, then its
sub-network.  ``add_layer`` writes its version (``2``), then **its whole sub-network first**, and
only then its own layer details followed by the book-keeping fields ``this_layer_setup_called``,
``gradient_input_is_stale``, ``get_output_and_gradient_input_disabled`` (bools) and the tensors
``x_grad``, ``cached_output``, ``params_grad``.  ``add_tag_layer`` and ``add_skip_layer`` write
``1`` and their sub-network and nothing else, so tags and skips cannot be told apart (nor their
ids read) from the stream: the caller must know the architecture.  The innermost ``add_layer``
(the one on top of the input layer) writes version ``2``/``3``, the input layer, its details, the
bools, ``x_grad``, ``cached_output``, ``grad_final`` and (v3) ``sample_expansion_factor``.
Hence the file holds the wrapper versions outermost-first and then the layer details
*innermost-first* (input layer first, the final ``fc`` last).

Layer details (``dlib/dnn/layers.h``, ``dlib/dnn/input.h``, ``dlib/dnn/loss.h``) are each
introduced by a version string: ``con_4``/``con_5``/``con_6``, ``affine_``/``affine_2``,
``relu_``, ``max_pool_2``, ``avg_pool_2``, ``add_prev_``, ``fc_2``/``fc_3``,
``input_rgb_image_sized``, ``loss_metric_``/``loss_metric_2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from shiren.errors import ErrorCode, ModelError

FloatArray = NDArray[np.float32]

_MAX_STRING = 1024
_MAX_DEPTH = 100_000
_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


@dataclass(frozen=True)
class InputRGB:
    """``input_rgb_image_sized``: ``(pixel - mean) / 256`` per channel, R, G, B."""

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class Conv:
    """``con_``: cross-correlation, weight ``[out, in, kh, kw]``, symmetric zero padding."""

    weight: FloatArray
    bias: FloatArray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    fused_relu: bool


@dataclass(frozen=True)
class Affine:
    """``affine_`` in CONV mode: ``x * gamma[c] + beta[c]``."""

    gamma: FloatArray
    beta: FloatArray


@dataclass(frozen=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True)
class Pool:
    """``max_pool_``/``avg_pool_``; a window of 0 means "the whole input" (``*_everything``)."""

    kind: str
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: adds the tagged tensor, zero-padding the smaller one (dlib's ``tt::add``)."""


@dataclass(frozen=True)
class FullyConnected:
    """``fc_``: ``y = x @ weight (+ bias)``, weight ``[num_inputs, num_outputs]``."""

    weight: FloatArray
    bias: FloatArray | None


@dataclass(frozen=True)
class Wrapper:
    """An ``add_tag_layer`` or ``add_skip_layer``: the stream does not say which, nor its id."""


Layer = InputRGB | Conv | Affine | Relu | Pool | AddPrev | FullyConnected | Wrapper


@dataclass(frozen=True)
class DlibNetwork:
    """A parsed network: the loss name and the layers innermost-first (the input layer first)."""

    loss: str
    layers: tuple[Layer, ...]


class _Reader:
    """A cursor over the file's bytes with dlib's primitive decoders."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> NoReturn:
        raise ModelError(
            f"Not a supported dlib DNN file: {what} (at byte {self.pos}).",
            code=ErrorCode.MODEL_INVALID,
            detail={"offset": self.pos},
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            self.fail("unexpected end of file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def sint(self, *, signed: bool = True) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8 or (control & 0x80 and not signed):
            self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def uint(self) -> int:
        return self.sint(signed=False)

    def string(self) -> str:
        n = self.uint()
        if n > _MAX_STRING:
            self.fail(f"string of implausible length {n}")
        raw = self.take(n)
        if not raw.isascii():
            self.fail("non-ASCII version string")
        return raw.decode("ascii")

    def boolean(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            self.fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def real(self) -> float:
        mantissa = self.sint()
        exponent = self.sint()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        if abs(exponent) > 2000:
            self.fail(f"bad float exponent {exponent}")
        return math.ldexp(float(mantissa), exponent)

    def version(self, expected: int) -> None:
        got = self.sint()
        if got != expected:
            self.fail(f"expected version {expected}, found {got}")

    def dims(self) -> tuple[int, int, int, int]:
        sizes = (self.sint(), self.sint(), self.sint(), self.sint())
        if min(sizes) < 0:
            self.fail(f"negative tensor size {sizes}")
        return sizes

    def tensor(self) -> FloatArray:
        self.version(2)
        shape = self.dims()
        count = math.prod(shape)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        self.version(1)
        return self.dims()


def _split(r: _Reader, params: FloatArray, parts: list[tuple[int, ...]]) -> list[FloatArray]:
    """Cut a flat ``params`` tensor into consecutive blocks of the given shapes."""
    flat = params.reshape(-1)
    if sum(math.prod(p) for p in parts) != flat.size:
        r.fail(f"parameter tensor of {flat.size} values does not match {parts}")
    out, offset = [], 0
    for shape in parts:
        size = math.prod(shape)
        out.append(flat[offset : offset + size].reshape(shape).copy())
        offset += size
    return out


def _multipliers(r: _Reader) -> None:
    for _ in range(4):  # learning-rate / weight-decay multipliers (weights, bias): unused here
        r.real()


def _read_conv(r: _Reader, version: str) -> Conv:
    params = r.tensor()
    num_filters, nr, nc = r.sint(), r.sint(), r.sint()
    stride = (r.sint(), r.sint())
    padding = (r.sint(), r.sint())
    filters, biases = r.alias(), r.alias()
    _multipliers(r)
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    fused_relu = r.boolean() if version == "con_6" else False
    if filters[0] != num_filters or filters[2:] != (nr, nc) or min(stride) < 1:
        r.fail(f"inconsistent convolution header {filters} vs {num_filters}x{nr}x{nc}")
    if use_bias and math.prod(biases) != num_filters:
        r.fail("convolution bias size does not match its filter count")
    shapes: list[tuple[int, ...]] = [filters] + ([(num_filters,)] if use_bias else [])
    blocks = _split(r, params, shapes)
    bias = blocks[1] if use_bias else None
    return Conv(blocks[0], bias, stride, padding, fused_relu)


def _read_affine(r: _Reader, version: str) -> Affine:
    params, gamma, beta = r.tensor(), r.alias(), r.alias()
    mode = r.sint()
    disabled = r.boolean() if version == "affine_2" else False
    if disabled:
        r.fail("disabled affine layers are not supported")
    if mode != 0 or gamma != beta or gamma[0] != 1 or gamma[2:] != (1, 1):
        r.fail(f"only per-channel (CONV mode) affine layers are supported, got {mode} {gamma}")
    g, b = _split(r, params, [(gamma[1],), (beta[1],)])
    return Affine(g, b)


def _read_pool(r: _Reader, kind: str) -> Pool:
    window = (r.sint(), r.sint())
    stride = (r.sint(), r.sint())
    padding = (r.sint(), r.sint())
    if min(stride) < 1 or min(window) < 0 or min(padding) < 0:
        r.fail(f"bad pooling geometry {window} {stride} {padding}")
    return Pool(kind, window, stride, padding)


def _read_fc(r: _Reader, version: str) -> FullyConnected:
    num_outputs, num_inputs = r.uint(), r.uint()
    params, weights, biases = r.tensor(), r.alias(), r.alias()
    bias_mode = r.sint()  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    _multipliers(r)
    use_bias = r.boolean() if version == "fc_3" else True
    has_bias = bias_mode == 0 and use_bias
    if weights[:2] != (num_inputs, num_outputs) or bias_mode not in (0, 1):
        r.fail(f"inconsistent fc header {weights} vs {num_inputs}x{num_outputs}")
    shapes: list[tuple[int, ...]] = [(num_inputs, num_outputs)]
    if has_bias:
        shapes.append((math.prod(biases),))
    blocks = _split(r, params, shapes)
    return FullyConnected(blocks[0], blocks[1] if has_bias else None)


def _read_details(r: _Reader) -> Layer:
    name = r.string()
    if name in ("con_4", "con_5", "con_6"):
        return _read_conv(r, name)
    if name in ("affine_", "affine_2"):
        return _read_affine(r, name)
    if name == "relu_":
        return Relu()
    if name in ("max_pool_2", "avg_pool_2"):
        return _read_pool(r, name[:3])
    if name == "add_prev_":
        return AddPrev()
    if name in ("fc_2", "fc_3"):
        return _read_fc(r, name)
    r.fail(f"unsupported layer type {name!r}")


def _read_input(r: _Reader) -> InputRGB:
    name = r.string()
    if name != "input_rgb_image_sized":
        r.fail(f"unsupported input layer {name!r}")
    mean = (r.real(), r.real(), r.real())
    rows, cols = r.uint(), r.uint()
    return InputRGB(mean, rows, cols)


def _read_bookkeeping(r: _Reader, tensor_names: int) -> None:
    for _ in range(3):  # setup_called, gradient_input_is_stale, output/gradient getters disabled
        r.boolean()
    for _ in range(tensor_names):  # x_grad, cached_output, params_grad/grad_final: not weights
        r.tensor()


def _is_input_next(r: _Reader) -> bool:
    """True if the bytes after the current version integer start an input layer's name."""
    probe = _Reader(r.data)
    probe.pos = r.pos
    try:
        probe.sint()
        return probe.string().startswith("input_")
    except ModelError:
        return False


def _read_stack(r: _Reader) -> list[Layer]:
    versions: list[int] = []
    while not _is_input_next(r):
        if len(versions) > _MAX_DEPTH:
            r.fail("network nesting too deep")
        versions.append(r.sint())
        if versions[-1] not in (1, 2):
            r.fail(f"unsupported layer wrapper version {versions[-1]}")
    input_version = r.sint()
    if input_version not in (2, 3):
        r.fail(f"unsupported input add_layer version {input_version}")
    layers: list[Layer] = [_read_input(r), _read_details(r)]
    _read_bookkeeping(r, 3)
    if input_version == 3:
        r.uint()  # sample_expansion_factor
    for version in reversed(versions):
        if version == 1:
            layers.append(Wrapper())
            continue
        layers.append(_read_details(r))
        _read_bookkeeping(r, 3)
    return layers


def parse_dlib_network(data: bytes) -> DlibNetwork:
    """Parse a whole ``add_loss_layer<...>`` file as written by ``dlib::serialize(net)``."""
    r = _Reader(data)
    r.version(1)
    loss = r.string()
    if loss == "loss_metric_2":
        r.real(), r.real()  # margin, dist_thresh: training-only
    elif loss != "loss_metric_":
        r.fail(f"unsupported loss layer {loss!r}")
    layers = _read_stack(r)
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    return DlibNetwork(loss, tuple(layers))


def read_model_bytes(path: Path) -> bytes:
    """The bytes of ``path``; an unreadable file is ``model.unavailable``."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(
            f"Cannot read dlib model file {Path(path).name}.", code=ErrorCode.MODEL_UNAVAILABLE
        ) from exc


def read_dlib_network(path: Path) -> DlibNetwork:
    """Read and parse ``path``."""
    return parse_dlib_network(read_model_bytes(path))


__all__ = [
    "AddPrev",
    "Affine",
    "Conv",
    "DlibNetwork",
    "FullyConnected",
    "InputRGB",
    "Layer",
    "Pool",
    "Relu",
    "Wrapper",
    "parse_dlib_network",
    "read_dlib_network",
    "read_model_bytes",
]

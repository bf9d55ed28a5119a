"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The ``.dat`` is read by :mod:`shiren.models.dlib_format` (see its docstring for the byte format).
This module turns the parsed layer list into an ONNX graph that reproduces dlib's forward pass:

* input ``"chips"``: float32 ``[N, rows, cols, 3]`` RGB in 0..255 (NHWC, as a face chip comes out
  of ``dlib.get_face_chip``); the graph transposes to NCHW and applies the input layer of
  ``dlib/dnn/input.h``: ``(pixel - mean[c]) / 256`` with the per-channel means stored in the file;
* ``con_`` (``dlib/dnn/layers.h``) is an ONNX ``Conv`` (cross-correlation, symmetric padding as
  stored; dlib's default is 0 for strided layers, else ``size/2``), and an ``affine_`` that
  directly follows a convolution is folded into its weights and bias;
* ``max_pool_``/``avg_pool_`` map to ``MaxPool``/``AveragePool`` (``floor`` output size,
  ``1 + (n + 2p - w) / s`` as in ``dlib/cuda/cpu_dlib.cpp``), a window of 0 to a global pool;
* ``add_prev_`` adds two tensors of possibly different shapes the way dlib's ``tt::add`` does:
  the result has the larger size in every dimension and the smaller operand is zero-padded at
  the end (channels *and* rows/columns, aligned at index 0) — this network relies on it
  (3x3 conv branch + 4x4 pooled shortcut, 64 -> 128 channel shortcuts);
* ``fc_`` is ``Flatten`` + ``MatMul`` with the stored ``[num_inputs, num_outputs]`` weight;
* ``loss_metric_`` has no inference-time effect: the output ``"embedding"`` ``[N, 128]`` is the
  raw (not normalised) descriptor ``dlib.face_recognition_model_v1`` returns.

Tags and skips (``add_tag_layer``/``add_skip_layer`` in ``dlib/dnn/core.h``) carry no data in the
file, so their ids come from the architecture in ``examples/dnn_face_recognition_ex.cpp``, which
is checked layer by layer against the file (:data:`FACE_RESNET_SPEC`).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiren.errors import ErrorCode, ModelError
from shiren.models.dlib_format import (
    AddPrev,
    Affine,
    Conv,
    DlibNetwork,
    FloatArray,
    FullyConnected,
    InputRGB,
    Layer,
    Pool,
    Relu,
    Wrapper,
    parse_dlib_network,
    read_model_bytes,
)

OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "embedding"

_BLOCK = ("con", "affine", "relu", "con", "affine")
_ARES = ("tag1", *_BLOCK, "add_prev1", "relu")
_ARES_DOWN = ("tag1", *_BLOCK, "tag2", "skip1", "avg_pool", "add_prev2", "relu")
_LEVELS = (  # innermost first: alevel4 .. alevel0
    (_ARES, _ARES, _ARES),
    (_ARES_DOWN, _ARES, _ARES, _ARES),
    (_ARES_DOWN, _ARES, _ARES),
    (_ARES_DOWN, _ARES, _ARES),
    (_ARES_DOWN,),
)
#: The layer sequence of ``anet_type`` in dlib's dnn_face_recognition_ex.cpp, input first.
FACE_RESNET_SPEC: tuple[str, ...] = (
    "input",
    *("con", "affine", "relu", "max_pool"),
    *(token for level in _LEVELS for unit in level for token in unit),
    *("avg_pool", "fc"),
)

Shape = tuple[int, int, int]  # C, H, W of one sample


@dataclass
class _Value:
    name: str
    shape: Shape


@dataclass
class _Graph:
    """Accumulates ONNX nodes and initializers with deterministic names."""

    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    count: int = 0

    def const(self, array: np.ndarray[Any, Any], hint: str) -> str:
        name = f"{hint}_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        self.count += 1
        out = output or f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self.count}", **attrs))
        return out


def _kind(layer: Layer) -> str:
    if isinstance(layer, Pool):
        return f"{layer.kind}_pool"
    kinds: dict[type, str] = {
        InputRGB: "input", Conv: "con", Affine: "affine", Relu: "relu",
        AddPrev: "add_prev", FullyConnected: "fc", Wrapper: "wrapper",
    }  # fmt: skip
    return kinds[type(layer)]


def _check_spec(net: DlibNetwork, spec: tuple[str, ...]) -> None:
    kinds = [_kind(layer) for layer in net.layers]
    if len(kinds) != len(spec):
        raise ModelError(
            f"dlib network has {len(kinds)} layers, the face ResNet has {len(spec)}.",
            code=ErrorCode.MODEL_INVALID,
        )
    for i, (got, want) in enumerate(zip(kinds, spec, strict=True)):
        expected = "wrapper" if want[:3] in ("tag", "ski") else want.rstrip("0123456789")
        if got != expected:
            raise ModelError(
                f"dlib layer {i} is {got!r} where the face ResNet has {want!r}.",
                code=ErrorCode.MODEL_INVALID,
                detail={"layer": i},
            )


def _fold_affine(conv: Conv, affine: Affine | None) -> tuple[FloatArray, FloatArray]:
    """Weight and bias of ``affine(conv(x))`` as one convolution (computed in float64)."""
    out_channels = conv.weight.shape[0]
    weight = conv.weight.astype(np.float64)
    bias = np.zeros(out_channels) if conv.bias is None else conv.bias.astype(np.float64)
    if affine is not None:
        if affine.gamma.shape != (out_channels,):
            raise ModelError(
                "affine size does not match its convolution.", code=ErrorCode.MODEL_INVALID
            )
        weight = weight * affine.gamma.astype(np.float64)[:, None, None, None]
        bias = bias * affine.gamma + affine.beta
    return weight.astype(np.float32), bias.astype(np.float32)


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    out = 1 + (size + 2 * pad - window) // stride
    if out < 1:
        raise ModelError(
            "dlib layer window is larger than its input.", code=ErrorCode.MODEL_INVALID
        )
    return out


def _conv(g: _Graph, x: _Value, conv: Conv, affine: Affine | None) -> _Value:
    weight, bias = _fold_affine(conv, affine)
    out_c, in_c, kh, kw = weight.shape
    if in_c != x.shape[0]:
        raise ModelError("convolution input channels do not match.", code=ErrorCode.MODEL_INVALID)
    (sy, sx), (py, px) = conv.stride, conv.padding
    name = g.op(
        "Conv", [x.name, g.const(weight, "conv_w"), g.const(bias, "conv_b")],
        kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px],
    )  # fmt: skip
    shape = (out_c, _out_size(x.shape[1], kh, sy, py), _out_size(x.shape[2], kw, sx, px))
    value = _Value(name, shape)
    return _Value(g.op("Relu", [name]), shape) if conv.fused_relu else value


def _affine(g: _Graph, x: _Value, affine: Affine) -> _Value:
    scale = g.const(affine.gamma.reshape(-1, 1, 1), "affine_g")
    shift = g.const(affine.beta.reshape(-1, 1, 1), "affine_b")
    return _Value(g.op("Add", [g.op("Mul", [x.name, scale]), shift]), x.shape)


def _pool(g: _Graph, x: _Value, pool: Pool) -> _Value:
    c, h, w = x.shape
    if pool.window == (0, 0) and pool.padding == (0, 0):
        op = "GlobalMaxPool" if pool.kind == "max" else "GlobalAveragePool"
        return _Value(g.op(op, [x.name]), (c, 1, 1))
    if pool.kind == "avg" and pool.padding != (0, 0):
        raise ModelError("padded average pooling is not supported.", code=ErrorCode.MODEL_INVALID)
    kh, kw = pool.window[0] or h, pool.window[1] or w
    (sy, sx), (py, px) = pool.stride, pool.padding
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    name = g.op(op, [x.name], kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
    return _Value(name, (c, _out_size(h, kh, sy, py), _out_size(w, kw, sx, px)))


def _pad_to(g: _Graph, x: _Value, shape: Shape) -> str:
    """Zero-pad ``x`` at the end of C, H and W up to ``shape`` (dlib's ``tt::add`` semantics)."""
    if x.shape == shape:
        return x.name
    extra = [0, 0, 0, 0, 0, *(want - have for want, have in zip(shape, x.shape, strict=True))]
    return g.op("Pad", [x.name, g.const(np.array(extra, dtype=np.int64), "pads")], mode="constant")


def _add_prev(g: _Graph, a: _Value, b: _Value) -> _Value:
    shape: Shape = (
        max(a.shape[0], b.shape[0]),
        max(a.shape[1], b.shape[1]),
        max(a.shape[2], b.shape[2]),
    )
    return _Value(g.op("Add", [_pad_to(g, a, shape), _pad_to(g, b, shape)]), shape)


def _fc(g: _Graph, x: _Value, fc: FullyConnected, output: str) -> str:
    if fc.weight.shape[0] != math.prod(x.shape):
        raise ModelError("fc input size does not match.", code=ErrorCode.MODEL_INVALID)
    flat = g.op("Flatten", [x.name], axis=1)
    if fc.bias is None:
        return g.op("MatMul", [flat, g.const(fc.weight, "fc_w")], output)
    product = g.op("MatMul", [flat, g.const(fc.weight, "fc_w")])
    return g.op("Add", [product, g.const(fc.bias, "fc_b")], output)


def _input(g: _Graph, layer: InputRGB) -> _Value:
    nchw = g.op("Transpose", [INPUT_NAME], perm=[0, 3, 1, 2])
    mean = g.const(np.array(layer.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1), "mean")
    centred = g.op("Sub", [nchw, mean])
    scaled = g.op("Mul", [centred, g.const(np.array(1.0 / 256.0, dtype=np.float32), "scale")])
    return _Value(scaled, (3, layer.rows, layer.cols))


def _build_nodes(g: _Graph, net: DlibNetwork, spec: tuple[str, ...]) -> int:
    """Emit all nodes; returns the embedding width."""
    layers, x, tags = net.layers, _Value("", (0, 0, 0)), dict[str, _Value]()
    i = 0
    while i < len(layers):
        layer, token = layers[i], spec[i]
        if isinstance(layer, InputRGB):
            x = _input(g, layer)
        elif isinstance(layer, Conv):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            affine = nxt if isinstance(nxt, Affine) else None
            x = _conv(g, x, layer, affine)
            i += affine is not None
        elif isinstance(layer, Affine):
            x = _affine(g, x, layer)
        elif isinstance(layer, Relu):
            x = _Value(g.op("Relu", [x.name]), x.shape)
        elif isinstance(layer, Pool):
            x = _pool(g, x, layer)
        elif isinstance(layer, Wrapper) and token.startswith("tag"):
            tags[token[3:]] = x
        elif isinstance(layer, Wrapper):
            x = tags[token[4:]]
        elif isinstance(layer, AddPrev):
            x = _add_prev(g, x, tags[token[8:]])
        elif isinstance(layer, FullyConnected):
            _fc(g, x, layer, OUTPUT_NAME)
            return int(layer.weight.shape[1])
        i += 1
    raise ModelError("dlib network does not end in an fc layer.", code=ErrorCode.MODEL_INVALID)


def build_onnx_model(net: DlibNetwork, *, source_sha256: str = "") -> Any:
    """The ONNX ``ModelProto`` equivalent to ``net`` (which must match :data:`FACE_RESNET_SPEC`)."""
    _check_spec(net, FACE_RESNET_SPEC)
    first = net.layers[0]
    if not isinstance(first, InputRGB):  # unreachable after _check_spec; narrows the type
        raise ModelError("dlib network has no input layer.", code=ErrorCode.MODEL_INVALID)
    g = _Graph()
    width = _build_nodes(g, net, FACE_RESNET_SPEC)
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["N", first.rows, first.cols, 3]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", width])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name="shiren.models.dlib_convert",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="dlib face-recognition ResNet (CC0), converted from the dlib .dat file.",
    )
    helper.set_model_props(model, {"source_sha256": source_sha256, "dlib_loss": net.loss})
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_dlib_resnet(dat_path: Path, onnx_path: Path) -> str:
    """Convert ``dat_path`` to an ONNX file at ``onnx_path``; returns the file's sha256 hex.

    The output is byte-for-byte deterministic for a given input file and onnx version.
    """
    data = read_model_bytes(Path(dat_path))
    net = parse_dlib_network(data)
    model = build_onnx_model(net, source_sha256=hashlib.sha256(data).hexdigest())
    blob: bytes = model.SerializeToString(deterministic=True)
    onnx_path = Path(onnx_path)
    tmp = onnx_path.with_name(onnx_path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, onnx_path)
    return hashlib.sha256(blob).hexdigest()


__all__ = [
    "FACE_RESNET_SPEC",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "build_onnx_model",
    "convert_dlib_resnet",
]

"""A small, strict TFLite → ONNX translator for float graphs built from a fixed set of ops.

Why our own: ``tflite2onnx`` 0.4.1 (which translates MobileFaceNet) refuses the face
anti-spoofing graph of the same npm package (``LEAKY_RELU`` is not implemented, and its float16
weights are "not supported/tested").  That graph uses only fifteen plain ops, so a translator of
those, written against the TFLite schema (parsed with the ``tflite`` package, no TensorFlow), is
shorter than patching the library and fails loudly on anything it does not know.

Conventions:

* float16 weights behind ``DEQUANTIZE`` are widened to float32 at build time, exactly as the
  TFLite runtime does when it loads them, and stored as float32 initializers;
* 4-D activations are kept NCHW inside the ONNX graph (ONNX Conv and pooling need it); the
  graph's input and every op that depends on the NHWC element order (a reshape of a 4-D tensor,
  a fully connected layer flattening one) get an explicit ``Transpose``;
* TF ``SAME`` padding is written as explicit pads (TF puts the odd pixel at the bottom/right);
  average pooling excludes padding from the count, as TF does;
* the batch stays what the TFLite graph says (1 for the anti-spoofing model);
* initializers are named ``t<tensor index>`` and sorted, nodes follow the TFLite operator order
  and the model is serialised with ``deterministic=True``: equal inputs give equal bytes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiren.errors import ErrorCode, ModelError

OPSET = 17
Array = np.ndarray[Any, Any]
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 6: np.bool_}
_ONNX_DTYPES = {
    0: TensorProto.FLOAT,
    2: TensorProto.INT32,
    4: TensorProto.INT64,
    6: TensorProto.BOOL,
}


def _schema() -> Any:
    """The ``tflite`` package (the TFLite flatbuffer schema; untyped, imported when building)."""
    return importlib.import_module("tflite")


def _invalid(message: str) -> ModelError:
    return ModelError(f"TFLite translation: {message}", code=ErrorCode.MODEL_INVALID)


@dataclass
class _Value:
    """One TFLite tensor as it exists in the ONNX graph."""

    name: str
    shape: tuple[int, ...]
    """The TFLite (NHWC) shape."""
    const: Array | None = None
    nchw: bool = False
    """4-D activation stored transposed to NCHW."""


@dataclass
class _Builder:
    model: Any
    graph: Any
    values: dict[int, _Value] = field(default_factory=dict)
    nodes: list[Any] = field(default_factory=list)
    inits: dict[str, Array] = field(default_factory=dict)
    _count: int = 0

    def tensor(self, index: int) -> Any:
        return self.graph.Tensors(int(index))

    def const(self, array: Array, hint: str) -> str:
        name = f"{hint}_c{len(self.inits)}"
        self.inits[name] = np.ascontiguousarray(array)
        return name

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        self._count += 1
        out = f"n{self._count}_{op_type.lower()}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def value(self, index: int) -> _Value:
        if index not in self.values:
            raise _invalid(f"tensor {index} is used before it is produced")
        return self.values[index]

    def operand(self, index: int, *, like: _Value | None = None) -> str:
        """The ONNX name of tensor ``index``; a constant is written as an initializer, laid out
        (and broadcast) like the activation ``like`` when that one is NCHW."""
        v = self.value(index)
        if v.const is None:
            return v.name
        arr = v.const
        if like is not None and like.nchw and arr.ndim <= 4:
            arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(_NHWC_TO_NCHW)
        return self.const(arr, f"t{index}")

    def nhwc(self, index: int) -> str:
        """Tensor ``index`` in TFLite's own element order."""
        v = self.value(index)
        if v.const is not None:
            return self.operand(index)
        return self.node("Transpose", [v.name], perm=_NCHW_TO_NHWC) if v.nchw else v.name

    def set(self, index: int, name: str, *, nchw: bool = False) -> None:
        self.values[index] = _Value(name, _shape(self.tensor(index)), nchw=nchw)


def _shape(tensor: Any) -> tuple[int, ...]:
    """A TFLite tensor's shape (``()`` for a scalar: the schema then has no shape vector)."""
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _buffer(b: _Builder, index: int) -> Array | None:
    t = b.tensor(index)
    data = b.model.Buffers(t.Buffer()).DataAsNumpy()
    if not isinstance(data, np.ndarray) or data.size == 0:
        return None
    if t.Type() not in _DTYPES:
        raise _invalid(f"tensor {index} has unsupported type {t.Type()}")
    return np.frombuffer(data.tobytes(), dtype=_DTYPES[t.Type()]).reshape(_shape(t)).copy()


def _options(op: Any, cls: Any) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        raise _invalid("operator without its options")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _activation(b: _Builder, name: str, code: int) -> str:
    if code == 0:
        return name
    if code == 1:
        return b.node("Relu", [name])
    if code == 3:
        low, high = (b.const(np.array(v, dtype=np.float32), "clip") for v in (0.0, 6.0))
        return b.node("Clip", [name, low, high])
    raise _invalid(f"fused activation {code} is not supported")


def _pads(
    size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], same: bool
) -> list[int]:
    """ONNX ``pads`` (top, left, bottom, right) reproducing TF's SAME/VALID."""
    if not same:
        return [0, 0, 0, 0]
    total = []
    for n, k, s in zip(size, kernel, stride, strict=True):
        out = -(-n // s)
        total.append(max((out - 1) * s + k - n, 0))
    return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]


def _conv(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    tflite = _schema()

    o = _options(op, tflite.Conv2DOptions)
    x = b.value(ins[0])
    weight = b.value(ins[1]).const
    if weight is None or len(x.shape) != 4:
        raise _invalid("CONV_2D needs constant weights and a 4-D input")
    stride = (o.StrideH(), o.StrideW())
    dil = (o.DilationHFactor(), o.DilationWFactor())
    kernel = (int(weight.shape[1]), int(weight.shape[2]))
    eff = ((kernel[0] - 1) * dil[0] + 1, (kernel[1] - 1) * dil[1] + 1)
    pads = _pads((x.shape[1], x.shape[2]), eff, stride, o.Padding() == 0)
    inputs = [_as_nchw(b, ins[0]), b.const(weight.transpose(0, 3, 1, 2), f"t{ins[1]}")]
    if len(ins) > 2 and ins[2] >= 0:
        inputs.append(b.operand(ins[2]))
    y = b.node("Conv", inputs, strides=list(stride), dilations=list(dil), pads=pads,
               kernel_shape=list(kernel))  # fmt: skip
    b.set(out, _activation(b, y, o.FusedActivationFunction()), nchw=True)


def _as_nchw(b: _Builder, index: int) -> str:
    v = b.value(index)
    if v.nchw:
        return v.name
    return b.node("Transpose", [b.operand(index)], perm=_NHWC_TO_NCHW)


def _pool(kind: str) -> Callable[[_Builder, Any, list[int], int], None]:
    def translate(b: _Builder, op: Any, ins: list[int], out: int) -> None:
        tflite = _schema()

        o = _options(op, tflite.Pool2DOptions)
        x = b.value(ins[0])
        kernel = (o.FilterHeight(), o.FilterWidth())
        stride = (o.StrideH(), o.StrideW())
        pads = _pads((x.shape[1], x.shape[2]), kernel, stride, o.Padding() == 0)
        attrs: dict[str, Any] = {
            "kernel_shape": list(kernel),
            "strides": list(stride),
            "pads": pads,
        }
        if kind == "AveragePool":
            attrs["count_include_pad"] = 0
        y = b.node(kind, [_as_nchw(b, ins[0])], **attrs)
        b.set(out, _activation(b, y, o.FusedActivationFunction()), nchw=True)

    return translate


def _leaky(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    tflite = _schema()

    alpha = float(_options(op, tflite.LeakyReluOptions).Alpha())
    x = b.value(ins[0])
    b.set(out, b.node("LeakyRelu", [x.name], alpha=alpha), nchw=x.nchw)


def _binary(kind: str, options: str | None) -> Callable[[_Builder, Any, list[int], int], None]:
    def translate(b: _Builder, op: Any, ins: list[int], out: int) -> None:
        tflite = _schema()

        a, c = b.value(ins[0]), b.value(ins[1])
        layout = a if a.const is None else c
        if a.const is None and c.const is None and a.nchw != c.nchw:
            raise _invalid(f"{kind} of tensors in different layouts")
        y = b.node(kind, [b.operand(ins[0], like=layout), b.operand(ins[1], like=layout)])
        if options is not None:
            y = _activation(b, y, _options(op, getattr(tflite, options)).FusedActivationFunction())
        b.set(out, y, nchw=layout.nchw)

    return translate


def _cast(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    to = b.tensor(out).Type()
    if to not in _ONNX_DTYPES:
        raise _invalid(f"CAST to type {to}")
    x = b.value(ins[0])
    b.set(out, b.node("Cast", [b.operand(ins[0])], to=_ONNX_DTYPES[to]), nchw=x.nchw)


def _reshape(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    shape = np.array(_shape(b.tensor(out)), dtype=np.int64)
    b.set(out, b.node("Reshape", [b.nhwc(ins[0]), b.const(shape, "shape")]))


def _fully_connected(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    tflite = _schema()

    o = _options(op, tflite.FullyConnectedOptions)
    weight = b.value(ins[1]).const
    if weight is None or weight.ndim != 2 or o.KeepNumDims():
        raise _invalid("FULLY_CONNECTED needs constant 2-D weights and flat output")
    flat = b.node("Reshape", [b.nhwc(ins[0]), b.const(np.array([-1, weight.shape[1]]), "shape")])
    inputs = [flat, b.const(weight, f"t{ins[1]}")]
    if len(ins) > 2 and ins[2] >= 0:
        inputs.append(b.operand(ins[2]))
    y = b.node("Gemm", inputs, transB=1)
    b.set(out, _activation(b, y, o.FusedActivationFunction()))


def _strided_slice(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    tflite = _schema()

    o = _options(op, tflite.StridedSliceOptions)
    if o.EllipsisMask() or o.NewAxisMask() or o.ShrinkAxisMask():
        raise _invalid("STRIDED_SLICE with ellipsis, new-axis or shrink masks")
    consts = [b.value(i).const for i in ins[1:4]]
    if any(c is None for c in consts) or b.value(ins[0]).nchw:
        raise _invalid("STRIDED_SLICE needs constant bounds on a non-4-D tensor")
    begin, end, step = (np.asarray(c, dtype=np.int64).copy() for c in consts)
    big = np.iinfo(np.int64).max
    for axis in range(len(begin)):
        if o.BeginMask() >> axis & 1:
            begin[axis] = 0 if step[axis] > 0 else big
        if o.EndMask() >> axis & 1:
            end[axis] = big if step[axis] > 0 else -big
    axes = np.arange(len(begin), dtype=np.int64)
    args = [b.operand(ins[0]), *(b.const(v, "slice") for v in (begin, end, axes, step))]
    b.set(out, b.node("Slice", args))


def _concat(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    tflite = _schema()

    o = _options(op, tflite.ConcatenationOptions)
    values = [b.value(i) for i in ins]
    if any(v.nchw for v in values):
        raise _invalid("CONCATENATION of 4-D activations")
    y = b.node("Concat", [b.operand(i) for i in ins], axis=int(o.Axis()))
    b.set(out, _activation(b, y, o.FusedActivationFunction()))


def _dequantize(b: _Builder, op: Any, ins: list[int], out: int) -> None:
    source = b.value(ins[0]).const
    if source is None:
        raise _invalid("DEQUANTIZE of a non-constant tensor")
    if source.dtype != np.float16:
        raise _invalid("only float16 → float32 DEQUANTIZE is supported")
    b.values[out] = _Value(f"t{out}", _shape(b.tensor(out)), const=source.astype(np.float32))


_OPS: dict[str, Callable[[_Builder, Any, list[int], int], None]] = {
    "CONV_2D": _conv,
    "MAX_POOL_2D": _pool("MaxPool"),
    "AVERAGE_POOL_2D": _pool("AveragePool"),
    "LEAKY_RELU": _leaky,
    "ADD": _binary("Add", "AddOptions"),
    "SUB": _binary("Sub", "SubOptions"),
    "MUL": _binary("Mul", "MulOptions"),
    "GREATER_EQUAL": _binary("GreaterOrEqual", None),
    "LESS": _binary("Less", None),
    "CAST": _cast,
    "RESHAPE": _reshape,
    "FULLY_CONNECTED": _fully_connected,
    "STRIDED_SLICE": _strided_slice,
    "CONCATENATION": _concat,
    "DEQUANTIZE": _dequantize,
}
SUPPORTED_OPS = tuple(sorted(_OPS))


def _op_name(model: Any, op: Any) -> str:
    tflite = _schema()

    code = model.OperatorCodes(op.OpcodeIndex())
    number = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    return str(names.get(number, number))


def translate(data: bytes, *, producer: str) -> onnx.ModelProto:
    """The ONNX model (opset 17) equivalent to the TFLite flatbuffer ``data``.

    Inputs and outputs keep their TFLite names and shapes (NHWC images in).  Raises
    ``model.invalid`` for a graph with more than one subgraph, an op outside
    :data:`SUPPORTED_OPS`, or a layout this translator does not handle.
    """
    tflite = _schema()

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise _invalid("expected exactly one subgraph")
    b = _Builder(model, model.Subgraphs(0))
    for i in range(b.graph.TensorsLength()):
        arr = _buffer(b, i)
        if arr is not None:
            b.values[i] = _Value(f"t{i}", arr.shape, const=arr)
    graph_inputs = []
    for i in b.graph.InputsAsNumpy():
        t = b.tensor(i)
        name = t.Name().decode()
        shape = list(_shape(t))
        graph_inputs.append(helper.make_tensor_value_info(name, _ONNX_DTYPES[t.Type()], shape))
        b.values[int(i)] = _Value(name, tuple(shape))
    for k in range(b.graph.OperatorsLength()):
        op = b.graph.Operators(k)
        kind = _op_name(model, op)
        if kind not in _OPS:
            raise _invalid(f"op {kind} is not supported")
        outs = [int(i) for i in op.OutputsAsNumpy()]
        if len(outs) != 1:
            raise _invalid(f"{kind} with {len(outs)} outputs")
        _OPS[kind](b, op, [int(i) for i in op.InputsAsNumpy()], outs[0])
    outputs = []
    for i in b.graph.OutputsAsNumpy():
        t = b.tensor(i)
        name = t.Name().decode()
        b.nodes.append(helper.make_node("Identity", [b.nhwc(int(i))], [name], name=f"out_{name}"))
        shape = list(_shape(t))
        outputs.append(helper.make_tensor_value_info(name, _ONNX_DTYPES[t.Type()], shape))
    inits = [numpy_helper.from_array(a, n) for n, a in sorted(b.inits.items())]
    onnx_graph = helper.make_graph(b.nodes, "tflite", graph_inputs, outputs, inits)
    result = helper.make_model(
        onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer
    )
    result.ir_version = 8
    onnx.checker.check_model(result)
    return result


__all__ = ["OPSET", "SUPPORTED_OPS", "translate"]

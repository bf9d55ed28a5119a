"""A small, strict TensorFlow.js graph-model → ONNX translator (numpy + ``onnx``, no TensorFlow).

Why our own: the registry's second anti-spoofing candidates (``antispoof`` and ``liveness`` of
the npm package ``@vladmandic/human``, :mod:`shiren.models.human_fas`) are TF.js *graph models*
(``model.json`` + weight shards) and no PyPI package reads that format without TensorFlow.  The
graphs are small Keras-style CNNs built from a handful of ops, so a translator of those, written
against the format (a JSON ``GraphDef`` plus a ``weightsManifest``), is short and fails loudly on
anything it does not know.  The same shape as :mod:`shiren.models.tflite_convert`.

Conventions:

* weights are read per ``weightsManifest`` group (the group's shards concatenated, weights in
  order); float16 and affine ``uint8``/``uint16`` quantised weights are widened to float32 at build
  time exactly as TF.js does when it loads them (``q · scale + min``);
* 4-D activations are kept NCHW inside the ONNX graph; the graph's input stays NHWC as in TF.js
  (one ``Transpose`` after it), and every op that depends on the NHWC element order (a reshape
  of a 4-D tensor) gets an explicit ``Transpose`` back;
* TF ``SAME`` padding is written as explicit pads (TF puts the odd pixel at the bottom/right);
  average pooling excludes padding from the count, as TF does;
* the batch dimension stays dynamic (``N``) where the signature says ``-1``;
* nodes are visited in a depth-first order from the outputs, initializers are named after their
  TF node and sorted, and the model is serialised with ``deterministic=True`` by the caller:
  equal inputs give equal bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiren.errors import ErrorCode, ModelError

OPSET = 17
Array = np.ndarray[Any, Any]
Node = dict[str, Any]
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]
_DTYPES: dict[str, Any] = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTISED: dict[str, Any] = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def _invalid(message: str) -> ModelError:
    return ModelError(f"TF.js translation: {message}", code=ErrorCode.MODEL_INVALID)


def read_weights(manifest: list[dict[str, Any]], shards: Mapping[str, bytes]) -> dict[str, Array]:
    """Every weight of a ``weightsManifest`` as a numpy array (float32 after de-quantisation).

    ``shards`` maps each ``paths`` entry to its bytes.  Raises ``model.invalid`` for a missing
    shard, an unknown dtype or a group whose bytes do not add up."""
    out: dict[str, Array] = {}
    for group in manifest:
        try:
            data = b"".join(shards[p] for p in group["paths"])
        except KeyError as exc:
            raise _invalid(f"weight shard {exc.args[0]!r} is missing") from None
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(d) for d in spec["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            stored = _QUANTISED.get(quant["dtype"]) if quant else _DTYPES.get(spec["dtype"])
            if stored is None or spec["dtype"] not in _DTYPES:
                raise _invalid(f"weight {spec['name']!r} has unsupported dtype {spec['dtype']!r}")
            size = count * np.dtype(stored).itemsize
            if offset + size > len(data):
                raise _invalid(f"weight {spec['name']!r} runs past the end of its shards")
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            out[spec["name"]] = raw.astype(_DTYPES[spec["dtype"]])
        if offset != len(data):
            raise _invalid(f"weight group {group['paths']} has {len(data) - offset} bytes left")
    return out


def _attr(node: Node, key: str, default: Any = None) -> Any:
    """A node attribute decoded from TF.js's JSON form (strings are base64 bytes)."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        return [int(i) for i in items.get("i", [])] or [float(f) for f in items.get("f", [])]
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    if "type" in value:
        return value["type"]
    return default


@dataclass
class _Value:
    """One TF tensor as it exists in the ONNX graph."""

    name: str
    shape: tuple[int, ...]
    """The TF (NHWC) shape; -1 for the dynamic batch."""
    const: Array | None = None
    nchw: bool = False
    """4-D activation stored transposed to NCHW."""


@dataclass
class _Builder:
    weights: dict[str, Array]
    values: dict[str, _Value] = field(default_factory=dict)
    nodes: list[Any] = field(default_factory=list)
    inits: dict[str, Array] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)

    def const(self, array: Array, hint: str) -> str:
        name = f"{hint}_c{len(self.inits)}"
        self.inits[name] = np.ascontiguousarray(array)
        return name

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = f"n{len(self.nodes) + 1}_{op_type.lower()}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def operand(self, v: _Value, *, like: _Value | None = None) -> str:
        """``v``'s ONNX name; a constant is written as an initializer, laid out (and broadcast)
        like the activation ``like`` when that one is NCHW."""
        if v.const is None:
            return v.name
        arr = v.const
        if like is not None and like.nchw and arr.ndim <= 4:
            arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(_NHWC_TO_NCHW)
        return self.const(arr, v.name)

    def nchw(self, v: _Value) -> str:
        if v.nchw:
            return v.name
        if len(v.shape) != 4:
            raise _invalid(f"{v.name} is not a 4-D image tensor")
        return self.node("Transpose", [self.operand(v)], perm=_NHWC_TO_NCHW)

    def nhwc(self, v: _Value) -> str:
        return self.node("Transpose", [v.name], perm=_NCHW_TO_NHWC) if v.nchw else self.operand(v)


Op = Callable[[_Builder, Node, list[_Value]], _Value]


def _pads(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
          dil: tuple[int, int], node: Node) -> list[int]:  # fmt: skip
    """ONNX ``pads`` (top, left, bottom, right) reproducing TF's SAME / VALID / EXPLICIT."""
    padding = _attr(node, "padding", "VALID")
    if padding == "EXPLICIT":
        p = _attr(node, "explicit_paddings", [])
        return [p[2], p[4], p[3], p[5]]
    if padding != "SAME":
        return [0, 0, 0, 0]
    total = []
    for n, k, s, d in zip(size, kernel, stride, dil, strict=True):
        eff = (k - 1) * d + 1
        total.append(max((-(-n // s) - 1) * s + eff - n, 0))
    return [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]


def _out_hw(x: _Value, kernel: tuple[int, int], stride: tuple[int, int],
            dil: tuple[int, int], pads: list[int]) -> tuple[int, int]:  # fmt: skip
    h = (x.shape[1] + pads[0] + pads[2] - ((kernel[0] - 1) * dil[0] + 1)) // stride[0] + 1
    w = (x.shape[2] + pads[1] + pads[3] - ((kernel[1] - 1) * dil[1] + 1)) // stride[1] + 1
    return h, w


def _nhwc_pair(node: Node, key: str) -> tuple[int, int]:
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise _invalid(f"{node['name']}: only NHWC is supported")
    v = _attr(node, key, [1, 1, 1, 1])
    return (int(v[1]), int(v[2])) if len(v) == 4 else (int(v[0]), int(v[1]))


def _activation(b: _Builder, name: str, kind: str, node: Node) -> str:
    if kind == "Relu":
        return b.node("Relu", [name])
    if kind == "Relu6":
        low, high = (b.const(np.array(v, dtype=np.float32), "clip") for v in (0.0, 6.0))
        return b.node("Clip", [name, low, high])
    if kind == "Sigmoid":
        return b.node("Sigmoid", [name])
    if kind == "Tanh":
        return b.node("Tanh", [name])
    if kind == "LeakyRelu":
        return b.node("LeakyRelu", [name], alpha=float(_attr(node, "leakyrelu_alpha", 0.2)))
    raise _invalid(f"{node['name']}: activation {kind} is not supported")


def _fused(b: _Builder, node: Node, y: str, extra: list[_Value], *, nchw: bool) -> str:
    """Apply a fused op's ``fused_ops`` (BiasAdd then an activation) to ``y``."""
    ops = list(_attr(node, "fused_ops", []))
    if ops and ops[0] == "BiasAdd":
        bias = extra[0].const
        if bias is None:
            raise _invalid(f"{node['name']}: the bias must be constant")
        if nchw:
            bias = bias.reshape(1, -1, 1, 1)
        y = b.node("Add", [y, b.const(bias, extra[0].name)])
        ops = ops[1:]
    for kind in ops:
        y = _activation(b, y, kind, node)
    return y


def _conv(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x, weight = ins[0], ins[1].const
    if weight is None or len(x.shape) != 4 or weight.ndim != 4:
        raise _invalid(f"{node['name']}: Conv2D needs constant 4-D weights and a 4-D input")
    depthwise = "Depthwise" in node["op"]
    stride, dil = _nhwc_pair(node, "strides"), _nhwc_pair(node, "dilations")
    kernel = (int(weight.shape[0]), int(weight.shape[1]))
    pads = _pads((x.shape[1], x.shape[2]), kernel, stride, dil, node)
    attrs: dict[str, Any] = {}
    if depthwise:  # [H, W, C, M] → [C·M, 1, H, W], one group per input channel
        c, m = int(weight.shape[2]), int(weight.shape[3])
        weight = weight.reshape(kernel[0], kernel[1], 1, c * m)
        attrs["group"] = c
    w = b.const(weight.transpose(3, 2, 0, 1), ins[1].name)
    y = b.node("Conv", [b.nchw(x), w], strides=list(stride), dilations=list(dil), pads=pads,
               kernel_shape=list(kernel), **attrs)  # fmt: skip
    y = _fused(b, node, y, ins[2:], nchw=True)
    h, wd = _out_hw(x, kernel, stride, dil, pads)
    channels = int(weight.shape[3])
    return _Value(y, (x.shape[0], h, wd, channels), nchw=True)


def _pool(kind: str) -> Op:
    def translate(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
        x = ins[0]
        kernel, stride = _nhwc_pair(node, "ksize"), _nhwc_pair(node, "strides")
        pads = _pads((x.shape[1], x.shape[2]), kernel, stride, (1, 1), node)
        attrs: dict[str, Any] = {"kernel_shape": list(kernel), "strides": list(stride)}
        if kind == "AveragePool":
            attrs["count_include_pad"] = 0
        y = b.node(kind, [b.nchw(x)], pads=pads, **attrs)
        h, w = _out_hw(x, kernel, stride, (1, 1), pads)
        return _Value(y, (x.shape[0], h, w, x.shape[3]), nchw=True)

    return translate


def _matmul(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x, weight = ins[0], ins[1].const
    if weight is None or weight.ndim != 2 or len(x.shape) != 2 or _attr(node, "transpose_a"):
        raise _invalid(f"{node['name']}: MatMul needs a 2-D input and constant 2-D weights")
    if _attr(node, "transpose_b"):
        weight = weight.T
    y = b.node("MatMul", [b.operand(x), b.const(weight, ins[1].name)])
    y = _fused(b, node, y, ins[2:], nchw=False)
    return _Value(y, (x.shape[0], int(weight.shape[1])))


def _binary(kind: str) -> Op:
    def translate(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
        a, c = ins
        if a.const is not None and c.const is not None:
            raise _invalid(f"{node['name']}: {kind} of two constants")
        layout = a if a.const is None else c
        if a.const is None and c.const is None and a.nchw != c.nchw:
            raise _invalid(f"{node['name']}: {kind} of tensors in different layouts")
        y = b.node(kind, [b.operand(a, like=layout), b.operand(c, like=layout)])
        return _Value(y, layout.shape, nchw=layout.nchw)

    return translate


def _unary(kind: str) -> Op:
    def translate(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
        x = ins[0]
        return _Value(_activation(b, b.operand(x), kind, node), x.shape, nchw=x.nchw)

    return translate


def _softmax(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x = ins[0]
    if x.nchw:
        raise _invalid(f"{node['name']}: Softmax of a 4-D activation")
    return _Value(b.node("Softmax", [b.operand(x)], axis=-1), x.shape)


def _reshape(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x, shape = ins
    if shape.const is None:
        raise _invalid(f"{node['name']}: Reshape needs a constant shape")
    target = np.asarray(shape.const, dtype=np.int64).reshape(-1)
    y = b.node("Reshape", [b.nhwc(x), b.const(target, "shape")])
    return _Value(y, tuple(int(d) for d in target))


def _mean(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x, axes = ins
    if axes.const is None:
        raise _invalid(f"{node['name']}: Mean needs constant axes")
    tf_axes = sorted(int(a) % len(x.shape) for a in np.asarray(axes.const).reshape(-1))
    keep = bool(_attr(node, "keep_dims", False))
    onnx_axes = [_NHWC_TO_NCHW.index(a) for a in tf_axes] if x.nchw else tf_axes
    y = b.node("ReduceMean", [b.operand(x)], axes=onnx_axes, keepdims=int(keep))
    if keep:
        return _Value(
            y, tuple(1 if i in tf_axes else d for i, d in enumerate(x.shape)), nchw=x.nchw
        )
    if x.nchw and tf_axes != [1, 2]:
        raise _invalid(f"{node['name']}: Mean over {tf_axes} of a 4-D activation")
    return _Value(y, tuple(d for i, d in enumerate(x.shape) if i not in tf_axes))


def _pad(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    x, paddings = ins[0], ins[1].const
    if paddings is None:
        raise _invalid(f"{node['name']}: Pad needs constant paddings")
    p = np.asarray(paddings, dtype=np.int64).reshape(-1, 2)
    order = _NHWC_TO_NCHW if x.nchw else list(range(len(p)))
    pads = np.concatenate([p[order, 0], p[order, 1]])
    y = b.node("Pad", [b.operand(x), b.const(pads, "pads")])
    shape = tuple(d + int(p[i].sum()) if d > 0 else d for i, d in enumerate(x.shape))
    return _Value(y, shape, nchw=x.nchw)


def _concat(b: _Builder, node: Node, ins: list[_Value]) -> _Value:
    *parts, axis_value = ins
    if axis_value.const is None:
        raise _invalid(f"{node['name']}: ConcatV2 needs a constant axis")
    first = next((v for v in parts if v.const is None), parts[0])
    axis = int(np.asarray(axis_value.const).reshape(-1)[0]) % len(first.shape)
    if any(v.const is None and v.nchw != first.nchw for v in parts):
        raise _invalid(f"{node['name']}: ConcatV2 of tensors in different layouts")
    y = b.node("Concat", [b.operand(v, like=first) for v in parts],
               axis=_NHWC_TO_NCHW.index(axis) if first.nchw else axis)  # fmt: skip
    total = sum(v.shape[axis] for v in parts)
    shape = tuple(total if i == axis else d for i, d in enumerate(first.shape))
    return _Value(y, shape, nchw=first.nchw)


_OPS: dict[str, Op] = {
    "Conv2D": _conv,
    "_FusedConv2D": _conv,
    "DepthwiseConv2dNative": _conv,
    "FusedDepthwiseConv2dNative": _conv,
    "MatMul": _matmul,
    "_FusedMatMul": _matmul,
    "MaxPool": _pool("MaxPool"),
    "AvgPool": _pool("AveragePool"),
    "Add": _binary("Add"),
    "AddV2": _binary("Add"),
    "BiasAdd": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("Div"),
    "Relu": _unary("Relu"),
    "Relu6": _unary("Relu6"),
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "LeakyRelu": _unary("LeakyRelu"),
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Mean": _mean,
    "Pad": _pad,
    "ConcatV2": _concat,
}
SUPPORTED_OPS = tuple(sorted([*_OPS, "Const", "Identity", "Placeholder"]))


def _source(name: str) -> str:
    """A node input's producing node (``^ctrl`` and ``node:k`` forms reduced to ``node``)."""
    base = name.lstrip("^")
    head, _, index = base.rpartition(":")
    if head and index.isdigit():
        if index != "0":
            raise _invalid(f"input {name!r}: only first outputs are supported")
        return head
    return base


def _dims(shape: tuple[int, ...]) -> list[int | str]:
    """ONNX dims: the batch ``-1`` is the symbol ``N``, any other unknown ``d<axis>``."""
    return [d if d >= 0 else ("N" if i == 0 else f"d{i}") for i, d in enumerate(shape)]


def _visit(b: _Builder, nodes: dict[str, Node], name: str, stack: tuple[str, ...] = ()) -> _Value:
    if name in b.values:
        return b.values[name]
    if name in stack or name not in nodes:
        raise _invalid(f"node {name!r} is {'cyclic' if name in stack else 'missing'}")
    node = nodes[name]
    ins = [_source(i) for i in node.get("input", []) if not i.startswith("^")]
    values = [_visit(b, nodes, i, (*stack, name)) for i in ins]
    op = node["op"]
    if op == "Const":
        if name not in b.weights:
            raise _invalid(f"constant {name!r} has no weight")
        value = _Value(name, b.weights[name].shape, const=b.weights[name])
    elif op == "Placeholder":
        shape = tuple(_attr(node, "shape", []))
        b.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, _dims(shape)))
        value = _Value(name, shape)
    elif op in ("Identity", "StopGradient"):
        value = values[0]
    elif op in _OPS:
        value = _OPS[op](b, node, values)
    else:
        raise _invalid(f"op {op} is not supported")
    b.values[name] = value
    return value


def translate(model_json: bytes, shards: Mapping[str, bytes], *, producer: str) -> onnx.ModelProto:
    """The ONNX model (opset 17) equivalent to a TF.js graph model.

    ``model_json`` is the ``model.json`` bytes, ``shards`` its weight files by ``paths`` name.
    Inputs and outputs are named after the signature's keys (NHWC images in, TF.js's own
    output layout out).  Raises ``model.invalid`` for a layers model, an op outside
    :data:`SUPPORTED_OPS`, or a layout this translator does not handle.
    """
    spec = json.loads(model_json)
    if spec.get("format") != "graph-model":
        raise _invalid(f"format {spec.get('format')!r} is not a graph model")
    b = _Builder(read_weights(spec["weightsManifest"], shards))
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
    outputs = []
    for key, out in sorted(spec.get("signature", {}).get("outputs", {}).items()):
        v = _visit(b, nodes, _source(out["name"]))
        b.nodes.append(helper.make_node("Identity", [b.nhwc(v)], [key], name=f"out_{key}"))
        outputs.append(helper.make_tensor_value_info(key, TensorProto.FLOAT, _dims(v.shape)))
    if not outputs or len(b.inputs) != 1:
        raise _invalid("expected a signature with outputs and exactly one input")
    inits = [numpy_helper.from_array(a, n) for n, a in sorted(b.inits.items())]
    graph = helper.make_graph(b.nodes, "tfjs", b.inputs, outputs, inits)
    result = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer
    )
    result.ir_version = 8
    onnx.checker.check_model(result)
    return result


__all__ = ["OPSET", "SUPPORTED_OPS", "read_weights", "translate"]

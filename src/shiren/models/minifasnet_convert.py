"""MiniFASNet's PyTorch state dict → a deterministic ONNX graph (no torch needed).

Why a module of its own: the translation is needed where the model file is *built*
(:mod:`shiren.models.registry`, which pins the output's sha256), the onnxruntime adapters in
:mod:`shiren.models.minifasnet` are needed where it is *run*; the registry must not import the
adapters (they resolve an ensemble's members through the registry), so the converter sits below
both.  The checkpoint is read without torch (:mod:`shiren.models.torch_legacy`, which never
executes the pickle).

Architecture (written from the state dict's key names and shapes, no upstream code): a pruned
MobileFaceNet.  With ``B(c_mid, c_out, s)`` the "depthwise block" ``1x1 conv+BN+PReLU →
depthwise 3x3 stride s pad 1 +BN+PReLU → 1x1 conv+BN`` (no activation after the projection)::

    conv1      3x3 s2 p1 conv + BN + PReLU                      80 → 40
    conv2_dw   depthwise 3x3 s1 p1 + BN + PReLU                 40
    conv_23    B(s=2), no shortcut                              40 → 20
    conv_3     residual stage: x + B(s=1)(x), repeated          20
    conv_34    B(s=2)                                           20 → 10
    conv_4     residual stage                                   10
    conv_45    B(s=2)                                           10 → 5
    conv_5     residual stage                                    5
    conv_6_sep 1x1 conv + BN + PReLU (→ 512)                     5
    conv_6_dw  depthwise 5x5 valid conv + BN, no activation      5 → 1
    flatten → linear (512→128, no bias) → BatchNorm1d → [dropout] → prob (128→3) → softmax

In MiniFASNetV1SE the last block of every residual stage carries a squeeze-excitation module on
its projected output, before the shortcut add: global average pool → ``fc1`` 1x1 conv → BN →
ReLU → ``fc2`` 1x1 conv → BN → sigmoid → multiply.  Every channel width (they differ per block:
the net is pruned) and the number of blocks per stage are read from the state dict; the strides
are fixed by the architecture and checked: ``conv_6_dw``'s kernel must exactly cover the map an
80x80 input leaves (5x5 → 1x1), which holds only for the strides above.  BatchNorm uses PyTorch's
default ``eps = 1e-5``.  Every BN is folded (in float64) into the convolution or linear layer
before it; the Fourier-spectrum branch (``FTGenerator.*``, training only) is ignored if present.

ONNX graph: input ``"patch"`` float32 ``[N, 3, 80, 80]`` (NCHW, dynamic batch), output
``"probs"`` float32 ``[N, 3]`` softmax; class 1 = live (bona fide), 0 and 2 = attacks.  Opset 17;
initializers are named after the module path and sorted by name, nodes are emitted in a fixed
order, and the model is serialised with ``deterministic=True``, so equal inputs give equal bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiren.errors import ErrorCode, ModelError
from shiren.models.torch_legacy import read_state_dict

OPSET = 17
INPUT_NAME = "patch"
OUTPUT_NAME = "probs"
INPUT_SIZE = 80
BN_EPS = 1e-5
NUM_CLASSES = 3

_STAGES = (  # (name, kind, stride); kind: "conv" plain, "dw" depthwise, "block", "stage"
    ("conv1", "conv", 2),
    ("conv2_dw", "dw", 1),
    ("conv_23", "block", 2),
    ("conv_3", "stage", 1),
    ("conv_34", "block", 2),
    ("conv_4", "stage", 1),
    ("conv_45", "block", 2),
    ("conv_5", "stage", 1),
    ("conv_6_sep", "conv", 1),
)
_IGNORED = re.compile(r"(^FTGenerator\.|\.num_batches_tracked$)")

Array = np.ndarray[Any, Any]


def _invalid(message: str, **detail: Any) -> ModelError:
    return ModelError(message, code=ErrorCode.MODEL_INVALID, detail=detail)


class _Weights:
    """The state dict without its ``module.`` prefix; remembers which keys were used."""

    def __init__(self, state: dict[str, Array]) -> None:
        self._state = {k.removeprefix("module."): v for k, v in state.items()}
        self._used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self._state

    def get(self, key: str, ndim: int) -> Array:
        value = self._state.get(key)
        if value is None:
            raise _invalid(f"MiniFASNet state dict lacks {key!r}", key=key)
        if value.ndim != ndim or value.dtype.kind != "f":
            raise _invalid(f"MiniFASNet weight {key!r} has the wrong shape", key=key)
        self._used.add(key)
        return value.astype(np.float64)

    def bn(self, prefix: str, channels: int) -> tuple[Array, Array]:
        """``(scale, shift)`` of an inference-mode BatchNorm: ``y = x * scale + shift``."""
        gamma = self.get(f"{prefix}.weight", 1)
        beta = self.get(f"{prefix}.bias", 1)
        mean = self.get(f"{prefix}.running_mean", 1)
        var = self.get(f"{prefix}.running_var", 1)
        if not gamma.shape == beta.shape == mean.shape == var.shape == (channels,):
            raise _invalid(f"BatchNorm {prefix!r} does not match its layer", key=prefix)
        scale = gamma / np.sqrt(var + BN_EPS)
        return scale, beta - mean * scale

    def unused(self) -> list[str]:
        return sorted(k for k in self._state if k not in self._used and not _IGNORED.search(k))


@dataclass
class _Graph:
    """ONNX nodes and initializers with names derived from the module path (deterministic)."""

    nodes: list[Any] = field(default_factory=list)
    inits: dict[str, Any] = field(default_factory=dict)

    def const(self, name: str, array: Array) -> str:
        if name in self.inits:
            raise _invalid(f"duplicate initializer {name!r}")
        tensor = np.ascontiguousarray(array, dtype=np.float32)
        self.inits[name] = numpy_helper.from_array(tensor, name)
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    channels: int
    size: int  # height == width


def _conv_bn(
    g: _Graph,
    w: _Weights,
    x: _Tensor,
    prefix: str,
    *,
    stride: int,
    depthwise: bool,
    prelu: bool,
    pad: int | None = None,
) -> _Tensor:
    """``prefix.conv`` + ``prefix.bn`` (folded) [+ ``prefix.prelu``]."""
    weight = w.get(f"{prefix}.conv.weight", 4)
    out_c, in_c, kh, kw = weight.shape
    groups = 1
    if depthwise:
        if in_c != 1 or out_c != x.channels:
            raise _invalid(f"{prefix!r} is not a depthwise convolution", key=prefix)
        groups = out_c
    elif in_c != x.channels:
        raise _invalid(f"{prefix!r} input channels do not match", key=prefix)
    if kh != kw:
        raise _invalid(f"{prefix!r} kernel is not square", key=prefix)
    if w.has(f"{prefix}.conv.bias"):
        raise _invalid(f"{prefix!r} has an unexpected bias", key=prefix)
    scale, shift = w.bn(f"{prefix}.bn", out_c)
    p = kh // 2 if pad is None else pad
    size = (x.size + 2 * p - kh) // stride + 1
    if size < 1:
        raise _invalid(f"{prefix!r} kernel is larger than its input", key=prefix)
    name = g.op(
        "Conv",
        [
            x.name,
            g.const(f"{prefix}.w", weight * scale[:, None, None, None]),
            g.const(f"{prefix}.b", shift),
        ],
        f"{prefix}.conv",
        kernel_shape=[kh, kw],
        strides=[stride, stride],
        pads=[p, p, p, p],
        group=groups,
    )
    if prelu:
        slope = w.get(f"{prefix}.prelu.weight", 1)
        if slope.shape != (out_c,):
            raise _invalid(f"{prefix!r} PReLU does not match", key=prefix)
        name = g.op("PRelu", [name, g.const(f"{prefix}.prelu", slope[:, None, None])], prefix)
    return _Tensor(name, out_c, size)


def _block(g: _Graph, w: _Weights, x: _Tensor, prefix: str, stride: int) -> _Tensor:
    """The depthwise block: expand 1x1, depthwise 3x3, project 1x1 (linear)."""
    h = _conv_bn(g, w, x, f"{prefix}.conv", stride=1, depthwise=False, prelu=True)
    h = _conv_bn(g, w, h, f"{prefix}.conv_dw", stride=stride, depthwise=True, prelu=True)
    return _conv_bn(g, w, h, f"{prefix}.project", stride=1, depthwise=False, prelu=False)


def _se(g: _Graph, w: _Weights, x: _Tensor, prefix: str) -> _Tensor:
    """Squeeze-excitation: ``x * sigmoid(bn2(fc2(relu(bn1(fc1(avgpool(x)))))))``."""
    pooled = g.op("GlobalAveragePool", [x.name], f"{prefix}.pool")
    fc1 = w.get(f"{prefix}.fc1.weight", 4)
    fc2 = w.get(f"{prefix}.fc2.weight", 4)
    mid = fc1.shape[0]
    if fc1.shape != (mid, x.channels, 1, 1) or fc2.shape != (x.channels, mid, 1, 1):
        raise _invalid(f"{prefix!r} squeeze-excitation shapes do not match", key=prefix)
    s1, b1 = w.bn(f"{prefix}.bn1", mid)
    s2, b2 = w.bn(f"{prefix}.bn2", x.channels)
    if w.has(f"{prefix}.fc1.bias") or w.has(f"{prefix}.fc2.bias"):
        raise _invalid(f"{prefix!r} has an unexpected bias", key=prefix)
    h = g.op(
        "Conv",
        [pooled, g.const(f"{prefix}.fc1.w", fc1 * s1[:, None, None, None]),
         g.const(f"{prefix}.fc1.b", b1)],
        f"{prefix}.fc1",
        kernel_shape=[1, 1],
    )  # fmt: skip
    h = g.op("Relu", [h], f"{prefix}.relu")
    h = g.op(
        "Conv",
        [h, g.const(f"{prefix}.fc2.w", fc2 * s2[:, None, None, None]),
         g.const(f"{prefix}.fc2.b", b2)],
        f"{prefix}.fc2",
        kernel_shape=[1, 1],
    )  # fmt: skip
    gate = g.op("Sigmoid", [h], f"{prefix}.gate")
    return _Tensor(g.op("Mul", [x.name, gate], f"{prefix}.out"), x.channels, x.size)


def _stage(g: _Graph, w: _Weights, x: _Tensor, prefix: str) -> _Tensor:
    """Residual stage: ``x = x + block(x)`` for every ``prefix.model.<i>`` (SE where present)."""
    count = 0
    while w.has(f"{prefix}.model.{count}.conv.conv.weight"):
        count += 1
    if count == 0:
        raise _invalid(f"residual stage {prefix!r} has no blocks", key=prefix)
    for i in range(count):
        block = f"{prefix}.model.{i}"
        h = _block(g, w, x, block, 1)
        if h.channels != x.channels or h.size != x.size:
            raise _invalid(f"{block!r} output does not match its shortcut", key=block)
        if w.has(f"{block}.se_module.fc1.weight"):
            h = _se(g, w, h, f"{block}.se_module")
        x = _Tensor(g.op("Add", [x.name, h.name], f"{block}.add"), x.channels, x.size)
    return x


def _head(g: _Graph, w: _Weights, x: _Tensor) -> None:
    """conv_6_dw (must reduce the map to 1x1) → linear+BN1d → prob → softmax."""
    kernel = w.get("conv_6_dw.conv.weight", 4).shape[-1]
    if kernel != x.size:
        raise _invalid(
            f"conv_6_dw kernel {kernel} does not meet the {x.size}x{x.size} map: wrong strides",
            kernel=kernel,
            size=x.size,
        )
    x = _conv_bn(g, w, x, "conv_6_dw", stride=1, depthwise=True, prelu=False, pad=0)
    flat = g.op("Flatten", [x.name], "flatten", axis=1)
    linear = w.get("linear.weight", 2)
    if linear.shape[1] != x.channels:
        raise _invalid("linear layer does not match conv_6_dw", key="linear")
    scale, shift = w.bn("bn", linear.shape[0])
    emb = g.op(
        "Gemm",
        [flat, g.const("linear.w", linear * scale[:, None]), g.const("linear.b", shift)],
        "linear",
        transB=1,
    )
    prob = w.get("prob.weight", 2)
    if prob.shape != (NUM_CLASSES, linear.shape[0]):
        raise _invalid("prob layer does not have 3 classes", key="prob")
    bias = w.get("prob.bias", 1) if w.has("prob.bias") else np.zeros(NUM_CLASSES)
    logits = g.op(
        "Gemm", [emb, g.const("prob.w", prob), g.const("prob.b", bias)], "logits", transB=1
    )
    g.op("Softmax", [logits], OUTPUT_NAME, axis=1)


def build_onnx_model(
    state: dict[str, Array], *, graph_name: str = "minifasnet", source_sha256: str = ""
) -> Any:
    """The ONNX ``ModelProto`` for a MiniFASNet (V1, V1SE or V2) state dict.

    Raises :class:`ModelError` ``model.invalid`` when the state dict does not have the layout
    described in the module docstring or holds weights this architecture would not use.
    """
    w = _Weights(state)
    g = _Graph()
    x = _Tensor(INPUT_NAME, 3, INPUT_SIZE)
    for name, kind, stride in _STAGES:
        if kind in ("conv", "dw"):
            x = _conv_bn(g, w, x, name, stride=stride, depthwise=kind == "dw", prelu=True)
        elif kind == "block":
            x = _block(g, w, x, name, stride)
        else:
            x = _stage(g, w, x, name)
    _head(g, w, x)
    if unused := w.unused():
        raise _invalid(
            f"MiniFASNet state dict has {len(unused)} weights this architecture does not use",
            first=unused[0],
        )
    graph = helper.make_graph(
        g.nodes,
        graph_name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, 80, 80])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", NUM_CLASSES])],
        initializer=[g.inits[name] for name in sorted(g.inits)],
    )
    model = helper.make_model(
        graph,
        producer_name="shiren.models.minifasnet",  # in the pinned bytes: kept across the move
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="MiniFASNet (Apache-2.0, minivision-ai/Silent-Face-Anti-Spoofing), "
        "translated from its PyTorch state dict. Input BGR 0..255 NCHW; output softmax, "
        "class 1 = live.",
    )
    helper.set_model_props(model, {"source_sha256": source_sha256})
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_minifasnet(pth_path: Path, onnx_path: Path) -> str:
    """Translate the checkpoint at ``pth_path`` to ONNX at ``onnx_path``; returns its sha256.

    Byte-for-byte deterministic for a given checkpoint and ``onnx`` version.
    """
    pth_path = Path(pth_path)
    digest = hashlib.sha256(pth_path.read_bytes()).hexdigest()
    state = read_state_dict(pth_path)
    graph_name = pth_path.stem.split("_")[-1] if "_" in pth_path.stem else "minifasnet"
    model = build_onnx_model(state, graph_name=graph_name, source_sha256=digest)
    blob: bytes = model.SerializeToString(deterministic=True)
    onnx_path = Path(onnx_path)
    tmp = onnx_path.with_name(f"{onnx_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    return hashlib.sha256(blob).hexdigest()


__all__ = [
    "INPUT_NAME",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "OUTPUT_NAME",
    "build_onnx_model",
    "convert_minifasnet",
]

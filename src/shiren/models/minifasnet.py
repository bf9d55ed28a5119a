"""MiniFASNet passive anti-spoofing: a state-dict → ONNX converter and onnxruntime adapters.

Why: MiniFASNet (minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0) is a small single-frame
presentation-attack detector published only as PyTorch ``.pth`` state dicts.  shiren must not need
torch at run time, so the checkpoint is read without torch (:mod:`shiren.models.torch_legacy`,
which never executes the pickle) and translated once, deterministically, into an ONNX graph whose
sha256 is pinned in :mod:`shiren.models.registry` like every other model file.

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

Input convention (what :class:`MiniFasNet` feeds the graph), found empirically because upstream's
pre-processing is not part of the checkpoint.  Candidates: RGB or BGR channel order, pixel values
0..255 or 0..1.  Evidence (BlazeFace boxes, the crop below, live probability; AUC live-vs-attack
on the 908 official NUAA train rows; silent_face_samples live T1, T2 vs attack F1, F2)::

    model  convention   NUAA train AUC   silent samples (T1 T2 | F1 F2)
    V2     BGR 0..255   1.000            .987 .996 | .001 .004   separated
    V2     RGB 0..255   0.999            .986 1.00 | .974 .999   attacks called live
    V2     BGR 0..1     0.825 *          .005 .007 | .005 .005   all "attack"
    V2     RGB 0..1     0.844 *          .005 .006 | .005 .005   all "attack"
    V1SE   BGR 0..255   1.000            .966 .144 | .028 .426   T2 below F2
    V1SE   RGB 0..255   0.997            .999 .365 | .776 .999   attacks called live
    V1SE   BGR 0..1     0.879 *          .025 .025 | .025 .023   all "attack"

    * outputs nearly constant (std of the live probability < 0.002); on the NUAA test rows
      these conventions fall to AUC 0.29-0.44, i.e. no signal.

so the graph is fed **BGR, raw 0..255 float** (as upstream read frames with OpenCV and fed them
without scaling): it is the only convention under which V2 separates the samples and both
models reach AUC 1.000 on NUAA train and test (RGB: 0.977 / 0.863 on the test rows).  With /255
the first layer's BatchNorm, whose statistics were gathered on 0..255 data, sees a near-constant
input.  NUAA is saturated (every model at AUC 1.000), so the silent samples decide channel order.

Crop: the detector's box is enlarged ``scale`` times (2.7 for V2, 4.0 for V1SE, from the model
file name) around its centre; when the enlarged box would not fit inside the image the scale is
reduced until it does, then the box is shifted to lie inside the image, cut out with integer
pixel bounds and resized to 80x80 (bilinear).  The large context (background, the edges of a
phone or a print) is what the model looks at, so the scale matters as much as the weights.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from shiren.core.geometry import BBox, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo
from shiren.models.torch_legacy import read_state_dict

OPSET = 17
INPUT_NAME = "patch"
OUTPUT_NAME = "probs"
INPUT_SIZE = 80
BN_EPS = 1e-5
LIVE_CLASS = 1
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
        producer_name="shiren.models.minifasnet",
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


@dataclass(frozen=True, slots=True)
class CropBox:
    """Integer pixel bounds ``[x0, x1) × [y0, y1)`` of the patch cut from the image."""

    x0: int
    y0: int
    x1: int
    y1: int


def crop_box(box: BBox, scale: float, width: int, height: int) -> CropBox:
    """The face box grown ``scale`` times around its centre, fitted inside the image.

    The scale is first reduced so the grown box is no larger than the image (keeping the aspect
    ratio of the face box), then the box is shifted, never shrunk further, to lie inside.
    """
    if width < 1 or height < 1:
        raise ModelError("image is empty", code=ErrorCode.MODEL_INVALID)
    bw, bh = max(box.width, 1.0), max(box.height, 1.0)
    scale = min(scale, width / bw, height / bh)
    new_w, new_h = bw * scale, bh * scale
    cx, cy = box.center
    x0 = min(max(cx - new_w / 2.0, 0.0), width - new_w)
    y0 = min(max(cy - new_h / 2.0, 0.0), height - new_h)
    ix0 = min(max(round(x0), 0), width - 1)
    iy0 = min(max(round(y0), 0), height - 1)
    ix1 = min(max(round(x0 + new_w), ix0 + 1), width)
    iy1 = min(max(round(y0 + new_h), iy0 + 1), height)
    return CropBox(ix0, iy0, ix1, iy1)


def crop_patch(image: RGBImage, box: BBox, scale: float, size: int = INPUT_SIZE) -> RGBImage:
    """The ``(size, size, 3)`` uint8 RGB patch MiniFASNet sees for the face in ``box``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ModelError("expected an (H, W, 3) uint8 RGB image", code=ErrorCode.MODEL_INVALID)
    c = crop_box(box, scale, image.shape[1], image.shape[0])
    region = image[c.y0 : c.y1, c.x0 : c.x1]
    patch = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(patch, dtype=np.uint8)


class MiniFasNet:
    """One MiniFASNet model (``minifasnet-v2`` or ``minifasnet-v1se``) run by onnxruntime.

    ``entry.options``: ``scale`` (crop enlargement), ``channel_order`` (``"BGR"``) and
    ``input_range`` (``255`` = raw pixel values), see the module docstring for why.
    """

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        path = verified_path(entry)
        self.info: ModelInfo = entry.info()
        opts = entry.options
        self.scale = float(opts.get("scale", 2.7))
        self._bgr = str(opts.get("channel_order", "BGR")).upper() == "BGR"
        self._divisor = 255.0 / float(opts.get("input_range", 255.0))
        if self.scale <= 0 or self._divisor <= 0:
            raise ModelError(
                f"invalid MiniFASNet options for {entry.name!r}", code=ErrorCode.MODEL_INVALID
            )
        self._session = make_session(path, threads=threads)
        self._lock = threading.Lock()

    def patch(self, image: RGBImage, box: BBox) -> RGBImage:
        """The 80x80 RGB patch this model judges for ``box`` (for inspection and batching)."""
        return crop_patch(image, box, self.scale)

    def predict_patches(self, patches: np.ndarray[Any, np.dtype[np.uint8]]) -> FloatArray:
        """``(N, 80, 80, 3)`` uint8 RGB patches → ``(N, 3)`` class probabilities."""
        if patches.ndim != 4 or patches.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ModelError(
                f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}, 3) patches, got {patches.shape}",
                code=ErrorCode.MODEL_INVALID,
            )
        if len(patches) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        x = patches.astype(np.float32)
        if self._bgr:
            x = x[..., ::-1]
        if self._divisor != 1.0:
            x = x / np.float32(self._divisor)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        with self._lock:
            out = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return np.asarray(out[0], dtype=np.float32)

    def probabilities(self, image: RGBImage, box: BBox) -> FloatArray:
        """``(3,)`` softmax for the face in ``box``; index 1 = live, 0 and 2 = attacks."""
        probs: FloatArray = self.predict_patches(self.patch(image, box)[None])[0]
        return probs

    def live_score(self, image: RGBImage, box: BBox) -> float:
        return float(self.probabilities(image, box)[LIVE_CLASS])


class MiniFasNetEnsemble:
    """The mean of several MiniFASNet models' softmax outputs (upstream fuses V2 and V1SE so).

    Built from an entry whose ``options["members"]`` names the member models and
    ``options["model_dir"]`` says where their ONNX translations live, or from ready members.
    """

    def __init__(
        self,
        entry: ManifestEntry,
        *,
        threads: int = 1,
        members: list[MiniFasNet] | None = None,
    ) -> None:
        self.info: ModelInfo = entry.info()
        if members is None:
            from shiren.models.registry import get_entry

            model_dir = Path(str(entry.options["model_dir"]))
            names = [str(n) for n in entry.options.get("members", [])]
            members = [
                MiniFasNet(get_entry(n, model_dir=model_dir), threads=threads) for n in names
            ]
        if not members:
            raise ModelError("a MiniFASNet ensemble needs members", code=ErrorCode.MODEL_INVALID)
        self.members = members

    def probabilities(self, image: RGBImage, box: BBox) -> FloatArray:
        """``(3,)`` mean softmax of the members; index 1 = live."""
        stacked = np.stack([m.probabilities(image, box) for m in self.members])
        return np.asarray(stacked.mean(axis=0), dtype=np.float32)

    def live_score(self, image: RGBImage, box: BBox) -> float:
        return float(self.probabilities(image, box)[LIVE_CLASS])


__all__ = [
    "INPUT_NAME",
    "LIVE_CLASS",
    "OUTPUT_NAME",
    "CropBox",
    "MiniFasNet",
    "MiniFasNetEnsemble",
    "build_onnx_model",
    "convert_minifasnet",
    "crop_box",
    "crop_patch",
]

"""MiniFASNet passive anti-spoofing: the onnxruntime adapters, their input convention and crop.

Why: MiniFASNet (minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0) is a small single-frame
presentation-attack detector published only as PyTorch ``.pth`` state dicts.  shiren must not need
torch at run time, so the checkpoint is translated once, deterministically, into an ONNX graph
(:mod:`shiren.models.minifasnet_convert`, which documents the architecture and the graph) whose
sha256 is pinned in :mod:`shiren.models.registry` like every other model file.  This module runs
that graph.

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

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.core.geometry import BBox, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.minifasnet_convert import (
    INPUT_NAME,
    INPUT_SIZE,
    NUM_CLASSES,
    OUTPUT_NAME,
    build_onnx_model,
    convert_minifasnet,
)
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo

LIVE_CLASS = 1


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
        # its 33 PReLUs spelled out: the same probabilities, ~13-20 % less time (onnx_graph)
        self._session = make_session(path, threads=threads, prelu_as_minmax=True)
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

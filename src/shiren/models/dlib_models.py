"""dlib's CC0 models: the 5-point shape predictor (alignment) and the ResNet descriptor.

The 68-point predictor is deliberately not used: its iBUG 300-W training data forbids commercial
use.  :class:`DlibEmbedder` runs dlib's own (slow, ~80 ms) forward pass; production uses the ONNX
translation in :mod:`shiren.models.onnx_embedder`, proven equal to this one by the test suite.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.core.align import warp_chip
from shiren.core.geometry import BBox, FloatArray, RGBImage
from shiren.core.similarity import Metric
from shiren.errors import ErrorCode, FaceError, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.protocols import AlignedFace, ModelInfo

# A BlazeFace box and dlib's HOG box (what the 5-point predictor was trained on) differ: measured on
# 287 LFW images, the HOG box is 0.96 × the BlazeFace box, its centre 0.035 × width to the left and
# 0.021 × height higher.
_HOG_SCALE = 0.96
_HOG_DX = -0.035
_HOG_DY = -0.021
CHIP_SIZE_PX = 150
CHIP_PADDING = 0.25


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "dlib is not installed (package dlib-bin)", code=ErrorCode.MODEL_UNAVAILABLE
        ) from exc
    return dlib


def hog_like_box(box: BBox) -> BBox:
    """Map a BlazeFace box onto the box convention the dlib 5-point model was trained with."""
    cx, cy = box.center
    cx += _HOG_DX * box.width
    cy += _HOG_DY * box.height
    half_w, half_h = box.width * _HOG_SCALE / 2, box.height * _HOG_SCALE / 2
    return BBox(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


class DlibAligner:
    """dlib's 5-point regressor (eye corners, nose base) → the 150×150 chip with 25 % padding."""

    def __init__(self, entry: ManifestEntry, *, chip_size: int = CHIP_SIZE_PX) -> None:
        dlib = _import_dlib()
        self.info: ModelInfo = entry.info()
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(verified_path(entry)))
        self._chip_size = chip_size
        self._lock = threading.Lock()

    def align(self, image: RGBImage, box: BBox) -> AlignedFace:
        shape = self.shape(image, box)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        return self.align_points(image, points)

    def align_points(self, image: RGBImage, points: FloatArray) -> AlignedFace:
        """The chip for 5 given points in dlib's order (see :mod:`shiren.core.align`), e.g.
        taken from a face mesh; sub-pixel positions are kept."""
        if points.shape != (5, 2) or not np.all(np.isfinite(points)):
            raise FaceError("alignment points are not usable", code=ErrorCode.FACE_UNUSABLE)
        try:
            chip = warp_chip(image, points, self._chip_size, CHIP_PADDING)
        except ValueError:
            raise FaceError("alignment points coincide", code=ErrorCode.FACE_UNUSABLE) from None
        return AlignedFace(chip=chip, points=points.astype(np.float32))

    def shape(self, image: RGBImage, box: BBox) -> Any:
        """dlib's ``full_object_detection`` for ``box`` (a BlazeFace-convention box)."""
        hog = hog_like_box(box)
        rect = self._dlib.rectangle(
            round(hog.x0), round(hog.y0), round(hog.x1) - 1, round(hog.y1) - 1
        )
        with self._lock:
            return self._predictor(image, rect)


class DlibEmbedder:
    """dlib's own ResNet forward pass: 150×150 chips → 128-d descriptors (Euclidean metric)."""

    dim = 128
    chip_size = CHIP_SIZE_PX
    metric: Metric = "euclidean"

    def __init__(self, entry: ManifestEntry) -> None:
        dlib = _import_dlib()
        self.info: ModelInfo = entry.info()
        self._net = dlib.face_recognition_model_v1(str(verified_path(entry)))
        self._lock = threading.Lock()

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            rows = [
                np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(c)))
                for c in chips
            ]
        return np.stack(rows).astype(np.float32)

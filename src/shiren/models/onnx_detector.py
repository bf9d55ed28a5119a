"""A model-agnostic ONNX face detector: any model file a user names, with a manifest entry.

Detectors differ in how their raw outputs are decoded (anchors, strides, NMS), so shiren asks for
the common "end-to-end" export: the graph takes one letterboxed image and returns decoded
detections ``(K, 5 + 2·P)`` — ``x0, y0, x1, y1, score`` followed by P keypoints ``(x, y)`` — in
pixels of the model's input (YOLO-face, SCRFD and YuNet all export this way with their
post-processing inside).  The manifest entry's ``options``::

    {"layout": "NCHW" | "NHWC",          # default NCHW
     "channel_order": "RGB" | "BGR",     # default RGB
     "mean": [m, m, m], "std": [s, s, s],  # on 0..255 pixels; default 0 / 1
     "keypoints": P}                      # default 0

``input_size`` is the model's (width, height).  The adapter letterboxes the image into it (aspect
kept, grey padding), runs the graph, maps every box back to image pixels, and drops detections
below ``min_score``.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo

_PAD_VALUE = 114


class OnnxDetector:
    """Boxes (and optional keypoints) from an end-to-end ONNX detector."""

    def __init__(self, entry: ManifestEntry, *, min_score: float = 0.5, threads: int = 1) -> None:
        path = verified_path(entry)
        self.info: ModelInfo = entry.info()
        self._session = make_session(path, threads=threads)
        opts = entry.options
        self._nchw = str(opts.get("layout", "NCHW")).upper() == "NCHW"
        self._bgr = str(opts.get("channel_order", "RGB")).upper() == "BGR"
        self._mean = np.asarray(opts.get("mean", [0.0, 0.0, 0.0]), dtype=np.float32)
        self._std = np.asarray(opts.get("std", [1.0, 1.0, 1.0]), dtype=np.float32)
        self._keypoints = int(opts.get("keypoints", 0))
        self._size = entry.input_size
        self._input = self._session.get_inputs()[0].name
        self._min_score = min_score
        self._lock = threading.Lock()
        if self._size[0] <= 0 or self._size[1] <= 0 or np.any(self._std == 0):
            raise ModelError(
                f"detector {entry.name!r} needs a positive input_size and non-zero std",
                code=ErrorCode.MODEL_INVALID,
            )

    def detect(self, image: RGBImage) -> list[Detection]:
        tensor, scale, (pad_x, pad_y) = self._letterbox(image)
        with self._lock:
            raw = np.asarray(self._session.run(None, {self._input: tensor})[0], dtype=np.float32)
        rows = raw.reshape(-1, raw.shape[-1]) if raw.size else np.zeros((0, 5), np.float32)
        if rows.shape[1] < 5 + 2 * self._keypoints:
            raise ModelError(
                f"detector {self.info.name!r} returned {rows.shape[1]} columns per detection",
                code=ErrorCode.MODEL_INVALID,
            )
        found = [self._to_detection(row, scale, pad_x, pad_y) for row in rows]
        kept = [d for d in found if d.score >= self._min_score and d.box.area > 0]
        return sorted(kept, key=lambda d: d.score, reverse=True)

    def _letterbox(self, image: RGBImage) -> tuple[FloatArray, float, tuple[float, float]]:
        width, height = self._size
        scale = min(width / image.shape[1], height / image.shape[0])
        new_w = max(1, round(image.shape[1] * scale))
        new_h = max(1, round(image.shape[0] * scale))
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((height, width, 3), _PAD_VALUE, dtype=np.uint8)
        pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        x = canvas.astype(np.float32)
        if self._bgr:
            x = x[..., ::-1]
        x = (x - self._mean) / self._std
        x = x.transpose(2, 0, 1)[None] if self._nchw else x[None]
        return np.ascontiguousarray(x, dtype=np.float32), scale, (float(pad_x), float(pad_y))

    def _to_detection(self, row: Any, scale: float, pad_x: float, pad_y: float) -> Detection:
        def back(x: float, y: float) -> tuple[float, float]:
            return ((float(x) - pad_x) / scale, (float(y) - pad_y) / scale)

        x0, y0 = back(row[0], row[1])
        x1, y1 = back(row[2], row[3])
        points = [back(row[5 + 2 * i], row[6 + 2 * i]) for i in range(self._keypoints)]
        keypoints = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        return Detection(box=BBox(x0, y0, x1, y1), score=float(row[4]), keypoints=keypoints)

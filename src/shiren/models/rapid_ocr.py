"""PP-OCRv4 text detection, direction and recognition (Apache-2.0), run directly with onnxruntime.

The three ONNX files ship inside the PyPI wheel ``rapidocr-onnxruntime==1.4.4``
(``rapidocr_onnxruntime/models/``): the DB text detector ``ch_PP-OCRv4_det_infer.onnx``, the
0°/180° direction classifier ``ch_ppocr_mobile_v2.0_cls_infer.onnx`` and the CRNN/SVTR recogniser
``ch_PP-OCRv4_rec_infer.onnx``, whose character dictionary (6,623 characters) is stored in the
graph's own metadata (``character``).  Later ``rapidocr`` releases download their models at run
time, so shiren pins this one and reads its files the way the manifest reads every model: by
path inside the installed package, sha256-checked before loading.  The package's own Python code
is never imported: the pre- and post-processing below follow PaddleOCR's (and RapidOCR 1.4.4's)
defaults, written out so that nothing here needs pyclipper, shapely or a non-headless OpenCV.

Pipeline for one image (PaddleOCR's ``TextSystem``):

1. **detect**: DB probability map at a size that is a multiple of 32; pixels above 0.3 form
   regions; each region's minimum-area rectangle, kept when its mean probability is ≥ 0.5, is
   grown by ``area × 1.6 / perimeter`` on every side (DB's "unclip": the map covers only the
   shrunk text kernel);
2. **crop**: each box is warped upright (a box taller than 1.5× its width is turned 90°);
3. **direction**: the classifier's 0°/180° call, as one vote for the whole image (its six widest
   lines, weighted by length; all crops turned around or none) or per line above 0.9
   (PaddleOCR's default);
4. **recognise**: each crop at height 48 and its own width (see
   :meth:`PpOcrRecogniser.recognise`); greedy CTC decoding; the line's confidence is the mean
   probability of its characters.

Every model takes BGR pixels scaled to ``[-1, 1]`` — the convention PaddleOCR trained them on.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, builtin_manifest, verified_path
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo, TextLine

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

# DB post-processing, PaddleOCR's defaults for PP-OCRv4 (Liao et al., "Real-time Scene Text
# Detection with Differentiable Binarization", AAAI 2020).
_BINARY_THRESHOLD = 0.3
_BOX_THRESHOLD = 0.5
_UNCLIP_RATIO = 1.6
_MIN_BOX_SIDE_PX = 3
_MAX_CANDIDATES = 1000
_DET_STRIDE = 32
# Direction classifier: 48 × 192 input; a flip needs a confident "180".
_CLS_SHAPE = (48, 192)
_CLS_FLIP_PROBABILITY = 0.9
# Recogniser: height 48; the network's output has one step per 8 input columns.
_REC_HEIGHT = 48
_REC_STRIDE = 8
_BATCH = 6
"""Direction-classifier batch size (PaddleOCR's)."""
_TALL_RATIO = 1.5
"""A crop at least this much taller than wide is vertical text: turn it to read it."""


def _to_input(bgr: U8) -> F32:
    """``(H, W, 3)`` uint8 BGR → ``(3, H, W)`` float32 in ``[-1, 1]``."""
    return np.ascontiguousarray((bgr.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1))


def _resize(image: U8, width: int, height: int) -> U8:
    return np.asarray(cv2.resize(image, (width, height)), dtype=np.uint8)


def _order_clockwise(points: F32) -> F32:
    """Four points as top-left, top-right, bottom-right, bottom-left (image axes, y down)."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.asarray([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _reading_order(boxes: list[F32]) -> list[F32]:
    """Top to bottom, then left to right among boxes whose tops are within 10 px (PaddleOCR)."""
    ordered = sorted(boxes, key=lambda b: (float(b[0][1]), float(b[0][0])))
    for i in range(len(ordered) - 1):
        for j in range(i, -1, -1):
            same_row = abs(ordered[j + 1][0][1] - ordered[j][0][1]) < 10
            if not (same_row and ordered[j + 1][0][0] < ordered[j][0][0]):
                break
            ordered[j], ordered[j + 1] = ordered[j + 1], ordered[j]
    return ordered


def _crop_line(bgr: U8, box: F32) -> tuple[U8, bool]:
    """The quadrilateral ``box`` warped to an upright rectangle, and whether it was vertical text
    (then turned 90° counter-clockwise, so that it reads from the box's top-right corner)."""
    width = max(1, int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))))
    height = max(1, int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))))
    target = np.asarray([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box, target)
    crop = cv2.warpPerspective(
        bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    tall = height / width >= _TALL_RATIO
    if tall:
        crop = np.ascontiguousarray(np.rot90(crop))
    return np.asarray(crop, dtype=np.uint8), tall


class _Session:
    """One onnxruntime session behind a lock (a session's ``run`` is not documented as safe to
    call from several threads with shared buffers; shiren scales by processes anyway)."""

    def __init__(self, entry: ManifestEntry, threads: int) -> None:
        self.entry = entry
        self.session = make_session(verified_path(entry), threads=threads)
        self.input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def run(self, batch: F32) -> F32:
        with self._lock:
            return np.asarray(self.session.run(None, {self.input: batch})[0], dtype=np.float32)


class PpOcrClassifier:
    """The 0°/180° text-direction classifier (PaddleOCR mobile v2.0)."""

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        self.info: ModelInfo = entry.info()
        self._model = _Session(entry, threads)

    def flipped(self, crops: list[U8]) -> list[float]:
        """For each BGR line crop, the probability that it is upside down."""
        height, width = _CLS_SHAPE
        out = [0.0] * len(crops)
        order = np.argsort([c.shape[1] / c.shape[0] for c in crops], kind="stable")
        for start in range(0, len(crops), _BATCH):
            chunk = [int(i) for i in order[start : start + _BATCH]]
            batch = np.zeros((len(chunk), 3, height, width), dtype=np.float32)
            for row, index in enumerate(chunk):
                crop = crops[index]
                new_w = min(width, math.ceil(height * crop.shape[1] / crop.shape[0]))
                batch[row, :, :, :new_w] = _to_input(_resize(crop, new_w, height))
            probs = self._model.run(batch)
            for row, index in enumerate(chunk):
                out[index] = float(probs[row, 1])
        return out


class PpOcrRecogniser:
    """The PP-OCRv4 line recogniser: an upright line crop → text and confidence (greedy CTC)."""

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        self.info: ModelInfo = entry.info()
        self._model = _Session(entry, threads)
        meta = self._model.session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise ModelError(
                f"recogniser {entry.name!r} carries no character dictionary",
                code=ErrorCode.MODEL_INVALID,
                detail={"model": entry.name},
            )
        # Index 0 is the CTC blank; PaddleOCR appends a space as the last class.
        self._chars = ["", *meta["character"].splitlines(), " "]

    def recognise(self, crops: list[U8]) -> list[tuple[str, float, tuple[float, ...]]]:
        """For each upright BGR line crop: its text, the mean probability of its characters
        (0..1), and where each character is centred, as a fraction of the crop's width.

        One crop per run, at its own width: on one core the cost grows with the input's width
        (18 ms at 320 px, 52 ms at 640 px), so padding short lines to a batch's widest line or to
        PaddleOCR's 320 px minimum only adds work (measured: 7 card lines 381 ms batched, 190 ms
        one by one).
        """
        out = []
        for crop in crops:
            ratio = crop.shape[1] / crop.shape[0]
            used = max(1, math.ceil(_REC_HEIGHT * ratio))
            width = max(_REC_HEIGHT, math.ceil(used / _REC_STRIDE) * _REC_STRIDE)
            batch = np.zeros((1, 3, _REC_HEIGHT, width), dtype=np.float32)
            batch[0, :, :, : min(used, width)] = _to_input(
                _resize(crop, min(used, width), _REC_HEIGHT)
            )
            out.append(self._decode(self._model.run(batch)[0], width / min(used, width)))
        return out

    def _decode(self, probs: F32, stretch: float) -> tuple[str, float, tuple[float, ...]]:
        """Greedy CTC: the best class per step, repeats merged, blanks dropped.  A character's
        position is the middle of its run of steps (``stretch`` = input width / used width)."""
        best = probs.argmax(axis=1)
        steps = len(best)
        chars: list[str] = []
        scores: list[float] = []
        positions: list[float] = []
        start = 0
        for t in range(1, steps + 1):
            if t < steps and best[t] == best[start]:
                continue
            index = int(best[start])
            if index != 0 and index < len(self._chars):
                chars.append(self._chars[index])
                scores.append(float(probs[start:t, index].max()))
                positions.append(min(1.0, (start + t) / 2 / steps * stretch))
            start = t
        if not chars:
            return "", 0.0, ()
        return "".join(chars), float(np.mean(scores)), tuple(positions)


class PpOcrV4:
    """The whole OCR system: detect lines, fix their direction, read them (a
    :class:`~shiren.models.protocols.TextRecognizer`).

    ``det_min_side_px`` / ``det_max_side_px`` bound the detector's input: a small image is scaled
    up until its short side reaches the minimum (tiny text is lost otherwise), a large one down
    until its long side fits the maximum (cost grows with the pixel count).  ``min_confidence``
    drops lines read with a lower mean character probability (RapidOCR's ``text_score``).
    ``per_line_direction`` turns each line the classifier is sure is upside down (PaddleOCR's
    way, for scenes with text every which way); by default one direction is voted for the whole
    image (documents).
    """

    def __init__(
        self,
        entry: ManifestEntry,
        *,
        threads: int = 1,
        det_min_side_px: int = 512,
        det_max_side_px: int = 1280,
        min_confidence: float = 0.5,
        per_line_direction: bool = False,
    ) -> None:
        parts = builtin_manifest()
        cls_entry = parts[str(entry.options.get("classifier", "ppocr-v4-cls"))]
        rec_entry = parts[str(entry.options.get("recogniser", "ppocr-v4-rec"))]
        self._detector = _Session(entry, threads)
        self._classifier = PpOcrClassifier(cls_entry, threads=threads)
        self._recogniser = PpOcrRecogniser(rec_entry, threads=threads)
        extra = {"classifier_sha256": cls_entry.sha256, "recogniser_sha256": rec_entry.sha256}
        base = entry.info()
        self.info: ModelInfo = ModelInfo(
            base.name, base.version, base.sha256, base.licence, base.source, base.input_size, extra
        )
        self._sides = (det_min_side_px, det_max_side_px)
        self._min_confidence = min_confidence
        self._per_line = per_line_direction

    def read(self, image: RGBImage) -> list[TextLine]:
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        boxes = self.detect(image)
        if not boxes:
            return []
        crops, starts = [], []
        for box in boxes:
            crop, tall = _crop_line(bgr, box)
            crops.append(crop)
            starts.append(1 if tall else 0)
        for i in self._to_flip(crops):
            crops[i] = np.ascontiguousarray(crops[i][::-1, ::-1])
            starts[i] += 2
        lines = []
        read = self._recogniser.recognise(crops)
        for box, start, (text, score, where) in zip(boxes, starts, read, strict=True):
            if text.strip() and score >= self._min_confidence:
                # Corners from the text's own top-left, so box[0] → box[1] is how it reads.
                turned = [(float(x), float(y)) for x, y in (*box[start:], *box[:start])]
                lines.append(TextLine(tuple(turned), text, score, where))
        return lines

    def _to_flip(self, crops: list[U8]) -> list[int]:
        """The crops to turn around: each one the classifier is sure of (PaddleOCR), or — one
        direction for the whole image — all of them when most text (by crop width) is upside
        down, none otherwise (the :data:`_BATCH` widest lines vote).  On a document every line
        shares one direction, and the vote keeps a short line (``9号``, which upside down looks
        like ``6``) from being turned alone."""
        if self._per_line:
            flipped = self._classifier.flipped(crops)
            return [i for i, p in enumerate(flipped) if p > _CLS_FLIP_PROBABILITY]
        widths = np.asarray([c.shape[1] / c.shape[0] for c in crops])
        # The widest lines carry the vote (one classifier batch): short ones add little to it.
        voters = np.argsort(-widths, kind="stable")[:_BATCH]
        flipped = self._classifier.flipped([crops[i] for i in voters])
        upside_down = float(np.dot(widths[voters], flipped)) > 0.5 * float(widths[voters].sum())
        return list(range(len(crops))) if upside_down else []

    def detect(self, image: RGBImage) -> list[F32]:
        """Text boxes ``(4, 2)`` float32 (clockwise from top-left) in pixels of ``image``, in
        reading order."""
        height, width = image.shape[:2]
        resized = self._resize(np.ascontiguousarray(image[:, :, ::-1]))
        prob = self._detector.run(_to_input(resized)[None])[0, 0]
        boxes = _db_boxes(prob, width / prob.shape[1], height / prob.shape[0])
        clipped = [np.clip(b, 0, [width - 1, height - 1]).astype(np.float32) for b in boxes]
        return _reading_order([b for b in clipped if _sides(b) > (3, 3)])

    def _resize(self, bgr: U8) -> U8:
        height, width = bgr.shape[:2]
        low, high = self._sides
        ratio = max(1.0, low / min(height, width))
        ratio = min(ratio, high / max(height, width))
        new_h = max(_DET_STRIDE, round(height * ratio / _DET_STRIDE) * _DET_STRIDE)
        new_w = max(_DET_STRIDE, round(width * ratio / _DET_STRIDE) * _DET_STRIDE)
        return np.asarray(cv2.resize(bgr, (new_w, new_h)), dtype=np.uint8)


def _sides(box: F32) -> tuple[float, float]:
    return (float(np.linalg.norm(box[0] - box[1])), float(np.linalg.norm(box[0] - box[3])))


def _db_boxes(prob: F32, scale_x: float, scale_y: float) -> list[F32]:
    """DB post-processing of one probability map into boxes in image pixels."""
    mask = cv2.dilate((prob > _BINARY_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:_MAX_CANDIDATES]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < _MIN_BOX_SIDE_PX:
            continue
        points = _order_clockwise(np.asarray(cv2.boxPoints(rect), dtype=np.float32))
        if _mean_inside(prob, points) < _BOX_THRESHOLD:
            continue
        grown = _unclip(rect)
        if min(grown[1]) < _MIN_BOX_SIDE_PX + 2:
            continue
        box = _order_clockwise(np.asarray(cv2.boxPoints(grown), dtype=np.float32))
        boxes.append(np.round(box * np.asarray([scale_x, scale_y], dtype=np.float32)))
    return boxes


def _unclip(rect: Any) -> Any:
    """DB's unclip of a rectangle: an offset of ``area × ratio / perimeter`` on every side.  (The
    round-joined offset polygon PaddleOCR builds with pyclipper has the same minimum-area
    rectangle as this, which is all that is kept of it.)"""
    (cx, cy), (w, h), angle = rect
    distance = w * h * _UNCLIP_RATIO / (2 * (w + h))
    return ((cx, cy), (w + 2 * distance, h + 2 * distance), angle)


def _mean_inside(prob: F32, points: F32) -> float:
    """Mean probability inside the polygon ``points`` (PaddleOCR's "fast" box score)."""
    height, width = prob.shape
    x0, y0 = np.clip(np.floor(points.min(axis=0)).astype(int), 0, [width - 1, height - 1])
    x1, y1 = np.clip(np.ceil(points.max(axis=0)).astype(int), 0, [width - 1, height - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(points - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


__all__ = ["PpOcrClassifier", "PpOcrRecogniser", "PpOcrV4"]

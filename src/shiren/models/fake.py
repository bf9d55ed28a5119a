"""Deterministic fakes of every model Protocol, for unit tests and docs.

They are honest fakes: simple, deterministic functions of the pixels (not canned answers), so a
test that uses them still fails when the pipeline around them is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.core.similarity import Metric
from shiren.models.protocols import AlignedFace, ModelInfo


def fake_info(name: str, size: tuple[int, int] = (0, 0)) -> ModelInfo:
    return ModelInfo(
        name=name,
        version="fake",
        sha256="0" * 64,
        licence="CC0-1.0",
        source="shiren.models.fake",
        input_size=size,
    )


class FakeDetector:
    """Returns the given boxes (in relative 0..1 coordinates), or one centred box by default."""

    def __init__(
        self, boxes: Sequence[tuple[float, float, float, float]] | None = None, score: float = 0.9
    ):
        self.info = fake_info("fake-detector")
        self._boxes = list(boxes) if boxes is not None else [(0.3, 0.25, 0.7, 0.75)]
        self._score = score

    def detect(self, image: RGBImage) -> list[Detection]:
        h, w = image.shape[:2]
        found = []
        for x0, y0, x1, y1 in self._boxes:
            box = BBox(x0 * w, y0 * h, x1 * w, y1 * h)
            cx, cy = box.center
            keypoints = np.array(
                [
                    [cx - box.width * 0.2, cy - box.height * 0.1],
                    [cx + box.width * 0.2, cy - box.height * 0.1],
                    [cx, cy + box.height * 0.05],
                    [cx, cy + box.height * 0.25],
                ],
                dtype=np.float32,
            )
            found.append(Detection(box=box, score=self._score, keypoints=keypoints))
        return found


class FakeLandmarker:
    """A 478-point 'mesh' spread over the box on a regular grid (or None when told to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.info = fake_info("fake-mesh")
        self._fail = fail

    def landmarks(self, image: RGBImage, box: BBox) -> FloatArray | None:
        if self._fail:
            return None
        t = np.linspace(0.15, 0.85, 478, dtype=np.float32)
        xs = box.x0 + box.width * ((t * 37.0) % 0.7 + 0.15)
        ys = box.y0 + box.height * t
        return np.stack([xs, ys, np.zeros_like(xs)], axis=1).astype(np.float32)


class FakeAligner:
    """Crops the box (or the points' bounding square) and resizes it to the chip size."""

    def __init__(self, chip_size: int = 32) -> None:
        self.info = fake_info("fake-aligner")
        self._size = chip_size

    def align(self, image: RGBImage, box: BBox) -> AlignedFace:
        return self._crop(image, box, np.zeros((0, 2), dtype=np.float32))

    def align_points(self, image: RGBImage, points: FloatArray) -> AlignedFace:
        lo, hi = points.min(axis=0), points.max(axis=0)
        box = BBox(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])).square().scaled(2.0)
        return self._crop(image, box, points)

    def _crop(self, image: RGBImage, box: BBox, points: FloatArray) -> AlignedFace:
        h, w = image.shape[:2]
        b = box.clipped(w, h)
        x0, y0, x1, y1 = (
            int(b.x0),
            int(b.y0),
            max(int(b.x1), int(b.x0) + 1),
            max(int(b.y1), int(b.y0) + 1),
        )
        crop = image[y0:y1, x0:x1]
        if crop.size == 0:
            crop = np.zeros((1, 1, 3), dtype=np.uint8)
        chip = cv2.resize(crop, (self._size, self._size), interpolation=cv2.INTER_AREA)
        return AlignedFace(chip=np.ascontiguousarray(chip, dtype=np.uint8), points=points)


class FakeEmbedder:
    """Template = the chip's 8×8 grey thumbnail, mean-removed (cosine metric)."""

    dim = 64
    metric: Metric = "cosine"

    def __init__(self, chip_size: int = 32) -> None:
        self.info = fake_info("fake-embedder", (chip_size, chip_size))
        self.chip_size = chip_size

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        out = np.zeros((len(chips), self.dim), dtype=np.float32)
        for i, chip in enumerate(chips):
            grey = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY).astype(np.float32)
            small = cv2.resize(grey, (8, 8), interpolation=cv2.INTER_AREA).ravel()
            out[i] = small - small.mean()
        return out

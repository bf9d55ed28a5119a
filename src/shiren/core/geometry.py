"""Geometry value objects: boxes and landmark sets, all in pixel coordinates of the decoded image.

Convention: ``x`` grows to the right, ``y`` grows down, the origin is the top-left corner of the
top-left pixel.  Arrays of points are ``float32`` of shape ``(N, 2)`` (x, y) or ``(N, 3)``
(x, y, z, where z has the scale of x and grows away from the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
RGBImage = npt.NDArray[np.uint8]
"""An ``(H, W, 3)`` ``uint8`` array in RGB order."""


@dataclass(frozen=True, slots=True)
class BBox:
    """An axis-aligned box ``[x0, x1) × [y0, y1)`` in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def scaled(self, factor: float) -> BBox:
        """The box grown (or shrunk) by ``factor`` around its centre."""
        cx, cy = self.center
        hw, hh = self.width * factor / 2.0, self.height * factor / 2.0
        return BBox(cx - hw, cy - hh, cx + hw, cy + hh)

    def square(self) -> BBox:
        """The smallest square with the same centre that holds this box."""
        side = max(self.width, self.height)
        cx, cy = self.center
        return BBox(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)

    def clipped(self, width: int, height: int) -> BBox:
        """The part of the box inside an image of ``width × height`` pixels."""
        return BBox(
            min(max(self.x0, 0.0), float(width)),
            min(max(self.y0, 0.0), float(height)),
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
        )

    def iou(self, other: BBox) -> float:
        """Intersection over union, in [0, 1]."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_list(self) -> list[float]:
        return [round(self.x0, 2), round(self.y0, 2), round(self.x1, 2), round(self.y1, 2)]


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected face: its box, the detector's confidence in [0, 1] and its keypoints.

    ``keypoints`` is ``(K, 2)`` float32 in pixels; for BlazeFace K = 6 in the order right eye,
    left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the *subject's* right
    and left).  It may be empty for detectors without keypoints.
    """

    box: BBox
    score: float
    keypoints: FloatArray

"""Face regions from the MediaPipe 478-point mesh, as pixel masks on a normalised face crop.

Pure numpy/OpenCV.  Polygons are lists of mesh indices in drawing order; "right" and "left" are the
*subject's* sides (their right eye is on the image's left in an unmirrored photo).  Left-side lists
are the mirror images of the right-side ones (index pairs checked by flipping a frontal face).

The crop (:func:`face_crop`) is resampled so that the detector's face box is
:data:`CROP_FACE_WIDTH_PX` wide, which makes every region statistic independent of the photo's
resolution (a 250 px LFW crop and a 12 MP selfie are judged at the same scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox, FloatArray, RGBImage

BoolArray = npt.NDArray[np.bool_]

CROP_FACE_WIDTH_PX = 96
"""Width of the detector's face box inside the normalised crop."""
CROP_CONTEXT = 2.2
"""The crop spans the (square) face box grown by this factor: room for the background ring."""

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109)  # fmt: skip
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
# Eye socket, brow to upper cheek: where sunglasses' lenses or hair over the eyes would be.
RIGHT_ORBIT = (156, 46, 53, 52, 65, 55, 193, 245, 128, 121, 120, 119, 118, 117, 111, 143)
LEFT_ORBIT = (383, 276, 283, 282, 295, 285, 417, 465, 357, 350, 349, 348, 347, 346, 340, 372)
# Upper cheeks under the eyes and the glabella/lower forehead: candidate patches of bare skin.
RIGHT_CHEEK = (117, 118, 119, 120, 100, 101, 50, 123)
LEFT_CHEEK = (346, 347, 348, 349, 329, 330, 280, 352)
FOREHEAD = (108, 151, 337, 336, 9, 107)
# A strip of forehead just above each eyebrow: a hat brim or hair hiding the brow line covers it.
RIGHT_BROW_BAND = (70, 63, 105, 66, 107, 9, 151, 108, 69, 104, 68, 71)
LEFT_BROW_BAND = (300, 293, 334, 296, 336, 9, 151, 337, 299, 333, 298, 301)
# Below the nose down to the chin and jaw: what a face mask covers.
LOWER_FACE = (58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 427, 425,
              423, 327, 2, 98, 203, 205, 207)  # fmt: skip
RIGHT_IRIS_CENTRE = 468
LEFT_IRIS_CENTRE = 473

REGIONS: dict[str, tuple[int, ...]] = {
    "face_oval": FACE_OVAL,
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "right_brow": RIGHT_BROW,
    "left_brow": LEFT_BROW,
    "lips": LIPS,
    "right_orbit": RIGHT_ORBIT,
    "left_orbit": LEFT_ORBIT,
    "right_cheek": RIGHT_CHEEK,
    "left_cheek": LEFT_CHEEK,
    "forehead": FOREHEAD,
    "right_brow_band": RIGHT_BROW_BAND,
    "left_brow_band": LEFT_BROW_BAND,
    "lower_face": LOWER_FACE,
}


@dataclass(frozen=True, slots=True)
class FaceCrop:
    """A face crop resampled to a fixed face width.

    ``pixels`` is RGB uint8; ``mesh`` is ``(N, 2)`` in crop pixels (or ``None``); ``box`` is the
    detector's box in crop pixels; ``scale`` is crop px per image px.
    """

    pixels: RGBImage
    mesh: FloatArray | None
    box: BBox
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))


def face_crop(image: RGBImage, box: BBox, mesh: FloatArray | None) -> FaceCrop:
    """Crop the square face box grown by :data:`CROP_CONTEXT` (clipped to the image) and resample
    it so the box is :data:`CROP_FACE_WIDTH_PX` wide."""
    height, width = image.shape[:2]
    region = box.square().scaled(CROP_CONTEXT).clipped(width, height)
    x0, y0 = int(region.x0), int(region.y0)
    x1, y1 = max(x0 + 1, int(np.ceil(region.x1))), max(y0 + 1, int(np.ceil(region.y1)))
    scale = CROP_FACE_WIDTH_PX / max(box.width, 1.0)
    out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    # Area averaging only where it matters (strong shrinking): region statistics are medians and
    # fractions, and INTER_AREA at non-integer ratios costs ~0.5 ms more per image.
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    pixels = cv2.resize(image[y0:y1, x0:x1], (out_w, out_h), interpolation=interp)

    def to_crop(x: float, y: float) -> tuple[float, float]:
        return ((x - x0) * scale, (y - y0) * scale)

    crop_box = BBox(*to_crop(box.x0, box.y0), *to_crop(box.x1, box.y1))
    crop_mesh = None
    if mesh is not None:
        crop_mesh = ((mesh[:, :2] - np.array([x0, y0], dtype=np.float32)) * scale).astype(
            np.float32
        )
    return FaceCrop(np.ascontiguousarray(pixels), crop_mesh, crop_box, scale)


def polygon_mask(shape: tuple[int, int], points: FloatArray) -> BoolArray:
    """A ``(H, W)`` boolean mask of the filled polygon ``points`` (``(K, 2)`` px)."""
    canvas = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return canvas.astype(bool)


def region_mask(crop: FaceCrop, name: str) -> BoolArray:
    """The mask of the named mesh region (a key of :data:`REGIONS`) in ``crop``."""
    if crop.mesh is None:
        raise ValueError("region masks need a mesh")
    return polygon_mask(crop.shape, crop.mesh[list(REGIONS[name])])


def skin_mask(crop: FaceCrop) -> BoolArray:
    """Facial skin: the face oval without eyes, brows and lips; without a mesh, an ellipse in the
    inner 80 % of the detector's box."""
    if crop.mesh is None:
        return _box_ellipse(crop, 0.8)
    mask = region_mask(crop, "face_oval")
    for name in ("right_eye", "left_eye", "right_brow", "left_brow", "lips"):
        mask &= ~_dilate(region_mask(crop, name), 1)
    return mask


def background_ring(crop: FaceCrop) -> BoolArray:
    """Background around the head: inside the square box ×2.2, outside the box ×1.5, above the
    chin (clothes below the chin say nothing about the light behind the subject)."""
    box = crop.box.square()
    outer, inner = _rect_mask(crop, box.scaled(CROP_CONTEXT)), _rect_mask(crop, box.scaled(1.5))
    ring = outer & ~inner
    ring[int(max(0.0, crop.box.y1)) :, :] = False
    return ring


def _rect_mask(crop: FaceCrop, box: BBox) -> BoolArray:
    mask = np.zeros(crop.shape, dtype=bool)
    clipped = box.clipped(crop.shape[1], crop.shape[0])
    mask[int(clipped.y0) : int(np.ceil(clipped.y1)), int(clipped.x0) : int(np.ceil(clipped.x1))] = (
        True
    )
    return mask


def _box_ellipse(crop: FaceCrop, fraction: float) -> BoolArray:
    canvas = np.zeros(crop.shape, dtype=np.uint8)
    cx, cy = crop.box.center
    axes = (
        max(1, round(crop.box.width * fraction / 2)),
        max(1, round(crop.box.height * fraction / 2)),
    )
    cv2.ellipse(canvas, (round(cx), round(cy)), axes, 0.0, 0.0, 360.0, 1, thickness=-1)
    return canvas.astype(bool)


def _dilate(mask: BoolArray, radius_px: int) -> BoolArray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


__all__ = [
    "CROP_CONTEXT",
    "CROP_FACE_WIDTH_PX",
    "REGIONS",
    "BoolArray",
    "FaceCrop",
    "background_ring",
    "face_crop",
    "polygon_mask",
    "region_mask",
    "skin_mask",
]

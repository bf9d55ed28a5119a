"""A cheap descriptor of a capture's *background*, to spot batch registrations made in one place
(a fraud workshop enrolling many faces in front of the same wall).

The frame is reduced to an 8 × 6 grid of mean colours; the cells covering the face (its box grown
to take in hair, neck and shoulders — or, without a box, the central column where the capture
page's oval puts the face) are masked, so the descriptor says nothing about who is in the
picture.  Two descriptors are compared by the Pearson correlation of their colours over the
cells both kept (at least :data:`MIN_CELLS`); lighting shifts cancel in the correlation.  It is
deliberately coarse: measured rates in docs/FRAUD.md.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

COLS, ROWS = 8, 6
MIN_CELLS = 12

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels."""


def _face_mask(h: int, w: int, box: Box | None) -> NDArray[np.bool_]:
    if box is None:  # the capture guide's oval: the middle half, top to bottom
        x0, x1, y0, y1 = 0.25 * w, 0.75 * w, 0.0, float(h)
    else:
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0, x1 = box[0] - 0.6 * bw, box[2] + 0.6 * bw
        y0, y1 = box[1] - 0.5 * bh, float(h)  # everything below the face is the person
    cx = (np.arange(COLS) + 0.5) * w / COLS
    cy = (np.arange(ROWS) + 0.5) * h / ROWS
    inside_x = (cx[None, :] + w / COLS / 2 > x0) & (cx[None, :] - w / COLS / 2 < x1)
    inside_y = (cy[:, None] + h / ROWS / 2 > y0) & (cy[:, None] - h / ROWS / 2 < y1)
    mask: NDArray[np.bool_] = inside_x & inside_y
    return mask


def descriptor(image: NDArray[np.uint8], box: Box | None = None) -> NDArray[np.float32]:
    """``ROWS × COLS × 3`` mean colours (0–1) with the face cells set to NaN."""
    h, w = image.shape[:2]
    img = image[: h - h % ROWS, : w - w % COLS].astype(np.float32) / 255.0
    hh, ww = img.shape[0] // ROWS, img.shape[1] // COLS
    cells = img.reshape(ROWS, hh, COLS, ww, -1).mean(axis=(1, 3))[..., :3]
    cells[_face_mask(h, w, box)] = np.nan
    out: NDArray[np.float32] = cells.reshape(-1).astype(np.float32)
    return out


def similarity(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Correlation of two descriptors over the cells both kept; 0.0 when too few."""
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < MIN_CELLS * 3:
        return 0.0
    x, y = a[both].astype(np.float64), b[both].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return 0.0 if denom == 0.0 else float((x * y).sum() / denom)


def to_bytes(d: NDArray[np.float32]) -> bytes:
    return d.astype(np.float16).tobytes()


def from_bytes(raw: bytes) -> NDArray[np.float32]:
    return np.frombuffer(raw, dtype=np.float16).astype(np.float32)


__all__ = ["Box", "descriptor", "from_bytes", "similarity", "to_bytes"]

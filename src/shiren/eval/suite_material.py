"""What the liveness suite's sessions are made of: the annotated video, still photos, the knobs.

:class:`SourceVideo` is the annotated recording of a real person with the face mesh of every frame
(computed once by the caller); :class:`Photo` is a still face to hold up to the camera, cut from
that recording (:func:`crop_print`) or an LFW portrait enlarged to print size
(:func:`upscale_photo`); :class:`SuiteParams` holds every knob of the simulation, all of which are
reported with the results so a number can be traced to the conditions that produced it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from shiren.core.geometry import FloatArray, RGBImage
from shiren.eval.suite_annotation import Annotation, suite_error

MESH_FACE_POINTS = 468


@dataclass(frozen=True, slots=True, eq=False)
class SourceVideo:
    """The annotated recording: its frames, the face mesh of each (None where lost), times."""

    images: tuple[RGBImage, ...]
    times_ms: tuple[float, ...]
    meshes: tuple[FloatArray | None, ...]
    annotation: Annotation

    def __post_init__(self) -> None:
        if not len(self.images) == len(self.times_ms) == len(self.meshes):
            raise suite_error("images, times and meshes must have one entry per frame")
        if len(self.images) != len(self.annotation.frame_times_ms):
            raise suite_error(
                "the annotation describes a different number of frames than the video has",
                video=len(self.images),
                annotation=len(self.annotation.frame_times_ms),
            )

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.images[0].shape[:2]
        return (int(w), int(h))

    def mesh_near(self, index: int) -> FloatArray | None:
        """The mesh of ``index`` or of the nearest frame that has one (a face lost for a frame
        still sits where it was a frame ago)."""
        n = len(self.meshes)
        for d in range(n):
            for j in (index - d, index + d):
                if 0 <= j < n and self.meshes[j] is not None:
                    return self.meshes[j]
        return None


@dataclass(frozen=True, slots=True, eq=False)
class Photo:
    """A still image of a face (a print or a screen to hold up) with its mesh."""

    image: RGBImage
    mesh: FloatArray
    name: str


@dataclass(frozen=True, slots=True)
class SuiteParams:
    """Knobs of the simulation; all reported with the results."""

    colour_gain: float = 0.08
    """Reflected light: ``pixel · (1 + g · (c − mean(c)) / 255)`` inside the face mask."""
    display_delay_frames: int = 1
    """The camera sees the screen's colour this many frames late."""
    jpeg_quality: int = 85
    lead_ms: tuple[float, float] = (300.0, 700.0)
    """Real frames kept before an annotated event's start (range, drawn per action)."""
    max_plane_deg: float = 55.0
    min_confidence: str = "high"
    """Annotated events at least this confident can answer an action in a live session (a
    doubtful event would make the recording, not the checker, fail the session)."""
    pre_roll_ms: float = 400.0
    """Continuous real frames before each action window (the checker's slack)."""


DEFAULT_PARAMS = SuiteParams()
"""The default knobs: the session builders' default argument (frozen, so one shared instance)."""


def crop_print(image: RGBImage, mesh: FloatArray, rng: random.Random) -> Photo:
    """A portrait print cut around the face of a frame (face ≈ 45 % of the print's width)."""
    h, w = image.shape[:2]
    lo = mesh[:MESH_FACE_POINTS, :2].min(axis=0)
    hi = mesh[:MESH_FACE_POINTS, :2].max(axis=0)
    c = (lo + hi) / 2.0
    fw = float(hi[0] - lo[0])
    pw = fw / rng.uniform(0.4, 0.5)
    ph = pw * 4.0 / 3.0
    x0 = int(max(0, c[0] - pw / 2))
    y0 = int(max(0, c[1] - ph * 0.45))
    x1 = int(min(w, x0 + pw))
    y1 = int(min(h, y0 + ph))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    moved = mesh.copy()
    moved[:, 0] -= x0
    moved[:, 1] -= y0
    return Photo(crop, moved, "self")


def upscale_photo(image: RGBImage, mesh: FloatArray, name: str, factor: float = 3.0) -> Photo:
    """An LFW-sized photo (250 px) enlarged the way a printed or displayed copy would be."""
    big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    scaled = mesh.copy()
    scaled[:, :2] *= factor
    return Photo(np.ascontiguousarray(big), scaled, name)


__all__ = [
    "DEFAULT_PARAMS",
    "MESH_FACE_POINTS",
    "Photo",
    "SourceVideo",
    "SuiteParams",
    "crop_print",
    "upscale_photo",
]

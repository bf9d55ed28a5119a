"""The frame sequence a capture page uploads, validated before any model runs.

Three ways in, one validation:

* a directory of images, optionally with ``frames.json`` (the capture page's metadata)::

      {"nonce": "…",
       "frames": [{"file": "0000.jpg", "t_ms": 0}, {"file": "0001.jpg", "t_ms": 66.7}]}

  ``t_ms`` is the capture time in milliseconds since the page started filming the challenge
  (``performance.now()`` minus the start, as the page measures it); without ``frames.json`` the
  images are taken in name order at ``fps`` (default 15);
* a video file (decoded with OpenCV's FFmpeg backend; times from the container);
* in memory (the service): encoded images or arrays plus their ``t_ms``.

Every path ends in :func:`validate`: enough frames, one frame size, sane times (finite, strictly
increasing, within the session's length, no long gaps).  A bad sequence is a typed
:class:`~shiren.errors.FramesError`, never a crash.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.geometry import RGBImage
from shiren.core.image import ImageLimits, decode_image, image_from_array, load_image
from shiren.errors import ErrorCode, FramesError, ImageError
from shiren.liveness.config import FrameLimits

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
METADATA_FILE = "frames.json"
MAX_VIDEO_BYTES = 200 * 1024 * 1024
DEFAULT_FPS = 15.0


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    image: RGBImage
    t_ms: float


@dataclass(frozen=True, slots=True, eq=False)
class FrameSequence:
    """Validated frames of one session, in time order."""

    frames: tuple[Frame, ...]
    nonce: str | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of every frame."""
        h, w = self.frames[0].image.shape[:2]
        return (int(w), int(h))

    @property
    def times_ms(self) -> list[float]:
        return [f.t_ms for f in self.frames]

    @property
    def duration_ms(self) -> float:
        return self.frames[-1].t_ms - self.frames[0].t_ms

    @property
    def fps(self) -> float:
        return (len(self.frames) - 1) * 1000.0 / self.duration_ms if self.duration_ms > 0 else 0.0


def _error(code: ErrorCode, message: str, **detail: Any) -> FramesError:
    return FramesError(message, code=code, detail=detail)


def validate(
    images: Sequence[RGBImage],
    times_ms: Sequence[float],
    limits: FrameLimits,
    *,
    nonce: str | None = None,
    source: str = "",
) -> FrameSequence:
    """Check a decoded sequence and wrap it."""
    if len(images) == 0:
        raise _error(ErrorCode.FRAMES_EMPTY, "No frames were given.")
    if len(images) != len(times_ms):
        raise _error(
            ErrorCode.FRAMES_BAD_TIMESTAMPS,
            "Every frame needs exactly one timestamp.",
            frames=len(images),
            timestamps=len(times_ms),
        )
    if len(images) < limits.min_frames:
        raise _error(
            ErrorCode.FRAMES_TOO_FEW,
            f"{len(images)} frame(s) given; the check needs at least {limits.min_frames}.",
            frames=len(images),
            min_frames=limits.min_frames,
        )
    if len(images) > limits.max_frames:
        raise _error(
            ErrorCode.FRAMES_TOO_FEW,
            f"{len(images)} frames given; at most {limits.max_frames} are accepted.",
            frames=len(images),
            max_frames=limits.max_frames,
        )
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1:
        raise _error(
            ErrorCode.FRAMES_INCONSISTENT,
            "The frames do not all have the same size.",
            sizes=sorted(f"{s[1]}x{s[0]}" for s in shapes)[:5],
        )
    times = [float(t) for t in times_ms]
    if not all(math.isfinite(t) for t in times):
        raise _error(ErrorCode.FRAMES_BAD_TIMESTAMPS, "A timestamp is not a finite number.")
    if times[0] < 0:
        raise _error(ErrorCode.FRAMES_BAD_TIMESTAMPS, "Timestamps must not be negative.")
    steps = np.diff(np.asarray(times))
    if np.any(steps <= 0):
        raise _error(
            ErrorCode.FRAMES_BAD_TIMESTAMPS,
            "Timestamps must increase strictly from frame to frame.",
            first_bad_frame=int(np.argmax(steps <= 0)) + 1,
        )
    if times[-1] > limits.max_duration_ms:
        raise _error(
            ErrorCode.FRAMES_BAD_TIMESTAMPS,
            f"The session lasts {times[-1]:.0f} ms; at most {limits.max_duration_ms:.0f} ms.",
        )
    if float(steps.max()) > limits.max_gap_ms:
        raise _error(
            ErrorCode.FRAMES_BAD_TIMESTAMPS,
            f"There is a {float(steps.max()):.0f} ms gap between two frames "
            f"(at most {limits.max_gap_ms:.0f} ms).",
        )
    frames = tuple(Frame(img, t) for img, t in zip(images, times, strict=True))
    return FrameSequence(frames=frames, nonce=nonce, source=source)


def _image_limits(limits: FrameLimits) -> ImageLimits:
    return ImageLimits(max_decode_side_px=limits.max_side_px)


def from_arrays(
    images: Sequence[np.ndarray[Any, Any]],
    times_ms: Sequence[float],
    limits: FrameLimits,
    *,
    nonce: str | None = None,
) -> FrameSequence:
    """Validate in-memory ``uint8`` arrays (RGB, gray or RGBA)."""
    decoded = [image_from_array(img, _image_limits(limits)) for img in images]
    return validate(decoded, times_ms, limits, nonce=nonce, source="arrays")


def from_encoded(
    blobs: Sequence[bytes],
    times_ms: Sequence[float],
    limits: FrameLimits,
    *,
    nonce: str | None = None,
) -> FrameSequence:
    """Decode uploaded JPEG/PNG/WebP frames (each through the hostile-input-safe decoder)."""
    if len(blobs) > limits.max_frames:
        raise _error(ErrorCode.FRAMES_TOO_FEW, f"at most {limits.max_frames} frames are accepted")
    decoded = [decode_image(b, _image_limits(limits)).pixels for b in blobs]
    return validate(decoded, times_ms, limits, nonce=nonce, source="upload")


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > 4 * 1024 * 1024:
            raise _error(ErrorCode.INPUT_INVALID, f"{METADATA_FILE} is larger than 4 MiB.")
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(ErrorCode.INPUT_INVALID, f"{METADATA_FILE} cannot be read: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("frames"), list):
        raise _error(ErrorCode.INPUT_INVALID, f"{METADATA_FILE} needs a 'frames' list.")
    return raw


def _from_directory(path: Path, limits: FrameLimits, fps: float | None) -> FrameSequence:
    meta_path = path / METADATA_FILE
    nonce: str | None = None
    if meta_path.is_file():
        meta = _read_metadata(meta_path)
        nonce = meta.get("nonce") if isinstance(meta.get("nonce"), str) else None
        entries = meta["frames"]
        if len(entries) > limits.max_frames:
            raise _error(ErrorCode.FRAMES_TOO_FEW, f"at most {limits.max_frames} frames accepted")
        files: list[Path] = []
        times: list[float] = []
        for i, item in enumerate(entries):
            if not isinstance(item, dict) or not isinstance(item.get("file"), str):
                raise _error(ErrorCode.INPUT_INVALID, f"frames[{i}] needs a 'file' name.")
            name = item["file"]
            if os.sep in name or "/" in name or name.startswith("."):
                raise _error(ErrorCode.INPUT_INVALID, f"frames[{i}].file must be a plain name.")
            t = item.get("t_ms")
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise _error(ErrorCode.FRAMES_BAD_TIMESTAMPS, f"frames[{i}].t_ms is not a number.")
            files.append(path / name)
            times.append(float(t))
    else:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) > limits.max_frames:
            raise _error(ErrorCode.FRAMES_TOO_FEW, f"at most {limits.max_frames} frames accepted")
        rate = fps or DEFAULT_FPS
        times = [i * 1000.0 / rate for i in range(len(files))]
    images = [load_image(f, _image_limits(limits)).pixels for f in files]
    return validate(images, times, limits, nonce=nonce, source=str(path))


def _from_video(path: Path, limits: FrameLimits, fps: float | None) -> FrameSequence:
    import cv2

    try:
        size = path.stat().st_size
    except OSError:
        raise _error(ErrorCode.INPUT_FILE_NOT_FOUND, "The video file does not exist.") from None
    if size > MAX_VIDEO_BYTES:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "The video is larger than 200 MiB.")
    if size == 0:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "The video file is empty.")
    capture = cv2.VideoCapture(str(path))
    images: list[RGBImage] = []
    times: list[float] = []
    try:
        if not capture.isOpened():
            raise _error(ErrorCode.VIDEO_UNREADABLE, "The video cannot be opened or decoded.")
        rate = fps or float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or DEFAULT_FPS
        while len(images) <= limits.max_frames:
            ok, bgr = capture.read()
            if not ok or bgr is None:
                break
            stamp = float(capture.get(cv2.CAP_PROP_POS_MSEC))
            t = (
                stamp
                if fps is None and math.isfinite(stamp) and stamp >= 0
                else len(images) * 1000.0 / rate
            )
            if times and t <= times[-1]:  # containers without timestamps report 0 for every frame
                t = len(images) * 1000.0 / rate
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            side = max(rgb.shape[:2])
            if side > limits.max_side_px:
                scale = limits.max_side_px / side
                rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            images.append(np.ascontiguousarray(rgb, dtype=np.uint8))
            times.append(t)
    finally:
        capture.release()
    if not images:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "No frame of the video could be decoded.")
    return validate(images, times, limits, source=str(path))


def load_frames(
    path: str | os.PathLike[str], limits: FrameLimits, *, fps: float | None = None
) -> FrameSequence:
    """Frames from a directory of images (see module docstring) or a video file."""
    p = Path(path)
    if fps is not None and not (0.5 <= fps <= 240):
        raise _error(ErrorCode.FRAMES_BAD_TIMESTAMPS, "fps must be between 0.5 and 240.")
    if p.is_dir():
        try:
            return _from_directory(p, limits, fps)
        except ImageError as exc:
            raise FramesError(
                f"A frame cannot be decoded: {exc.message}", code=exc.code, detail=exc.detail
            ) from None
    if not p.exists():
        raise _error(ErrorCode.INPUT_FILE_NOT_FOUND, "The frames path does not exist.")
    return _from_video(p, limits, fps)


__all__ = [
    "METADATA_FILE",
    "Frame",
    "FrameSequence",
    "from_arrays",
    "from_encoded",
    "load_frames",
    "validate",
]

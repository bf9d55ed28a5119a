"""MediaPipe BlazeFace detector and Face Mesh landmarker (Apache-2.0, from ``mediapipe==0.10.21``).

mediapipe is imported lazily, inside the constructors.  Its graphs are not thread-safe, so each
adapter serialises calls with a lock; give each worker thread its own :class:`~shiren.Verifier`
for parallelism.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.protocols import ModelInfo

# Mesh crops: the face box grown by this factor so the mesh's own short-range detector sees the
# whole head with some context (BlazeFace boxes are tight around the inner face).
_MESH_CROP_SCALE = 2.0
_MESH_MAX_SIDE_PX = 384


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native (C++) writes to fd 2 while mediapipe builds its graphs: it prints absl/glog
    start-up chatter that Python's logging cannot filter.  Start-up only: never per request."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (daemonised): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_mediapipe() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "mediapipe is not installed; run the set-up command in the README",
            code=ErrorCode.MODEL_UNAVAILABLE,
        ) from exc
    return mp


class MediapipeDetector:
    """BlazeFace: boxes and 6 keypoints (right eye, left eye, nose, mouth, right ear, left ear)."""

    def __init__(self, entry: ManifestEntry, *, min_score: float = 0.5) -> None:
        verified_path(entry)
        mp = _import_mediapipe()
        selection = 1 if "full_range" in entry.file else 0
        self.info: ModelInfo = entry.info()
        with quiet_native_stderr():
            self._graph = mp.solutions.face_detection.FaceDetection(
                model_selection=selection, min_detection_confidence=min_score
            )
            self._graph.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._lock = threading.Lock()

    def detect(self, image: RGBImage) -> list[Detection]:
        height, width = image.shape[:2]
        with self._lock:
            result = self._graph.process(image)
        found = [_to_detection(d, width, height) for d in (result.detections or [])]
        return sorted(found, key=lambda det: det.score, reverse=True)

    def close(self) -> None:
        self._graph.close()


class BlazeFaceCascade:
    """Short-range BlazeFace first (selfies, ID portraits: 1.8 ms), full-range only when it finds
    nothing (a small, distant face).  On LFW the full-range model alone misses 2.7 % of faces that
    fill much of the frame, the short-range one none; the cascade keeps both strengths."""

    def __init__(self, entry: ManifestEntry, *, min_score: float = 0.5) -> None:
        from shiren.models.manifest import builtin_manifest

        fallback = builtin_manifest()[str(entry.options.get("fallback", "blazeface-full-range"))]
        self.info: ModelInfo = entry.info()
        self._near = MediapipeDetector(entry, min_score=min_score)
        self._far = MediapipeDetector(fallback, min_score=min_score)

    def detect(self, image: RGBImage) -> list[Detection]:
        return self._near.detect(image) or self._far.detect(image)

    def close(self) -> None:
        self._near.close()
        self._far.close()


def _to_detection(raw: Any, width: int, height: int) -> Detection:
    loc = raw.location_data
    rel = loc.relative_bounding_box
    box = BBox(
        rel.xmin * width,
        rel.ymin * height,
        (rel.xmin + rel.width) * width,
        (rel.ymin + rel.height) * height,
    )
    points = np.array(
        [[k.x * width, k.y * height] for k in loc.relative_keypoints], dtype=np.float32
    ).reshape(-1, 2)
    return Detection(box=box, score=float(raw.score[0]), keypoints=points)


class MediapipeMesh:
    """Face Mesh with attention: 478 points (468 + 10 iris points) for one face in a given box.

    The mesh runs on a crop around the box (grown ×2, at most 384 px), so its cost does not grow
    with the photo's size and a second face elsewhere in the photo cannot be picked up instead.
    """

    def __init__(self, entry: ManifestEntry) -> None:
        verified_path(entry)
        mp = _import_mediapipe()
        self.info: ModelInfo = entry.info()
        with quiet_native_stderr():
            self._graph = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=2,
                refine_landmarks=True,
                min_detection_confidence=0.3,
            )
            self._graph.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._lock = threading.Lock()
        self._first = True

    def landmarks(self, image: RGBImage, box: BBox) -> FloatArray | None:
        crop, origin, scale = _crop_for_mesh(image, box)
        with self._lock:
            if self._first:  # the graph logs a one-off native warning on its first face
                with quiet_native_stderr():
                    result = self._graph.process(crop)
                self._first = result.multi_face_landmarks is None
            else:
                result = self._graph.process(crop)
        if not result.multi_face_landmarks:
            return None
        height, width = crop.shape[:2]
        candidates = [_points(face, width, height) for face in result.multi_face_landmarks]
        # The crop can hold a second head (someone behind the applicant): keep the mesh that
        # overlaps the detector's box best, never simply the first one.
        target = BBox(
            (box.x0 - origin[0]) * scale,
            (box.y0 - origin[1]) * scale,
            (box.x1 - origin[0]) * scale,
            (box.y1 - origin[1]) * scale,
        )
        pts = max(candidates, key=lambda c: _mesh_box(c).iou(target))
        pts /= scale
        pts[:, 0] += origin[0]
        pts[:, 1] += origin[1]
        return pts

    def close(self) -> None:
        self._graph.close()


_WIRE = np.dtype(
    [
        ("tag", "u1"),
        ("size", "u1"),
        ("x_tag", "u1"),
        ("x", "<f4"),
        ("y_tag", "u1"),
        ("y", "<f4"),
        ("z_tag", "u1"),
        ("z", "<f4"),
    ]
)
"""One ``NormalizedLandmark`` {x, y, z} inside a serialised ``NormalizedLandmarkList``:
field 1 (length 15) holding fields 1–3 as 32-bit floats, 17 bytes (what Face Mesh emits)."""
_WIRE_TAGS = (0x0A, 15, 0x0D, 0x15, 0x1D)


def _points(face: Any, width: int, height: int) -> FloatArray:
    """A ``NormalizedLandmarkList`` (relative x, y, z) → ``(N, 3)`` float32 pixels.  Read from
    the message's wire bytes in one step when every landmark is exactly {x, y, z} (≈0.02 ms for
    478 points against ≈0.5 ms for reading them attribute by attribute, done for every tracked
    frame); attribute by attribute otherwise."""
    raw = face.SerializeToString()
    count = len(face.landmark)
    if count and len(raw) == count * _WIRE.itemsize:
        rec = np.frombuffer(raw, dtype=_WIRE)
        tags = (rec["tag"], rec["size"], rec["x_tag"], rec["y_tag"], rec["z_tag"])
        if all(bool((t == v).all()) for t, v in zip(tags, _WIRE_TAGS, strict=True)):
            pts = np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
            pts *= np.array([width, height, width], dtype=np.float32)
            return pts
    flat = np.fromiter((v for p in face.landmark for v in (p.x, p.y, p.z)), dtype=np.float32)
    pts = flat.reshape(-1, 3)
    pts *= np.array([width, height, width], dtype=np.float32)
    return pts


def _mesh_box(points: FloatArray) -> BBox:
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return BBox(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _crop_for_mesh(image: RGBImage, box: BBox) -> tuple[RGBImage, tuple[int, int], float]:
    """A crop around ``box`` (padded with edge pixels where it leaves the image), downscaled so its
    long side ≤ ``_MESH_MAX_SIDE_PX``.  Returns (crop, top-left in image px, scale crop/image)."""
    import cv2

    height, width = image.shape[:2]
    region = box.square().scaled(_MESH_CROP_SCALE)
    x0, y0 = int(np.floor(region.x0)), int(np.floor(region.y0))
    x1, y1 = int(np.ceil(region.x1)), int(np.ceil(region.y1))
    crop = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pad = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if any(pad):
        crop = np.asarray(
            cv2.copyMakeBorder(crop, *pad, borderType=cv2.BORDER_CONSTANT, value=(0, 0, 0)),
            dtype=np.uint8,
        )
    scale = 1.0
    side = max(crop.shape[:2])
    if side > _MESH_MAX_SIDE_PX:
        scale = _MESH_MAX_SIDE_PX / side
        crop = np.asarray(
            cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
    return np.ascontiguousarray(crop), (x0, y0), scale


class MediapipeMeshTracker:
    """Face Mesh in video mode: the landmark model follows the face from frame to frame.

    MediaPipe runs its face detector only on the first frame and whenever the track is lost, so a
    frame costs ≈ 2.5 ms instead of ≈ 9 ms for detection + static mesh (measured on the 960×540
    webcam video in ``shared/data``, one core).  One face is tracked (``max_num_faces=1``: a
    second face costs a detector run on every frame); a second person in view is the caller's
    check on a few keyframes.  Each :meth:`track` call is one session: a blank frame first makes
    the graph drop any track left over from the previous call.
    """

    def __init__(self, entry: ManifestEntry, *, min_tracking_confidence: float = 0.5) -> None:
        verified_path(entry)
        mp = _import_mediapipe()
        self.info: ModelInfo = entry.info()
        with quiet_native_stderr():
            self._graph = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=0.5,
                min_tracking_confidence=min_tracking_confidence,
            )
            self._graph.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._lock = threading.Lock()
        self._blank = np.zeros((64, 64, 3), dtype=np.uint8)

    def track(self, images: Sequence[RGBImage]) -> list[FloatArray | None]:
        out: list[FloatArray | None] = []
        with self._lock:
            self._graph.process(self._blank)  # forget the previous session's track
            for image in images:
                result = self._graph.process(np.ascontiguousarray(image))
                if not result.multi_face_landmarks:
                    out.append(None)
                    continue
                height, width = image.shape[:2]
                out.append(_points(result.multi_face_landmarks[0], width, height))
        return out

    def close(self) -> None:
        self._graph.close()

"""What one liveness check learnt about each frame, kept for the 1:1 match of the same capture.

A step-up or enrolment capture is judged twice: by the liveness check (mesh on every frame, the
detector and the embedder on a few keyframes) and by the 1:1 match of one still frame with the
reference.  Running the whole single-image pipeline again for the match repeats the detector,
the mesh and the embedder on a frame the check has already looked at (≈ 20 ms of the ≈ 125 ms a
capture cost, measured with ``scripts/measure_liveness_margins.py capture``).  A memo, created
per capture and passed to both, lets the match reuse the tracked mesh, the detections and the
embedding of the mesh-aligned view.

The memo holds embeddings: it lives for one request, in memory, and is never logged, returned or
stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.errors import FaceError
from shiren.liveness.signals import FaceSignals
from shiren.models.protocols import FaceDetector
from shiren.verifier import Verifier


@dataclass
class CaptureMemo:
    """Per-frame results of one check, by frame index (see the module docstring)."""

    meshes: list[FloatArray | None] = field(default_factory=list)
    """The tracked 478-point mesh of every frame (``None`` where the face was lost)."""
    detections: dict[int, tuple[Detection, ...]] = field(default_factory=dict)
    mesh_templates: dict[int, FloatArray] = field(default_factory=dict)
    """The embedding of the mesh-aligned, unmirrored chip (the verifier's ``mesh`` view)."""
    signals: FaceSignals | None = None
    """The per-frame face signals the check derived from the meshes (the injection check's
    flash features read them; rebuilding them costs ~30 ms a capture)."""

    def detect(self, detector: FaceDetector, index: int, image: RGBImage) -> tuple[Detection, ...]:
        """The detector's faces in frame ``index``, computed once per capture."""
        found = self.detections.get(index)
        if found is None:
            found = tuple(detector.detect(image))
            self.detections[index] = found
        return found

    def mesh(self, index: int) -> FloatArray | None:
        return self.meshes[index] if 0 <= index < len(self.meshes) else None


def mesh_box(mesh: FloatArray) -> BBox:
    """A detector-like face box from the mesh (the mesh spans brow to chin, the detector's box
    is a little taller at the top), so the PAD crop sees the same framing it was built for."""
    lo = mesh[:468, :2].min(axis=0)
    hi = mesh[:468, :2].max(axis=0)
    w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    return BBox(float(lo[0]), float(lo[1]) - 0.1 * h, float(lo[0]) + w, float(hi[1]))


def face_of(detections: tuple[Detection, ...], mesh: FloatArray) -> Detection | None:
    """The detection that is the tracked face (IoU with the mesh's box > 0.3), if any."""
    around = mesh_box(mesh)
    best = max(detections, key=lambda d: d.box.iou(around), default=None)
    return best if best is not None and best.box.iou(around) > 0.3 else None


def live_template(
    verifier: Verifier, image: RGBImage, index: int, memo: CaptureMemo | None
) -> FloatArray | None:
    """The identity template of frame ``index`` of a capture: from the liveness check's tracked
    mesh, detections and mesh-view embedding when ``memo`` has them (the memo must come from a
    check run with this ``verifier``), else the whole single-image pipeline.  ``None`` when no
    face can be used."""
    mesh = memo.mesh(index) if memo is not None else None
    if memo is not None and mesh is not None:
        face = face_of(memo.detect(verifier.detector, index, image), mesh)
        if face is not None:
            known = memo.mesh_templates.get(index)
            return verifier.template_from_mesh(
                image, face, mesh, None if known is None else {"mesh": known}
            )
    try:
        return verifier.analyze(image).template
    except FaceError:
        return None


__all__ = ["CaptureMemo", "face_of", "live_template", "mesh_box"]

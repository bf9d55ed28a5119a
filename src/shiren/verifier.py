"""The face pipeline: decode → detect → choose → mesh → quality → align → embed → compare.

:class:`Verifier` depends on the model Protocols only; :func:`Verifier.from_config` builds the
real models (once: keep the object, do not build one per request).  Nothing loads at import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from shiren.core.align import (
    arcface5_from_mesh,
    arcface_chip,
    arcface_chip_from_dlib5,
    dlib5_from_mesh,
)
from shiren.core.choice import FacePolicy, choose_face
from shiren.core.geometry import Detection, FloatArray, RGBImage
from shiren.core.image import DecodedImage, ImageLimits, decode_image, image_from_array, load_image
from shiren.core.quality import QualityConfig, QualityReport, assess_quality
from shiren.core.similarity import Metric, similarity
from shiren.errors import ConfigError, ErrorCode
from shiren.models.protocols import (
    FaceAligner,
    FaceDetector,
    FaceEmbedder,
    FaceLandmarker,
    ModelInfo,
)
from shiren.reasons import ReasonCode
from shiren.thresholds import default_threshold

ImageInput = str | os.PathLike[str] | bytes | npt.NDArray[np.uint8]
TEMPLATE_VERSION = "4"
"""Bumped whenever code that shapes a template changes (alignment, crops, views), so cached
templates and stored templates made by another version are never silently compared."""
View = Literal["mesh", "mesh-flip", "5pt", "5pt-flip"]
VIEWS: tuple[View, ...] = ("mesh", "mesh-flip", "5pt", "5pt-flip")
MOBILEFACENET = "mobilefacenet-onnx"
DLIB = "dlib-resnet-v1-onnx"


@dataclass(frozen=True, slots=True)
class Profile:
    """A named template recipe: which network embeds which aligned views (averaged)."""

    embedder: str
    views: tuple[View, ...]

    def config(self, **changes: Any) -> VerifierConfig:
        """A :class:`VerifierConfig` for this profile (``changes`` override other fields)."""
        return VerifierConfig(embedder=self.embedder, views=self.views, **changes)


PROFILES: dict[str, Profile] = {
    # MobileFaceNet (the shipped network; separates East-Asian faces far better than dlib's,
    # docs/MODEL_CARD.md), ~5 ms per view on one core
    # (all four views score lower on LFW, 99.13 %: the 5-point chips are worse than the mesh's)
    "fast": Profile(MOBILEFACENET, ("mesh",)),
    "standard": Profile(MOBILEFACENET, ("mesh", "mesh-flip")),
    # dlib's ResNet (the network before 2026-12; kept for templates enrolled with it), ~3 ms/view
    "dlib-fast": Profile(DLIB, ("mesh-flip",)),
    "dlib-standard": Profile(DLIB, ("mesh", "5pt-flip")),
    "dlib-accurate": Profile(DLIB, VIEWS),
}


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    """What the pipeline runs and how it decides; every field has a safe default."""

    detector: str = "blazeface"
    landmarker: str = "face-mesh-attention"
    aligner: str = "dlib-5-point"
    embedder: str = MOBILEFACENET
    face_policy: FacePolicy = "largest_central"
    views: tuple[View, ...] = ("mesh", "mesh-flip")
    """The aligned chips whose templates are averaged into one.  ``mesh``: aligned on the face
    mesh's eye corners and nose base; ``5pt``: on dlib's 5-point regressor; ``-flip``: mirrored.
    Each view costs one forward pass (~5 ms MobileFaceNet, ~3 ms dlib as ONNX); see
    docs/MODEL_CARD.md for accuracy per choice."""
    threshold: float | None = None
    """Similarity threshold for a match; None → the calibrated default shipped for the embedder."""
    threads: int = 1
    model_dir: Path | None = None
    model_manifest: Path | None = None
    """A user manifest (JSON) adding models by path (an ONNX embedder, say); see manifest.py."""
    limits: ImageLimits = field(default_factory=lambda: ImageLimits(max_decode_side_px=1920))
    """Input limits; big phone photos are decoded straight to ≤ 1920 px on the long side (a face
    needs far fewer pixels, and a 12 MP decode alone would cost ~150 ms)."""
    quality: QualityConfig = field(default_factory=QualityConfig.default)
    min_face_score: float = 0.5


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    """Everything the pipeline learnt about the chosen face of one image."""

    face: Detection
    faces: tuple[Detection, ...]
    mesh: FloatArray | None
    quality: QualityReport
    template: FloatArray
    image_size: tuple[int, int]
    timings_ms: dict[str, float]


@dataclass(frozen=True, slots=True)
class MatchResult:
    """A 1:1 verdict.  ``similarity`` is higher for more alike faces; ``match`` is
    ``similarity >= threshold``; ``reasons`` explain the verdict (match and quality codes)."""

    similarity: float
    threshold: float
    match: bool
    reasons: tuple[tuple[str, ReasonCode], ...]
    quality: tuple[QualityReport, QualityReport]
    metric: Metric

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        from shiren.messages import message

        return {
            "similarity": round(self.similarity, 6),
            "threshold": round(self.threshold, 6),
            "match": self.match,
            "metric": self.metric,
            "reasons": [
                {"image": which, "code": str(code), "message": message(code, lang)}
                for which, code in self.reasons
            ],
            "quality": {"a": self.quality[0].to_dict(lang), "b": self.quality[1].to_dict(lang)},
        }


class Verifier:
    """Face verification with injected models (real: :meth:`from_config`; fakes in tests)."""

    def __init__(
        self,
        *,
        detector: FaceDetector,
        landmarker: FaceLandmarker | None,
        aligner: FaceAligner,
        embedder: FaceEmbedder,
        config: VerifierConfig | None = None,
    ) -> None:
        self.config = config or VerifierConfig()
        self.detector = detector
        self.landmarker = landmarker
        self.aligner = aligner
        self.embedder = embedder
        self.threshold = (
            self.config.threshold
            if self.config.threshold is not None
            else default_threshold(embedder.info.name, views=self.config.views)
        )
        unknown = set(self.config.views) - set(VIEWS)
        if not self.config.views or unknown:
            raise ConfigError(
                f"views must be a non-empty subset of {VIEWS}",
                code=ErrorCode.CONFIG_INVALID,
                detail={"unknown": sorted(unknown)},
            )

    @classmethod
    def from_config(cls, config: VerifierConfig | None = None) -> Verifier:
        """Load the real models named by ``config`` (checksums verified)."""
        from shiren.models.manifest import load_user_manifest
        from shiren.models.registry import build_model, get_entry

        cfg = config or VerifierConfig()
        md = cfg.model_dir
        extra = load_user_manifest(cfg.model_manifest) if cfg.model_manifest else None
        embedder_entry = get_entry(cfg.embedder, extra, md)
        embedder_kwargs: dict[str, Any] = (
            {"threads": cfg.threads} if "onnx" in embedder_entry.adapter else {}
        )
        return cls(
            detector=build_model(
                cfg.detector, extra=extra, model_dir=md, min_score=cfg.min_face_score
            ),
            landmarker=build_model(cfg.landmarker, extra=extra, model_dir=md)
            if cfg.landmarker
            else None,
            aligner=build_model(
                cfg.aligner, extra=extra, model_dir=md, chip_size=embedder_entry.input_size[0]
            ),
            embedder=build_model(cfg.embedder, extra=extra, model_dir=md, **embedder_kwargs),
            config=cfg,
        )

    def sibling(self, config: VerifierConfig) -> Verifier:
        """A verifier for another network (``config.embedder``) sharing this one's detector and
        mesh (loaded once); only its aligner and embedder are built (checksums verified)."""
        from shiren.models.manifest import load_user_manifest
        from shiren.models.registry import build_model, get_entry

        md = config.model_dir
        extra = load_user_manifest(config.model_manifest) if config.model_manifest else None
        entry = get_entry(config.embedder, extra, md)
        kwargs: dict[str, Any] = {"threads": config.threads} if "onnx" in entry.adapter else {}
        return Verifier(
            detector=self.detector,
            landmarker=self.landmarker,
            aligner=build_model(
                config.aligner, extra=extra, model_dir=md, chip_size=entry.input_size[0]
            ),
            embedder=build_model(config.embedder, extra=extra, model_dir=md, **kwargs),
            config=config,
        )

    def with_config(self, **changes: Any) -> Verifier:
        """The same loaded models under changed decision settings (thresholds, policy, flip)."""
        return Verifier(
            detector=self.detector,
            landmarker=self.landmarker,
            aligner=self.aligner,
            embedder=self.embedder,
            config=replace(self.config, **changes),
        )

    @property
    def models(self) -> list[ModelInfo]:
        found = [self.detector.info, self.aligner.info, self.embedder.info]
        if self.landmarker is not None:
            found.insert(1, self.landmarker.info)
        return found

    # -- the pipeline -------------------------------------------------------------------------

    def decode(self, image: ImageInput) -> RGBImage:
        """Any accepted input → an RGB uint8 array (typed :class:`~shiren.errors.ImageError`)."""
        return self._decode(image).pixels

    def _decode(self, image: ImageInput) -> DecodedImage:
        if isinstance(image, np.ndarray):
            pixels = image_from_array(image)
            h, w = pixels.shape[:2]
            return DecodedImage(
                pixels=pixels, format="array", original_size=(w, h), exif_orientation=1
            )
        if isinstance(image, bytes | bytearray | memoryview):
            return decode_image(bytes(image), self.config.limits)
        return load_image(image, self.config.limits)

    def analyze(self, image: ImageInput) -> FaceAnalysis:
        """Run the whole pipeline on one image.  Raises FaceError when no face can be used."""
        timings: dict[str, float] = {}
        with _timed(timings, "decode"):
            pixels = self._decode(image).pixels
        with _timed(timings, "detect"):
            faces = self.detector.detect(pixels)
            face = choose_face(faces, pixels.shape[1], pixels.shape[0], self.config.face_policy)
        with _timed(timings, "mesh"):
            mesh = self.landmarker.landmarks(pixels, face.box) if self.landmarker else None
        with _timed(timings, "quality"):
            report = assess_quality(pixels, face, mesh, all_faces=faces, config=self.config.quality)
        with _timed(timings, "align"):
            chips = self._chips(pixels, face, mesh)
        with _timed(timings, "embed"):
            template = self.embedder.embed(chips).mean(axis=0).astype(np.float32)
        timings["total"] = sum(timings.values())
        return FaceAnalysis(
            face=face,
            faces=tuple(faces),
            mesh=mesh,
            quality=report,
            template=template,
            image_size=(pixels.shape[1], pixels.shape[0]),
            timings_ms=timings,
        )

    def assess(self, image: ImageInput) -> QualityReport:
        """The capture-quality report only (no embedding): decode, detect, mesh, gate.  Raises
        FaceError when no face is found."""
        pixels = self._decode(image).pixels
        faces = self.detector.detect(pixels)
        face = choose_face(faces, pixels.shape[1], pixels.shape[0], self.config.face_policy)
        mesh = self.landmarker.landmarks(pixels, face.box) if self.landmarker else None
        return assess_quality(pixels, face, mesh, all_faces=faces, config=self.config.quality)

    def _chips(
        self, pixels: RGBImage, face: Detection, mesh: FloatArray | None
    ) -> npt.NDArray[np.uint8]:
        """One chip per configured view; mesh views fall back to the 5-point regressor when the
        mesh failed, so a template is always made the same number of ways."""
        views = self.config.views
        base: dict[str, RGBImage] = {}
        if any(v.startswith("5pt") for v in views) or mesh is None:
            aligned = self.aligner.align(pixels, face.box)
            base["5pt"] = (
                arcface_chip_from_dlib5(pixels, aligned.points, self.embedder.chip_size)
                if self.alignment == "arcface"
                else aligned.chip
            )
        if mesh is not None and any(v.startswith("mesh") for v in views):
            base["mesh"] = self.mesh_chip(pixels, mesh)
        chips = []
        for view in views:
            source, _, flip = view.partition("-")
            chip = base.get(source, base.get("5pt"))
            assert chip is not None
            chips.append(np.ascontiguousarray(chip[:, ::-1]) if flip else chip)
        return np.stack(chips)

    @property
    def alignment(self) -> str:
        """The embedder's chip convention: ``"dlib"`` (150×150, dlib's 5-point template with 25 %
        padding) or ``"arcface"`` (112×112 ArcFace 5-point template)."""
        return str(getattr(self.embedder, "alignment", "dlib"))

    def mesh_chip(self, pixels: RGBImage, mesh: FloatArray) -> RGBImage:
        """The embedder's chip of the face whose mesh is ``mesh`` (the ``mesh`` view)."""
        if self.alignment == "arcface":
            return arcface_chip(pixels, arcface5_from_mesh(mesh), self.embedder.chip_size)
        return self.aligner.align_points(pixels, dlib5_from_mesh(mesh)).chip

    def template_from_mesh(
        self,
        pixels: RGBImage,
        face: Detection,
        mesh: FloatArray,
        known: dict[View, FloatArray] | None = None,
    ) -> FloatArray:
        """The template :meth:`analyze` would make of ``face`` with this ``mesh`` (the views
        averaged the same way), skipping detection, mesh and quality, which the caller already
        has (a liveness check's tracked mesh and detections of the same frame).  ``known``
        holds view embeddings computed before (the liveness identity signal's ``mesh`` view,
        say); only the missing views are embedded."""
        known = known or {}
        missing = [v for v in self.config.views if v not in known]
        embedded: dict[View, FloatArray] = dict(known)
        if missing:
            chips = self._chips(pixels, face, mesh)
            index = {v: i for i, v in enumerate(self.config.views)}
            rows = self.embedder.embed(np.stack([chips[index[v]] for v in missing]))
            embedded.update(zip(missing, rows, strict=True))
        stacked = np.stack([embedded[v] for v in self.config.views])
        template: FloatArray = stacked.mean(axis=0).astype(np.float32)
        return template

    def template(self, image: ImageInput) -> FloatArray:
        """The identity template of the chosen face: ``(dim,)`` float32."""
        return self.analyze(image).template

    def score(self, a: FloatArray, b: FloatArray) -> float:
        """Similarity of two templates from this verifier (higher = more alike)."""
        return similarity(a, b, self.embedder.metric)

    def compare(self, a: ImageInput, b: ImageInput) -> MatchResult:
        """1:1 verdict on two images (a live capture and a reference, say)."""
        first, second = self.analyze(a), self.analyze(b)
        return self.decide(first, second)

    def decide(self, first: FaceAnalysis, second: FaceAnalysis) -> MatchResult:
        value = self.score(first.template, second.template)
        matched = value >= self.threshold
        reasons: list[tuple[str, ReasonCode]] = [
            (
                "pair",
                ReasonCode.MATCH_ABOVE_THRESHOLD if matched else ReasonCode.MATCH_BELOW_THRESHOLD,
            )
        ]
        reasons += [("a", code) for code in first.quality.reasons]
        reasons += [("b", code) for code in second.quality.reasons]
        return MatchResult(
            similarity=value,
            threshold=self.threshold,
            match=matched,
            reasons=tuple(reasons),
            quality=(first.quality, second.quality),
            metric=self.embedder.metric,
        )


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = (time.perf_counter() - start) * 1000.0

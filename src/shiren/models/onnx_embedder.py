"""A model-agnostic ONNX face embedder: any model file a user names, with a manifest entry.

The manifest entry's ``options`` describe the model's input convention::

    {"layout": "NHWC" | "NCHW",        # default NHWC
     "channel_order": "RGB" | "BGR",   # default RGB
     "mean": [m, m, m], "std": [s, s, s],   # x' = (x - mean) / std on 0..255 pixels; default 0 / 1
     "metric": "euclidean" | "cosine", # default cosine
     "output": "name",                 # default: the first output
     "alignment": "dlib" | "arcface"}  # the chip convention; default dlib

so SFace (112×112, BGR, NCHW, raw pixels), ArcFace (112×112, RGB, NCHW, mean 127.5, std 127.5)
and shiren's own translation of dlib's ResNet (150×150, RGB, NHWC, raw pixels, Euclidean) all
load through the same class.  onnxruntime runs single-threaded by default: shiren scales by
processes, and one core per request is the budget it is measured against.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import FloatArray
from shiren.core.similarity import Metric
from shiren.errors import ErrorCode, ModelError
from shiren.models.manifest import ManifestEntry, verified_path
from shiren.models.protocols import ModelInfo


def make_session(path: Path, *, threads: int = 1, prelu_as_minmax: bool = False) -> Any:
    """An onnxruntime CPU session with full graph optimisation and ``threads`` intra-op threads.
    ``prelu_as_minmax``: run the graph with its ``PRelu`` nodes spelled out in element-wise ops
    (:func:`shiren.models.onnx_graph.prelu_as_minmax`: the same values, faster on CPU)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("onnxruntime is not installed", code=ErrorCode.MODEL_UNAVAILABLE) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        source: str | bytes = str(path)
        if prelu_as_minmax:
            import onnx

            from shiren.models.onnx_graph import prelu_as_minmax as rewrite

            source = rewrite(onnx.load(str(path))).SerializeToString()
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(
            f"onnxruntime cannot load the model file: {type(exc).__name__}",
            code=ErrorCode.MODEL_INVALID,
            detail={"path": str(path)},
        ) from None


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{name} must be a positive integer", code=ErrorCode.MODEL_INVALID)
    return value


class OnnxEmbedder:
    """Aligned chips → templates, through any ONNX graph with one image input."""

    def __init__(self, entry: ManifestEntry, *, threads: int = 1) -> None:
        path = verified_path(entry)
        self.info: ModelInfo = entry.info()
        self._session = make_session(path, threads=threads)
        opts = entry.options
        self._layout = str(opts.get("layout", "NHWC")).upper()
        self._bgr = str(opts.get("channel_order", "RGB")).upper() == "BGR"
        self._mean = np.asarray(opts.get("mean", [0.0, 0.0, 0.0]), dtype=np.float32)
        self._std = np.asarray(opts.get("std", [1.0, 1.0, 1.0]), dtype=np.float32)
        self.metric: Metric = cast(Metric, opts.get("metric", "cosine"))
        self.alignment = str(opts.get("alignment", "dlib"))
        """The chip convention the network was trained on: ``dlib`` or ``arcface``."""
        self.batch = _positive_int(opts.get("batch", 1), "batch")
        """Chips per run.  On one CPU core a batch cost more per chip than single runs
        (MobileFaceNet, 112 px: 4 chips 38.9 ms batched, 28.4 ms one by one; a single chip
        7.3 ms: ``scripts/bench_embedder_batch.py``), so 1 unless the
        manifest says otherwise."""
        self._check_options()
        inputs = self._session.get_inputs()
        self._input = inputs[0].name
        outputs = self._session.get_outputs()
        self._output = str(opts.get("output", outputs[0].name))
        self.chip_size = entry.input_size[0]
        self.dim = self._probe_dim()
        self._lock = threading.Lock()

    def _check_options(self) -> None:
        if self._layout not in {"NHWC", "NCHW"} or self.metric not in {"cosine", "euclidean"}:
            raise ModelError(
                f"unsupported ONNX embedder options for {self.info.name!r}",
                code=ErrorCode.MODEL_INVALID,
                detail={"layout": self._layout, "metric": self.metric},
            )
        if np.any(self._std == 0):
            raise ModelError("std must be non-zero", code=ErrorCode.MODEL_INVALID)

    def _probe_dim(self) -> int:
        probe = np.zeros((1, self.chip_size, self.chip_size, 3), dtype=np.uint8)
        out = self._run(probe)
        if out.ndim != 2 or out.shape[0] != 1:
            raise ModelError(
                f"model {self.info.name!r} must output (N, D) templates, got {out.shape}",
                code=ErrorCode.MODEL_INVALID,
            )
        return int(out.shape[1])

    def _prepare(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        x = chips.astype(np.float32)
        if self._bgr:
            x = x[..., ::-1]
        x = (x - self._mean) / self._std
        if self._layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    def _run(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        result = self._session.run([self._output], {self._input: self._prepare(chips)})
        return np.asarray(result[0], dtype=np.float32)

    def embed(self, chips: npt.NDArray[np.uint8]) -> FloatArray:
        if chips.ndim != 4 or chips.shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ModelError(
                f"expected (N, {self.chip_size}, {self.chip_size}, 3) chips, got {chips.shape}",
                code=ErrorCode.MODEL_INVALID,
            )
        if len(chips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if len(chips) <= self.batch:
                return self._run(chips)
            parts = [self._run(chips[i : i + self.batch]) for i in range(0, len(chips), self.batch)]
            return np.concatenate(parts, axis=0)

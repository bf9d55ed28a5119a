"""A tiny ONNX face embedder the tests build themselves (proves the bring-your-own-model path)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_tiny_embedder(path: Path, *, size: int = 32, dim: int = 16, seed: int = 0) -> str:
    """Conv(3→8, 3×3) → ReLU → GlobalAveragePool → Flatten → MatMul(8→dim); NCHW float input.

    Returns the file's sha256."""
    rng = np.random.default_rng(seed)
    conv_w = numpy_helper.from_array(rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32), "conv_w")
    conv_b = numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "conv_b")
    fc_w = numpy_helper.from_array(rng.normal(0, 0.5, (8, dim)).astype(np.float32), "fc_w")
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc_w"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        initializer=[conv_w, conv_b, fc_w],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="shiren-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def write_manifest(folder: Path, *, size: int = 32, sha256: str | None = None) -> Path:
    """Build the tiny model in ``folder`` and write a user manifest naming it; returns its path."""
    digest = build_tiny_embedder(folder / "tiny.onnx", size=size)
    manifest = {
        "tiny-embedder": {
            "version": "1",
            "sha256": sha256 or digest,
            "licence": "CC0-1.0",
            "source": "built by tests/support/tiny_onnx.py",
            "input_size": [size, size],
            "adapter": "shiren.models.onnx_embedder:OnnxEmbedder",
            "file": "tiny.onnx",
            "options": {
                "layout": "NCHW",
                "channel_order": "BGR",
                "mean": [127.5] * 3,
                "std": [127.5] * 3,
                "metric": "cosine",
            },
        }
    }
    path = folder / "models.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def write_detector_manifest(folder: Path, *, box: tuple[float, float, float, float]) -> Path:
    """A tiny end-to-end 'detector' (input 128×128 NCHW): it always returns ``box`` (input pixels)
    with score = the mean brightness of the input in [0, 1].  Enough to prove the letterboxing,
    the mapping back to image pixels and the score filter."""
    const = numpy_helper.from_array(np.asarray([box], dtype=np.float32), "box")
    shape = numpy_helper.from_array(np.asarray([1, 1], dtype=np.int64), "one_by_one")
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
        helper.make_node("Reshape", ["m", "one_by_one"], ["m2"]),
        helper.make_node("Concat", ["box", "m2"], ["row"], axis=1),
        helper.make_node("Unsqueeze", ["row", "axis0"], ["detections"]),
    ]
    axis0 = numpy_helper.from_array(np.asarray([0], dtype=np.int64), "axis0")
    graph = helper.make_graph(
        nodes,
        "tiny-detector",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 128, 128])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, 1, 5])],
        initializer=[const, shape, axis0],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    (folder / "det.onnx").write_bytes(data)
    manifest = {
        "tiny-detector": {
            "version": "1",
            "sha256": hashlib.sha256(data).hexdigest(),
            "licence": "CC0-1.0",
            "source": "built by tests/support/tiny_onnx.py",
            "input_size": [128, 128],
            "adapter": "shiren.models.onnx_detector:OnnxDetector",
            "file": "det.onnx",
            "options": {"layout": "NCHW", "mean": [0.0] * 3, "std": [255.0] * 3},
        }
    }
    path = folder / "detector.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path

"""Measure the ONNX conversion of dlib's face-recognition ResNet: speed and int8 accuracy.

Converts the ``.dat`` with :func:`shiren.models.dlib_convert.convert_dlib_resnet`, cuts 150x150
chips from real face images (``dlib.get_face_chip`` on a 5-point fit inside a fixed centred box,
as suits LFW deep-funneled images) and prints one JSON object with:

* ``latency_ms``: p50/p90 of dlib's ``compute_face_descriptor`` (one chip) and of onnxruntime
  (``--threads`` intra-op threads, 1 inter-op thread, ORT_ENABLE_ALL) at batch 1 and 2, for the
  float model and each quantised variant;
* ``accuracy``: max |delta| and cosine similarity of each model against dlib and (for int8)
  against the float ONNX model, plus the largest change of a same/different pair distance.

Quantised variants: dynamic int8 (``quantize_dynamic``) and static QDQ int8 (``quantize_static``,
per-channel weights, calibrated on chips *other* than the evaluated ones).

Usage::

    python scripts/measure_dlib_onnx.py --faces /work/shared/data/lfw_view2/lfw-deepfunneled \\
        [--dat model.dat] [--landmarks shape_predictor_5.dat] [--n 100] [--calib 100] \\
        [--out-dir DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from shiren.models.dlib_convert import INPUT_NAME, OUTPUT_NAME, convert_dlib_resnet

Array = np.ndarray[Any, Any]


def _args() -> argparse.Namespace:
    import face_recognition_models as frm

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", type=Path, required=True, help="folder of per-person image folders")
    p.add_argument("--dat", type=Path, default=Path(frm.face_recognition_model_location()))
    p.add_argument(
        "--landmarks", type=Path, default=Path(frm.pose_predictor_five_point_model_location())
    )
    p.add_argument("--n", type=int, default=100, help="faces to evaluate")
    p.add_argument("--calib", type=int, default=100, help="other faces to calibrate QDQ on")
    p.add_argument("--out-dir", type=Path, default=None, help="where the .onnx files go")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--runs", type=int, default=40, help="timed runs per latency figure")
    return p.parse_args()


def _chips(faces: Path, landmarks: Path, count: int) -> Array:
    import dlib

    predictor = dlib.shape_predictor(str(landmarks))
    box = dlib.rectangle(70, 70, 180, 180)
    out = []
    for path in sorted(faces.glob("*/*.jpg"))[:count]:
        image = dlib.load_rgb_image(str(path))
        out.append(dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25))
    return np.stack(out)


def _percentiles(fn: Callable[[], object], runs: int) -> dict[str, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 2), "p90": round(times[int(0.9 * runs)], 2)}


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _embed(session: Any, chips: Array) -> Array:
    rows = [
        session.run([OUTPUT_NAME], {INPUT_NAME: chips[i : i + 10].astype(np.float32)})[0]
        for i in range(0, len(chips), 10)
    ]
    return np.concatenate(rows).astype(np.float64)


def _compare(got: Array, ref: Array) -> dict[str, float]:
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    pair_ref = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    pair_got = np.linalg.norm(got[:, None] - got[None], axis=2)
    return {
        "max_abs_delta": float(np.abs(got - ref).max()),
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "pair_distance_max_change": float(np.abs(pair_got - pair_ref).max()),
    }


class _Calibration:
    """``CalibrationDataReader`` protocol over a stack of chips (duck-typed)."""

    def __init__(self, chips: Array) -> None:
        self._it: Iterator[Array] = iter(chips)

    def get_next(self) -> dict[str, Array] | None:
        chip = next(self._it, None)
        return None if chip is None else {INPUT_NAME: chip[None].astype(np.float32)}


def _quantise(float_path: Path, out_dir: Path, calib: Array) -> dict[str, Path]:
    from onnxruntime import quantization as q

    dynamic = out_dir / "dlib_face_resnet.int8-dynamic.onnx"
    q.quantize_dynamic(float_path, dynamic, weight_type=q.QuantType.QUInt8)
    prepped = out_dir / "dlib_face_resnet.prep.onnx"
    q.quant_pre_process(str(float_path), str(prepped), skip_symbolic_shape=True)
    static = out_dir / "dlib_face_resnet.int8-qdq.onnx"
    q.quantize_static(
        prepped,
        static,
        _Calibration(calib),
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
    )
    return {"int8_dynamic": dynamic, "int8_static_qdq": static}


def _latencies(session: Any, chips: Array, runs: int) -> dict[str, dict[str, float]]:
    one, two = chips[:1].astype(np.float32), chips[:2].astype(np.float32)
    return {
        "batch1": _percentiles(lambda: session.run(None, {INPUT_NAME: one}), runs),
        "batch2": _percentiles(lambda: session.run(None, {INPUT_NAME: two}), runs),
    }


def main() -> None:
    import dlib

    args = _args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="dlib_onnx_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    float_path = out_dir / "dlib_face_resnet.onnx"
    report: dict[str, Any] = {"sha256": convert_dlib_resnet(args.dat, float_path)}
    chips = _chips(args.faces, args.landmarks, args.n + args.calib)
    evaluate, calib = chips[: args.n], chips[args.n :]

    net = dlib.face_recognition_model_v1(str(args.dat))
    reference = np.array([net.compute_face_descriptor(c) for c in evaluate], dtype=np.float64)
    report["latency_ms"] = {
        "dlib_compute_face_descriptor": _percentiles(
            lambda: net.compute_face_descriptor(evaluate[0]), max(10, args.runs // 2)
        )
    }
    models = {"float": float_path, **_quantise(float_path, out_dir, calib)}
    float_emb: Array | None = None
    report["accuracy"] = {}
    for name, path in models.items():
        session = _session(path, args.threads)
        report["latency_ms"][name] = _latencies(session, evaluate, args.runs)
        emb = _embed(session, evaluate)
        float_emb = emb if float_emb is None else float_emb
        report["accuracy"][name] = {
            "vs_dlib": _compare(emb, reference),
            "vs_float_onnx": _compare(emb, float_emb),
            "file_mb": round(path.stat().st_size / 2**20, 1),
        }
    report["setup"] = {"faces": args.n, "calibration_faces": len(calib), "threads": args.threads}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

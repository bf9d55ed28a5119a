"""The TF.js graph-model translator (issue 19): a small synthetic graph using every supported
op, quantised weights included, equals a plain numpy reference; bad input is a typed error."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from shiren.errors import ErrorCode, ModelError
from shiren.models import tfjs_convert

Array = np.ndarray[Any, Any]
RNG = np.random.default_rng(7)


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*values: int) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def _node(name: str, op: str, inputs: list[str], **attr: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "input": inputs, "attr": attr}


def _conv_attrs(stride: int, padding: str, fused: list[str] | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "strides": _ints(1, stride, stride, 1),
        "padding": _s(padding),
        "data_format": _s("NHWC"),
        "dilations": _ints(1, 1, 1, 1),
    }
    if fused is not None:
        attrs["fused_ops"] = {"list": {"s": [_s(f)["s"] for f in fused]}}
    return attrs


# The weights: name → (array, stored as).  float16 and affine uint8 exercise de-quantisation.
W = {
    "w1": (RNG.normal(size=(3, 3, 3, 4)).astype(np.float32), "float16"),
    "b1": (RNG.normal(size=4).astype(np.float32), "float32"),
    "dw": (RNG.normal(size=(3, 3, 4, 2)).astype(np.float32), "float32"),
    "db": (RNG.normal(size=8).astype(np.float32), "float32"),
    "scale": (RNG.uniform(0.5, 1.5, size=8).astype(np.float32), "float32"),
    "offset": (RNG.normal(size=8).astype(np.float32), "float32"),
    "pads": (np.array([[0, 0], [1, 0], [0, 1], [0, 0]], dtype=np.int32), "int32"),
    "axis": (np.array(3, dtype=np.int32), "int32"),
    "w2": (RNG.normal(size=(1, 1, 16, 4)).astype(np.float32), "float32"),
    "axes": (np.array([1, 2], dtype=np.int32), "int32"),
    "shape": (np.array([-1, 64], dtype=np.int32), "int32"),
    "shape4": (np.array([-1, 4], dtype=np.int32), "int32"),
    "w3": (RNG.normal(size=(64, 5)).astype(np.float32), "uint8"),
    "b3": (RNG.normal(size=5).astype(np.float32), "float32"),
    "w4": (RNG.normal(size=(4, 5)).astype(np.float32), "float32"),
}


def _stored(arr: Array, kind: str) -> tuple[bytes, dict[str, Any], Array]:
    """The shard bytes, the manifest spec and the value TF.js would load."""
    spec: dict[str, Any] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    if kind == "float16":
        spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        q = arr.astype(np.float16)
        return q.tobytes(), spec, q.astype(np.float32)
    if kind == "uint8":
        low, high = float(arr.min()), float(arr.max())
        scale = (high - low) / 255.0
        q = np.round((arr - low) / scale).astype(np.uint8)
        spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
        return q.tobytes(), spec, (q.astype(np.float32) * np.float32(scale) + np.float32(low))
    return arr.tobytes(), spec, arr


def graph_model() -> tuple[bytes, dict[str, bytes], dict[str, Array]]:
    """A model.json, its one shard and the weights as loaded."""
    blobs, specs, loaded = [], [], {}
    for name, (arr, kind) in W.items():
        data, spec, value = _stored(arr, kind)
        blobs.append(data)
        specs.append({"name": name, **spec})
        loaded[name] = value
    consts = [_node(n, "Const", []) for n in W]
    nodes = [
        *consts,
        _node(
            "x",
            "Placeholder",
            [],
            shape={"shape": {"dim": [{"size": "-1"}, {"size": "9"}, {"size": "9"}, {"size": "3"}]}},
        ),
        _node(
            "c1", "_FusedConv2D", ["x", "w1", "b1"], **_conv_attrs(2, "SAME", ["BiasAdd", "Relu6"])
        ),
        _node(
            "d1",
            "FusedDepthwiseConv2dNative",
            ["c1", "dw", "db"],
            **_conv_attrs(1, "SAME", ["BiasAdd", "Relu"]),
        ),
        _node("m1", "Mul", ["d1", "scale"]),
        _node("a1", "AddV2", ["m1", "offset", "^c1"]),
        _node("p1", "MaxPool", ["a1"], ksize=_ints(1, 2, 2, 1), **_conv_attrs(2, "SAME")),
        _node("pd", "Pad", ["p1", "pads"]),
        _node("ap", "AvgPool", ["pd"], ksize=_ints(1, 3, 3, 1), **_conv_attrs(1, "SAME")),
        _node("cc", "ConcatV2", ["ap", "pd", "axis"]),
        _node("c2", "Conv2D", ["cc", "w2"], **_conv_attrs(1, "VALID")),
        _node("mean", "Mean", ["c2", "axes"], keep_dims={"b": False}),
        _node("flat", "Reshape", ["c2", "shape"]),
        _node(
            "mm",
            "_FusedMatMul",
            ["flat", "w3", "b3"],
            fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}},
        ),
        _node("mm2", "MatMul", ["mean", "w4"]),
        _node("sum", "Add", ["mm", "mm2"]),
        _node("probs", "Softmax", ["sum"]),
        _node("sig", "Sigmoid", ["mean"]),
        _node("gap", "Mean", ["c2", "axes"], keep_dims={"b": True}),
        _node("gapflat", "Reshape", ["gap", "shape4"]),
        _node("Identity", "Identity", ["probs"]),
    ]
    spec = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "signature": {
            "inputs": {"x": {"name": "x:0"}},
            "outputs": {
                "probs": {"name": "Identity:0"},
                "sig": {"name": "sig:0"},
                "gap": {"name": "gapflat"},
            },
        },
        "weightsManifest": [{"paths": ["g.bin"], "weights": specs}],
    }
    return json.dumps(spec).encode(), {"g.bin": b"".join(blobs)}, loaded


# A plain numpy reference of the same graph (NHWC, TF's padding rules).


def _same(x: Array, k: int, s: int, value: float = 0.0) -> Array:
    pads = []
    for n in x.shape[1:3]:
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def _conv(x: Array, w: Array, s: int, same: bool) -> Array:
    k = w.shape[0]
    x = _same(x, k, s) if same else x
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            out += x[:, i : i + s * oh : s, j : j + s * ow : s, :] @ w[i, j]
    return out


def _depthwise(x: Array, w: Array) -> Array:
    k, c, m = w.shape[0], w.shape[2], w.shape[3]
    x = _same(x, k, 1)
    oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = np.zeros((x.shape[0], oh, ow, c * m), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            patch = x[:, i : i + oh, j : j + ow, :, None] * w[i, j]  # (N, H, W, C, M)
            out += patch.reshape(*patch.shape[:3], c * m)
    return out


def _pool(x: Array, k: int, s: int, kind: str) -> Array:
    padded = _same(x, k, s, -np.inf if kind == "max" else 0.0)
    ones = _same(np.ones_like(x), k, s)
    oh, ow = (padded.shape[1] - k) // s + 1, (padded.shape[2] - k) // s + 1
    windows = [
        padded[:, i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)
    ]
    if kind == "max":
        return np.asarray(np.max(windows, axis=0))
    counts = [ones[:, i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)]
    return np.asarray(np.sum(windows, axis=0) / np.sum(counts, axis=0))


def reference(x: Array, w: dict[str, Array]) -> tuple[Array, Array, Array]:
    c1 = np.clip(_conv(x, w["w1"], 2, True) + w["b1"], 0, 6)
    d1 = np.maximum(_depthwise(c1, w["dw"]) + w["db"], 0)
    a1 = d1 * w["scale"] + w["offset"]
    p1 = _pool(a1, 2, 2, "max")
    pd = np.pad(p1, w["pads"])
    cc = np.concatenate([_pool(pd, 3, 1, "avg"), pd], axis=3)
    c2 = _conv(cc, w["w2"], 1, False)
    mean = c2.mean(axis=(1, 2))
    mm = np.maximum(c2.reshape(-1, 64) @ w["w3"] + w["b3"], 0)
    z = mm + mean @ w["w4"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), 1.0 / (1.0 + np.exp(-mean)), mean


def test_a_graph_of_every_supported_op_equals_the_numpy_reference() -> None:
    model_json, shards, loaded = graph_model()
    model = tfjs_convert.translate(model_json, shards, producer="test")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("x", ["N", 9, 9, 3])]
    x = RNG.random((3, 9, 9, 3), dtype=np.float32)
    probs, sig, gap = session.run(["probs", "sig", "gap"], {"x": x})
    want_probs, want_sig, want_mean = reference(x.astype(np.float64), loaded)
    np.testing.assert_allclose(probs, want_probs, atol=2e-5)
    np.testing.assert_allclose(sig, want_sig, atol=2e-5)
    np.testing.assert_allclose(gap, want_mean, atol=2e-5)  # Mean with keep_dims, then Reshape


def test_quantised_weights_are_widened_as_tfjs_loads_them() -> None:
    model_json, shards, loaded = graph_model()
    spec = json.loads(model_json)
    weights = tfjs_convert.read_weights(spec["weightsManifest"], shards)
    assert set(weights) == set(W)
    for name, value in loaded.items():
        assert weights[name].dtype == value.dtype
        np.testing.assert_array_equal(weights[name], value)
    assert np.abs(weights["w3"] - W["w3"][0]).max() < 0.02  # uint8: about (max − min) / 510


def test_the_translation_is_deterministic() -> None:
    model_json, shards, _ = graph_model()
    first = tfjs_convert.translate(model_json, shards, producer="t").SerializeToString(
        deterministic=True
    )
    second = tfjs_convert.translate(model_json, shards, producer="t").SerializeToString(
        deterministic=True
    )
    assert first == second


def _edited(edit: Any) -> tuple[bytes, dict[str, bytes]]:
    model_json, shards, _ = graph_model()
    spec = json.loads(model_json)
    edit(spec, shards)
    return json.dumps(spec).encode(), shards


def _set_op(spec: dict[str, Any], name: str, op: str) -> None:
    next(n for n in spec["modelTopology"]["node"] if n["name"] == name)["op"] = op


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s, b: _set_op(s, "sig", "Erf"), "op Erf is not supported"),
        (lambda s, b: b.clear(), "weight shard 'g.bin' is missing"),
        (lambda s, b: b.update({"g.bin": b["g.bin"][:-4]}), "runs past the end"),
        (lambda s, b: b.update({"g.bin": b["g.bin"] + b"\0"}), "bytes left"),
        (lambda s, b: s.update(format="layers-model"), "not a graph model"),
        (
            lambda s, b: s["weightsManifest"][0]["weights"][0].update(dtype="string"),
            "unsupported dtype",
        ),
        (lambda s, b: s["signature"]["outputs"].clear(), "a signature with outputs"),
        (lambda s, b: _set_op(s, "w4", "Placeholder"), "MatMul needs a 2-D input"),
    ],
)
def test_what_it_cannot_translate_is_a_typed_error(edit: Any, message: str) -> None:
    model_json, shards = _edited(edit)
    with pytest.raises(ModelError) as err:
        tfjs_convert.translate(model_json, shards, producer="test")
    assert err.value.code is ErrorCode.MODEL_INVALID
    assert message in str(err.value)

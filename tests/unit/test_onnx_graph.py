"""``shiren.models.onnx_graph.prelu_as_minmax``: PReLU spelled out gives the same values bit for
bit (MiniFASNet itself: ``tests/test_minifasnet.py``), keeps the graph's names, and leaves a
graph without PReLU alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from shiren.errors import ModelError
from shiren.models.onnx_embedder import make_session
from shiren.models.onnx_graph import ZERO, prelu_as_minmax


def _model(slope: np.ndarray, *, prelu: bool = True) -> onnx.ModelProto:
    """x [N, 3, 4, 4] → Conv 1x1 → PRelu(slope) → Add(x) → y (a PReLU between other nodes)."""
    weight = np.random.default_rng(1).normal(0, 1, (3, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv")]
    if prelu:
        nodes.append(helper.make_node("PRelu", ["c", "slope"], ["p"], name="act"))
    else:
        nodes.append(helper.make_node("Relu", ["c"], ["p"], name="act"))
    nodes.append(helper.make_node("Add", ["p", "x"], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(slope, "slope")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, path: Path, x: np.ndarray, **kw: bool) -> np.ndarray:
    onnx.save(model, str(path))
    out = make_session(path, **kw).run(["y"], {"x": x})[0]
    return np.asarray(out)


@pytest.mark.parametrize(
    "slope",
    [
        np.array([0.25, -0.5, 3.0], dtype=np.float32).reshape(3, 1, 1),  # per channel
        np.array([0.1], dtype=np.float32),  # one slope for all
    ],
)
def test_same_bits_as_prelu(tmp_path: Path, slope: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, (5, 3, 4, 4)).astype(np.float32)
    x[0, 0, 0, :] = [0.0, -0.0, 1e-40, -1e-40]  # zeros of both signs and subnormals
    x[1, 1] = 3.0e38  # near the largest float
    plain = _run(_model(slope), tmp_path / "a.onnx", x)
    fast = _run(_model(slope), tmp_path / "b.onnx", x, prelu_as_minmax=True)
    assert np.array_equal(plain, fast)
    assert (plain < 0).any()  # both sides of the kink were exercised
    assert (plain > 0).any()


def test_rewrite_keeps_names_and_order() -> None:
    model = prelu_as_minmax(_model(np.full((3, 1, 1), 0.2, dtype=np.float32)))
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Conv", "Max", "Min", "Mul", "Add", "Add"]
    last = model.graph.node[4]
    assert last.name == "act"
    assert list(last.output) == ["p"]  # what follows still finds it
    assert ZERO in {i.name for i in model.graph.initializer}
    onnx.checker.check_model(model)


def test_graph_without_prelu_is_left_alone() -> None:
    model = _model(np.zeros(1, dtype=np.float32), prelu=False)
    before = model.SerializeToString()
    assert prelu_as_minmax(model).SerializeToString() == before


def test_a_name_clash_is_refused_and_a_bad_file_is_typed(tmp_path: Path) -> None:
    model = _model(np.zeros(1, dtype=np.float32))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), ZERO))
    with pytest.raises(ValueError, match="already has"):
        prelu_as_minmax(model)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError) as err:
        make_session(bad, prelu_as_minmax=True)
    assert err.value.code == "model.invalid"

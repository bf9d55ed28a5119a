"""In-memory rewrites of an ONNX graph before onnxruntime runs it (the file and its pinned sha256
stay as they are).

:func:`prelu_as_minmax`: every ``PRelu`` node becomes ``Max(x, 0) + slope · Min(x, 0)``.  The
values are the same bit for bit — for each element one of the two terms is an exact zero (or
``slope · -0.0``), and ``x + 0`` and ``0 + s·x`` are exact — but onnxruntime's CPU ``PRelu``
kernel with a per-channel slope is slow: on one core MiniFASNetV2 took 7.1 ms a patch with it
and 5.7 ms rewritten, MiniFASNetV1SE 7.1 and 5.7 (80×80 face patches, raw 0–255 pixels as the
adapter feeds them; ``Relu`` − slope · ``Relu(−x)`` was 5.9–6.0), and the two-member
ensemble's live score of one face (crops and resizing included) 13.7–14.2 ms against 11.4–12.1
(``scripts/bench_prelu.py``, the two ways alternated in one process on one core; the per-model
figures were one-off).
MobileFaceNet's translation already spells its PReLU out in element-wise ops (and folding them
back into ``PRelu`` made it slower: docs/LIVENESS.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

ZERO = "shiren.prelu.zero"
"""The scalar 0 the rewritten nodes share."""


def prelu_as_minmax(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every ``PRelu`` node spelled ``Max(x, 0) + slope · Min(x, 0)``, in place
    (and returned).  Node order is kept (the graph stays topologically sorted); a model without
    ``PRelu`` is returned untouched."""
    graph = model.graph
    if not any(node.op_type == "PRelu" for node in graph.node):
        return model
    if ZERO in {init.name for init in graph.initializer}:
        raise ValueError(f"the graph already has an initializer named {ZERO!r}")
    graph.initializer.append(numpy_helper.from_array(np.zeros((), dtype=np.float32), ZERO))
    nodes: list[onnx.NodeProto] = []
    for k, node in enumerate(graph.node):
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        base = f"{node.name or node.output[0]}.{k}"
        pos, neg, scaled = f"{base}.pos", f"{base}.neg", f"{base}.neg_scaled"
        nodes += [
            helper.make_node("Max", [x, ZERO], [pos], name=pos),
            helper.make_node("Min", [x, ZERO], [neg], name=neg),
            helper.make_node("Mul", [neg, slope], [scaled], name=scaled),
            helper.make_node("Add", [pos, scaled], list(node.output), name=node.name),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


__all__ = ["ZERO", "prelu_as_minmax"]

"""One score convention everywhere: a *similarity*, higher = more alike.

* ``cosine``: the cosine of the angle between two templates, in [-1, 1].
* ``euclidean``: ``1 - ||a - b||``, so that dlib's customary distance threshold 0.6 becomes a
  similarity threshold of 0.4.  It can be negative for very different faces.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from shiren.core.geometry import FloatArray

Metric = Literal["cosine", "euclidean"]


def similarity(a: FloatArray, b: FloatArray, metric: Metric) -> float:
    """Similarity of two ``(D,)`` templates under ``metric`` (higher = more alike)."""
    return float(similarity_matrix(a[None, :], b[None, :], metric)[0, 0])


def similarity_matrix(a: FloatArray, b: FloatArray, metric: Metric) -> FloatArray:
    """``(N, D)`` × ``(M, D)`` → ``(N, M)`` similarities, computed with matrix products."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if metric == "cosine":
        na = np.linalg.norm(a64, axis=1, keepdims=True)
        nb = np.linalg.norm(b64, axis=1, keepdims=True)
        out = (a64 / np.maximum(na, 1e-12)) @ (b64 / np.maximum(nb, 1e-12)).T
    elif metric == "euclidean":
        sq = (a64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :] - 2.0 * a64 @ b64.T
        out = 1.0 - np.sqrt(np.maximum(sq, 0.0))
    else:
        raise ValueError(f"unknown metric {metric!r}")
    result: FloatArray = out.astype(np.float32)
    return result


def paired_similarity(a: FloatArray, b: FloatArray, metric: Metric) -> FloatArray:
    """Row-wise similarity of two ``(N, D)`` arrays → ``(N,)``."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if metric == "cosine":
        num = (a64 * b64).sum(1)
        den = np.maximum(np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1), 1e-12)
        cosine: FloatArray = (num / den).astype(np.float32)
        return cosine
    if metric == "euclidean":
        euclid: FloatArray = (1.0 - np.linalg.norm(a64 - b64, axis=1)).astype(np.float32)
        return euclid
    raise ValueError(f"unknown metric {metric!r}")

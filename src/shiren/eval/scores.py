"""Score and label arrays: the types and the input checks shared by the metric modules.

``scores`` is a 1-D float64 array of shape ``(N,)``, a similarity (higher = more alike);
``-inf`` is legal (a pair rejected whatever the threshold), ``NaN`` (a failed pair: resolve it
with :func:`shiren.eval.metrics.apply_failure_policy` first) and ``+inf`` are refused.
``labels`` is a 1-D bool array of shape ``(N,)``, ``True`` = genuine (same person).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
ScoresLike = Sequence[float | None] | npt.NDArray[np.floating]
"""Scores as given by a caller: a sequence where ``None`` marks a failed pair, or an array."""


def split_checked(scores: ScoresLike, labels: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    """Validated ``(scores, labels)``, both of shape ``(N,)``, with both classes present."""
    s = check_scores(scores, "scores")
    y = as_labels(labels, s.shape[0])
    if not y.any() or y.all():
        raise ValueError("need at least one genuine and one impostor pair")
    return s, y


def check_scores(scores: ScoresLike, name: str) -> FloatArray:
    """``scores`` as a non-empty ``(N,)`` float64 array without NaN or ``+inf``."""
    s = as_float_array(scores)
    if s.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN: apply a failure policy first")
    if np.isposinf(s).any():
        raise ValueError(f"{name} contains +inf, which is not a similarity")
    return s


def as_float_array(scores: ScoresLike) -> FloatArray:
    """``scores`` as a ``(N,)`` float64 array, ``None`` becoming ``NaN``."""
    if isinstance(scores, np.ndarray):
        arr = scores.astype(np.float64)
    else:
        arr = np.array([math.nan if v is None else v for v in scores], dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {arr.shape}")
    return arr


def as_labels(labels: npt.ArrayLike, n: int) -> BoolArray:
    """``labels`` as a ``(n,)`` bool array; booleans or 0/1 integers are accepted."""
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {arr.shape}")
    if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
        raise ValueError("labels must be booleans or 0/1")
    return arr.astype(np.bool_)

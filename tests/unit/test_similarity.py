"""One score convention: higher = more alike, for every metric and every entry point."""

from __future__ import annotations

import numpy as np
import pytest

from shiren.core.similarity import paired_similarity, similarity, similarity_matrix


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_entry_points_agree_and_order_is_right(metric: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 8)).astype(np.float32)
    b = a + rng.normal(scale=0.01, size=a.shape).astype(np.float32)
    c = rng.normal(size=(5, 8)).astype(np.float32)
    matrix = similarity_matrix(a, c, metric)  # type: ignore[arg-type]
    paired = paired_similarity(a, c, metric)  # type: ignore[arg-type]
    np.testing.assert_allclose(np.diag(matrix), paired, atol=1e-5)
    assert similarity(a[0], c[0], metric) == pytest.approx(float(paired[0]), abs=1e-5)  # type: ignore[arg-type]
    near = paired_similarity(a, b, metric)  # type: ignore[arg-type]
    assert np.all(near > paired)


def test_known_values() -> None:
    x = np.array([1.0, 0.0], dtype=np.float32)
    y = np.array([0.0, 1.0], dtype=np.float32)
    assert similarity(x, x, "cosine") == pytest.approx(1.0)
    assert similarity(x, y, "cosine") == pytest.approx(0.0)
    assert similarity(x, y, "euclidean") == pytest.approx(1.0 - np.sqrt(2.0))

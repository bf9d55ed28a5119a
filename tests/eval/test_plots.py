"""ROC/DET plots write PNG files; the probit matches known normal quantiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shiren.eval.metrics import roc_curve
from shiren.eval.plots import plot_det, plot_roc, probit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_roc_writes_png(tmp_path: Path) -> None:
    roc = roc_curve([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2, 0.1, 0.0], [1] * 4 + [0] * 6)
    out = plot_roc(roc, tmp_path / "sub" / "roc.png", label="fixture")
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_plot_det_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {}
    for name, shift in (("female", 2.0), ("male", 3.0)):
        scores = np.concatenate((rng.normal(shift, 1, 200), rng.normal(0, 1, 300)))
        curves[name] = roc_curve(scores, np.arange(500) < 200)
    out = plot_det(curves, tmp_path / "det.png", title="cohorts")
    assert out.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="at least one curve"):
        plot_det({}, tmp_path / "empty.png")


def test_probit_known_quantiles() -> None:
    p = np.array([1e-6, 1e-4, 0.01, 0.025, 0.5, 0.975, 0.99, 1 - 1e-4])
    expected = [
        -4.753424308822899,
        -3.719016485455709,
        -2.326347874040841,
        -1.959963984540054,
        0.0,
        1.959963984540054,
        2.326347874040841,
        3.719016485455709,
    ]
    np.testing.assert_allclose(probit(p), expected, atol=1e-9)
    with pytest.raises(ValueError, match="strictly between"):
        probit(np.array([0.0]))


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, shiren.eval.plots; sys.exit('matplotlib' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0

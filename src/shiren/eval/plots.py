"""ROC and DET plots as PNG files.

matplotlib is imported inside the functions and drives a ``Figure`` through the Agg canvas
directly: nothing is imported at module import time, pyplot's global state is never touched, so
plotting is safe in a server thread or a headless CI job.

* ROC: TAR (= 1 - FNMR) against FAR (= FMR) on a logarithmic FAR axis, the usual view for face
  verification, where the low-FAR end matters.
* DET (Martin et al., 1997; ISO/IEC 19795-1): FNMR against FMR, both on normal-deviate
  (probit) axes, so curves of normally distributed scores are straight lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shiren.eval.metrics import Roc, auc
from shiren.eval.scores import FloatArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_DET_TICKS = (1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99)
_DPI = 120

# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9), refined by
# one Halley step; https://web.archive.org/web/20151030215612/http://home.online.no/~pjacklam/notes/invnorm/
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
    1.0,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00, 1.0)
_P_LOW = 0.02425


def plot_roc(roc: Roc, path: Path, *, label: str = "", title: str = "ROC") -> Path:
    """Write the ROC curve of ``roc`` to ``path`` (PNG) and return ``path``.

    FAR is drawn on a log axis from half a count (``0.5 / n_impostor``) to 1; points with
    FAR = 0 cannot be drawn there and are left out.
    """
    fig, ax = _new_figure()
    shown = roc.far > 0
    name = f"{label} " if label else ""
    ax.plot(
        roc.far[shown],
        roc.tar[shown],
        lw=1.5,
        label=f"{name}AUC={auc(roc):.4f} (G={roc.n_genuine}, I={roc.n_impostor})",
    )
    ax.set_xscale("log")
    ax.set_xlim(0.5 / roc.n_impostor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("False accept rate (FMR)")
    ax.set_ylabel("True accept rate (1 - FNMR)")
    return _finish(fig, ax, title, path)


def plot_det(curves: Mapping[str, Roc], path: Path, *, title: str = "DET") -> Path:
    """Write a DET plot of one or more labelled curves (e.g. one per cohort) to ``path`` (PNG).

    Both axes are normal deviates; rates of 0 or 1 are drawn at half a count from the edge
    (``0.5 / n``) so that every curve stays on the plot.  Returns ``path``.
    """
    if not curves:
        raise ValueError("plot_det needs at least one curve")
    fig, ax = _new_figure()
    floor = min(0.5 / min(r.n_genuine, r.n_impostor) for r in curves.values())
    for name, roc in curves.items():
        fmr = np.clip(roc.far, 0.5 / roc.n_impostor, 1 - 0.5 / roc.n_impostor)
        fnmr = np.clip(roc.fnmr, 0.5 / roc.n_genuine, 1 - 0.5 / roc.n_genuine)
        ax.plot(
            probit(fmr),
            probit(fnmr),
            lw=1.5,
            label=f"{name} (G={roc.n_genuine}, I={roc.n_impostor})",
        )
    _det_axes(ax, max(floor, _DET_TICKS[0]))
    ax.set_xlabel("False match rate (FMR)")
    ax.set_ylabel("False non-match rate (FNMR)")
    return _finish(fig, ax, title, path)


def probit(p: FloatArray) -> FloatArray:
    """The standard normal quantile of each probability in ``p`` (shape kept), ``p`` in (0, 1)."""
    p = np.asarray(p, dtype=np.float64)
    if ((p <= 0) | (p >= 1)).any():
        raise ValueError("probit needs probabilities strictly between 0 and 1")
    x = np.where(p < _P_LOW, _tail(p), np.where(p > 1 - _P_LOW, -_tail(1 - p), _centre(p)))
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    err = 0.5 * erfc(-x / math.sqrt(2.0)) - p
    u = err * math.sqrt(2.0 * math.pi) * np.exp(x * x / 2.0)
    return np.asarray(x - u / (1.0 + x * u / 2.0), dtype=np.float64)


def _tail(p: FloatArray) -> FloatArray:
    q = np.sqrt(-2.0 * np.log(np.minimum(p, _P_LOW)))
    return np.polyval(_C, q) / np.polyval(_D, q)


def _centre(p: FloatArray) -> FloatArray:
    q = p - 0.5
    r = q * q
    return np.asarray(np.polyval(_A, r) * q / np.polyval(_B, r), dtype=np.float64)


def _det_axes(ax: Axes, floor: float) -> None:
    ticks = [t for t in _DET_TICKS if floor <= t <= 1 - floor]
    limits = probit(np.array([floor, 1 - floor]))
    positions = probit(np.array(ticks))
    labels = [f"{100 * t:g}%" for t in ticks]
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.set_xticks(positions, labels)
    ax.set_yticks(positions, labels)
    ax.set_aspect("equal")


def _new_figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 6.0), dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself to the figure: Agg, whatever the global backend
    return fig, fig.add_subplot()


def _finish(fig: Figure, ax: Axes, title: str, path: Path) -> Path:
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path

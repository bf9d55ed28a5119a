"""Realistic synthetic 128-d templates for index benchmarks and tests.

Random unit vectors spread evenly over the sphere are the *easiest* case for an ANN index and
nothing like real face templates: dlib ResNet templates crowd into a narrow cone (two different
people typically have cosine ≈ 0.9, hence the shipped threshold of ≈ 0.97) with most variance in
a few directions.  :class:`GalleryModel` draws identity centres around a common mean direction
with a decaying spectrum of spreads, and captures around a centre with a smaller one:

    centre  = r·μ + U·(s_between ⊙ z),     capture = normalise(centre + U·(s_within ⊙ z'))

:meth:`GalleryModel.fit` estimates μ, U and both spectra from real templates grouped by person
(e.g. the LFW template cache); :meth:`GalleryModel.default` uses a random basis with the scalar
summary of such a fit (docs/FRAUD.md), so no data set ships with the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shiren.fraud.index import DIM

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

# Matched to the LFW View 2 templates (standard profile; 4,281 people, 1,559 with 2+ images):
# spectra s_k = scale * k ** -decay chosen so that synthetic impostor cosines (median 0.86,
# 99.9th percentile 0.91; LFW 0.84 / 0.93) and genuine cosines (median 0.96; LFW 0.96) sit where
# real ones do.  Real tails are heavier (LFW genuine 1st percentile 0.915, here 0.95).
# See docs/FRAUD.md.
DEFAULT_R = 1.0
DEFAULT_BETWEEN = (0.1, 0.4)
DEFAULT_WITHIN = (0.026, 0.0)


@dataclass(frozen=True, slots=True)
class GalleryModel:
    mean: F64
    basis: F64
    between: F64
    within: F64
    r: float = 1.0

    @classmethod
    def default(cls, dim: int = DIM, seed: int = 20261202) -> GalleryModel:
        rng = np.random.default_rng(seed)
        mean = rng.normal(size=dim)
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        k = np.arange(1, dim + 1, dtype=np.float64)
        return cls(
            mean / np.linalg.norm(mean),
            basis,
            DEFAULT_BETWEEN[0] * k ** -DEFAULT_BETWEEN[1],
            DEFAULT_WITHIN[0] * k ** -DEFAULT_WITHIN[1],
            DEFAULT_R,
        )

    @classmethod
    def fit(cls, by_person: Mapping[str, Sequence[NDArray[np.floating]]]) -> GalleryModel:
        """Fit from real unit templates grouped by person (people with 2+ templates give the
        within-person spread)."""
        centres, residuals = [], []
        for vecs in by_person.values():
            m = np.asarray(vecs, dtype=np.float64)
            c = m.mean(axis=0)
            centres.append(c)
            if len(m) > 1:
                residuals.extend(m - c)
        cm = np.asarray(centres)
        mean = cm.mean(axis=0)
        r = float(np.linalg.norm(mean))
        _, s, vt = np.linalg.svd(cm - mean, full_matrices=False)
        basis = vt.T
        between = s / np.sqrt(max(1, len(cm) - 1))
        res = np.asarray(residuals) @ basis
        within = res.std(axis=0) * np.sqrt(2.0)  # residuals around a mean of ~2 shrink by √2
        return cls(mean / r, basis, between, within, r)

    def summary(self) -> dict[str, float]:
        """The scalar summary :meth:`default` uses: log-log fits of both spectra."""
        k = np.log(np.arange(1, len(self.between) + 1))
        out: dict[str, float] = {"r": self.r}
        for name, s in (("between", self.between), ("within", self.within)):
            slope, icpt = np.polyfit(k, np.log(np.maximum(s, 1e-9)), 1)
            out[f"{name}_scale"] = float(np.exp(icpt))
            out[f"{name}_decay"] = float(-slope)
        return out

    def centres(self, n: int, rng: np.random.Generator) -> F64:
        z = rng.normal(size=(n, len(self.mean))) * self.between
        return np.asarray(self.r * self.mean + z @ self.basis.T, dtype=np.float64)

    def captures(self, centres: F64, rng: np.random.Generator) -> F32:
        z = rng.normal(size=centres.shape) * self.within
        v = centres + z @ self.basis.T
        out: F32 = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        return out

    def sample(self, n: int, rng: np.random.Generator) -> F32:
        """One capture each of ``n`` new people."""
        return self.captures(self.centres(n, rng), rng)

    def probes(self, captures: F32, rng: np.random.Generator) -> F32:
        """Another capture of the same people (approximately: noise around the capture)."""
        return self.captures(captures.astype(np.float64), rng)


__all__ = ["GalleryModel"]

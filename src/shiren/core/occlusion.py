"""Occlusion scores from colour statistics of mesh regions, relative to the person's own skin.

No model is behind this: a face mask, sunglasses, a hat brim or hair are found because the mesh
region they cover stops looking like *this person's* bare skin.  The reference skin is taken from
whichever of the upper cheeks and the lower forehead look like skin at all (a generic skin-chroma
prior, Chai & Ngan 1999), so a mask over the cheeks or a fringe over the forehead does not become
the reference.  Skin is compared in normalised chromaticity ``(r, g) = (R, G) / (R + G + B)``,
which shading changes little, plus a broad luma band — so a shadow stays skin, dark hair does not,
and the test works the same for light and dark skin.

All scores are fractions or ratios in the normalised face crop (:mod:`shiren.core.regions`).
They are heuristics; see ``data/quality.toml`` for how well they separate on real images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core import regions as rg

FloatImage = npt.NDArray[np.float32]
BoolArray = rg.BoolArray

# Generic skin box in YCrCb (Chai & Ngan, IEEE TCSVT 9(4):551-564, 1999); only used to decide
# which reference patches are bare skin.
_SKIN_CR = (133.0, 173.0)
_SKIN_CB = (77.0, 127.0)
_MIN_REFERENCE_PX = 30
_MIN_PATCH_SKIN = 0.5
# Own skin: luma within this band around the reference (shading), and not too dark to judge.
_LUMA_BAND = (0.5, 2.0)
_MIN_LUMA = 12.0
_SPREAD_FACTOR = 4.0
_CHROMA_MIN_LUMA = 0.15


@dataclass(frozen=True, slots=True)
class SkinModel:
    """The person's reference skin: median luma (0–255), chromaticity ``r``, ``g``, and the
    median chromaticity distance of the reference pixels from it (their own spread: larger for
    dark or noisy skin, where JPEG chroma noise weighs more)."""

    luma: float
    r: float
    g: float
    spread: float


@dataclass(frozen=True, slots=True)
class _Planes:
    luma: FloatImage
    r: FloatImage
    g: FloatImage
    rgb: npt.NDArray[np.uint8]
    generic_skin: BoolArray

    def lab(self, where: BoolArray) -> FloatImage:
        """CIE L*a*b* of the pixels under ``where`` (``(K, 3)``): converted on demand, because a
        whole-crop float Lab conversion was the gate's single most expensive step."""
        picked = self.rgb[where].astype(np.float32).reshape(-1, 1, 3) / 255.0
        return np.asarray(cv2.cvtColor(picked, cv2.COLOR_RGB2Lab), dtype=np.float32).reshape(-1, 3)


def _planes(rgb: npt.NDArray[np.uint8]) -> _Planes:
    f = rgb.astype(np.float32)
    total = f.sum(axis=2) + 1e-3
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    cr, cb = ycc[..., 1], ycc[..., 2]
    generic = (cr >= _SKIN_CR[0]) & (cr <= _SKIN_CR[1]) & (cb >= _SKIN_CB[0]) & (cb <= _SKIN_CB[1])
    return _Planes(ycc[..., 0], f[..., 0] / total, f[..., 1] / total, rgb, generic)


def skin_reference(crop: rg.FaceCrop, planes: _Planes | None = None) -> SkinModel | None:
    """Median luma and chromaticity of the generic-skin pixels of those reference patches (both
    upper cheeks, lower forehead) that are at least half generic skin; ``None`` if too few."""
    p = planes if planes is not None else _planes(crop.pixels)
    chosen = np.zeros(crop.shape, dtype=bool)
    for name in ("right_cheek", "left_cheek", "forehead"):
        patch = rg.region_mask(crop, name)
        if patch.any() and p.generic_skin[patch].mean() >= _MIN_PATCH_SKIN:
            chosen |= patch & p.generic_skin
    if chosen.sum() < _MIN_REFERENCE_PX:
        return None
    r, g = float(np.median(p.r[chosen])), float(np.median(p.g[chosen]))
    spread = float(np.median(np.hypot(p.r[chosen] - r, p.g[chosen] - g)))
    return SkinModel(float(np.median(p.luma[chosen])), r, g, spread)


def _skin_chroma(p: _Planes, ref: SkinModel, tolerance: float) -> BoolArray:
    """Chromaticity within ``max(tolerance, _SPREAD_FACTOR × ref.spread)`` of the reference, on
    pixels bright enough for chromaticity to mean something."""
    tolerance = max(tolerance, _SPREAD_FACTOR * ref.spread)
    bright_enough = p.luma >= max(_MIN_LUMA, _CHROMA_MIN_LUMA * ref.luma)
    close = np.hypot(p.r - ref.r, p.g - ref.g) <= tolerance
    return np.asarray(close & bright_enough, dtype=bool)


def _own_skin(chroma_ok: BoolArray, p: _Planes, ref: SkinModel) -> BoolArray:
    """Own skin: skin chromaticity and luma within :data:`_LUMA_BAND` × the reference."""
    return chroma_ok & (p.luma >= _LUMA_BAND[0] * ref.luma) & (p.luma <= _LUMA_BAND[1] * ref.luma)


def occlusion_scores(crop: rg.FaceCrop, chroma_tolerance: float) -> dict[str, float]:
    """Scores (empty when no reference skin is found; needs ``crop.mesh``):

    * ``mask_skin_fraction``: own skin in the lower face (nose to chin, lips excluded);
    * ``lips_contrast``: CIE76 ΔE between the lips and the rest of the lower face (a mask makes
      them one fabric; a beard leaves red lips against hair);
    * ``brow_band_skin_fraction_{right,left}``: own skin in the strip above each eyebrow;
    * ``upper_orbit_skin_fraction_{right,left}``: own skin between eyebrow and eye;
    * ``orbit_luma_ratio_{right,left}``: median luma of the eye socket / reference luma;
    * ``orbit_skin_chroma_fraction_{right,left}``: skin *chromaticity* (any luma) around the eye —
      a shadow keeps it, a dark lens does not;
    * ``eye_luma_p90_ratio_{right,left}``: 90th-percentile luma inside the eye / reference
      (sclera and catch-lights are bright unless a dark lens covers them).
    """
    p = _planes(crop.pixels)
    ref = skin_reference(crop, p)
    if ref is None:
        return {}
    chroma_ok = _skin_chroma(p, ref, chroma_tolerance)
    own = _own_skin(chroma_ok, p, ref)
    scores = {"skin_ref_luma": ref.luma, "skin_ref_spread": ref.spread, **_lower_face(crop, p, own)}
    for side in ("right", "left"):
        scores.update(_eye_side(crop, p, (own, chroma_ok), ref, side))
    return scores


def _lower_face(crop: rg.FaceCrop, p: _Planes, own: BoolArray) -> dict[str, float]:
    lips = rg.region_mask(crop, "lips")
    lower = rg.region_mask(crop, "lower_face") & ~_dilate(lips, 2)
    contrast = 0.0
    if lips.any() and lower.any():
        contrast = float(
            np.linalg.norm(np.median(p.lab(lips), axis=0) - np.median(p.lab(lower), axis=0))
        )
    return {"mask_skin_fraction": _fraction(own, lower), "lips_contrast": contrast}


def _eye_side(
    crop: rg.FaceCrop, p: _Planes, skin: tuple[BoolArray, BoolArray], ref: SkinModel, side: str
) -> dict[str, float]:
    own, chroma_ok = skin
    orbit = rg.region_mask(crop, f"{side}_orbit")
    eye = rg.region_mask(crop, f"{side}_eye")
    assert crop.mesh is not None  # region_mask would have raised
    eye_y = float(crop.mesh[list(rg.REGIONS[f"{side}_eye"]), 1].mean())
    around = orbit & ~_dilate(eye, 1)
    upper = around.copy()
    upper[int(max(0.0, eye_y)) :, :] = False
    luma = p.luma[orbit]
    eye_luma = p.luma[eye]
    return {
        f"brow_band_skin_fraction_{side}": _fraction(
            own, rg.region_mask(crop, f"{side}_brow_band")
        ),
        f"upper_orbit_skin_fraction_{side}": _fraction(own, upper),
        f"orbit_skin_chroma_fraction_{side}": _fraction(chroma_ok, around),
        f"orbit_luma_ratio_{side}": float(np.median(luma)) / max(ref.luma, 1.0)
        if luma.size
        else 1.0,
        f"eye_luma_p90_ratio_{side}": float(np.percentile(eye_luma, 90)) / max(ref.luma, 1.0)
        if eye_luma.size
        else 1.0,
    }


def _fraction(values: BoolArray, where: BoolArray) -> float:
    return float(values[where].mean()) if where.any() else 1.0


def _dilate(mask: BoolArray, radius_px: int) -> BoolArray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    return np.asarray(cv2.dilate(mask.astype(np.uint8), kernel), dtype=bool)


__all__ = ["SkinModel", "occlusion_scores", "skin_reference"]

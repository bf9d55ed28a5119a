"""Survey the capture-quality metrics on a set of images, to justify ``data/quality.toml``.

For every image: detect, choose the applicant's face and run the mesh exactly as the production
pipeline does (the models and face policy of the default :class:`shiren.verifier.VerifierConfig`:
the BlazeFace cascade - short-range, full-range only when it finds nothing - and Face Mesh
attention, ``largest_central``), then :func:`shiren.core.quality.assess_quality` with the
default thresholds.  Prints each metric's distribution (n, p0, p1, p5, p25, p50, p75, p95, p99,
p100) and the rate of each reason, with the files behind each reason (``--show N``).

``--degrade`` also applies the synthetic degradations defined here (:data:`DEGRADATIONS`, also
used by ``tests/integration/test_quality_real.py``) to every image with a mesh and prints, per
degradation, how often its expected reason fired and how often the detector lost the face.

    .venv/bin/python scripts/quality_survey.py \\
        '/work/shared/data/lfw_view2/lfw-deepfunneled/*/*_0001.jpg' --every 5 --limit 400 --show 5
    .venv/bin/python scripts/quality_survey.py /work/shared/data/nuaa_pad/ClientRaw
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from shiren.core.choice import choose_face
from shiren.core.geometry import BBox, Detection, FloatArray, RGBImage
from shiren.core.image import load_image
from shiren.core.quality import QualityConfig, QualityReport, assess_quality, no_face_report
from shiren.models.protocols import FaceDetector, FaceLandmarker
from shiren.models.registry import build_model
from shiren.reasons import ReasonCode
from shiren.verifier import VerifierConfig

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)


# ---- synthetic degradations -------------------------------------------------------------------


def _gamma(img: RGBImage, gamma: float) -> RGBImage:
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
    return np.asarray(lut[img], dtype=np.uint8)


def _box_median_luma(img: RGBImage, box: BBox) -> float:
    b = box.clipped(img.shape[1], img.shape[0])
    part = img[int(b.y0) : int(b.y1), int(b.x0) : int(b.x1)]
    return float(np.median(cv2.cvtColor(part, cv2.COLOR_RGB2GRAY))) if part.size else 128.0


def _scaled(img: RGBImage, factor: float) -> RGBImage:
    return np.asarray(np.clip(img.astype(np.float32) * factor, 0, 255), dtype=np.uint8)


def darken(img: RGBImage, box: BBox, target: float = 22.0) -> RGBImage:
    """Underexpose: gamma 1.5, then scale so the face box's median luma is ``target``."""
    g = _gamma(img, 1.5)
    return _scaled(g, target / max(_box_median_luma(g, box), 1.0))


def overexpose(img: RGBImage, box: BBox, target: float = 235.0) -> RGBImage:
    """Overexpose: scale so the face box's median luma is ``target`` (highlights clip)."""
    return _scaled(img, target / max(_box_median_luma(img, box), 1.0))


def backlight(img: RGBImage, box: BBox) -> RGBImage:
    """A dim face (box median 38) in front of a bright window: outside a head-sized ellipse the
    image is blended 85 % towards white."""
    dark = darken(img, box, 38.0).astype(np.float32)
    mask = np.zeros(img.shape[:2], np.float32)
    cx, cy = box.center
    axes = (int(box.width * 0.8), int(box.height * 1.0))
    cv2.ellipse(mask, (int(cx), int(cy - 0.1 * box.height)), axes, 0, 0, 360, 1.0, -1)
    soft = np.asarray(cv2.GaussianBlur(mask, (0, 0), box.width * 0.06), np.float32)[..., None]
    out = dark * soft + (0.15 * dark + 0.85 * 250.0) * (1 - soft)
    return np.asarray(out.clip(0, 255), dtype=np.uint8)


def haze(img: RGBImage) -> RGBImage:
    """Low contrast: 15 % of the image over flat grey (a fogged lens)."""
    return np.asarray(img.astype(np.float32) * 0.15 + 120.0, dtype=np.uint8)


def blur(img: RGBImage, box: BBox, fraction: float = 0.03) -> RGBImage:
    """Gaussian blur with sigma = ``fraction`` of the face box width."""
    return np.asarray(cv2.GaussianBlur(img, (0, 0), max(0.5, fraction * box.width)), dtype=np.uint8)


def shrink(img: RGBImage, factor: float = 0.5, canvas: int = 2) -> RGBImage:
    """The photo scaled by ``factor`` in the middle of a grey canvas ``canvas`` times as large."""
    h, w = img.shape[:2]
    small = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    out = np.full((h * canvas, w * canvas, 3), 128, np.uint8)
    y, x = (out.shape[0] - small.shape[0]) // 2, (out.shape[1] - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def cut_off(img: RGBImage, box: BBox, fraction: float = 0.3) -> RGBImage:
    """Shift the photo left so ``fraction`` of the face box leaves the frame (black fill)."""
    dx = int(box.x0 + fraction * box.width)
    out = np.zeros_like(img)
    out[:, : img.shape[1] - dx] = img[:, dx:]
    return out


def rotate(img: RGBImage, box: BBox, degrees: float) -> RGBImage:
    """Rotate about the face centre; positive ``degrees`` is counter-clockwise in the image."""
    matrix = cv2.getRotationMatrix2D(box.center, degrees, 1.0)
    size = (img.shape[1], img.shape[0])
    return np.asarray(
        cv2.warpAffine(img, matrix, size, borderMode=cv2.BORDER_REFLECT), dtype=np.uint8
    )


def mirror(img: RGBImage) -> RGBImage:
    return np.ascontiguousarray(img[:, ::-1])


def _lit(img: RGBImage, mesh: FloatArray, colour: tuple[int, int, int]) -> npt.NDArray[np.float32]:
    """An occluder's colour lit like the face: scaled by the cheeks' luma / 170 (in [0.25, 1])."""
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    pts = np.round(mesh[[50, 280, 101, 330], :2]).astype(int)
    xs = pts[:, 0].clip(0, luma.shape[1] - 1)
    ys = pts[:, 1].clip(0, luma.shape[0] - 1)
    scale = float(np.clip(np.median(luma[ys, xs]) / 170.0, 0.25, 1.0))
    return np.array(colour, np.float32) * scale


def _paint(
    img: RGBImage,
    region: npt.NDArray[np.bool_],
    colour: npt.NDArray[np.float32],
    seed: int,
    shade: bool,
) -> RGBImage:
    """Fill ``region`` with ``colour`` plus fabric noise (and a top-to-bottom shading if asked)."""
    rng = np.random.default_rng(seed)
    fill = np.broadcast_to(colour, img.shape).astype(np.float32)
    if shade:
        fill = fill * np.linspace(1.0, 0.85, img.shape[0], dtype=np.float32)[:, None, None]
    fill = fill + rng.normal(0.0, 3.0, img.shape).astype(np.float32)
    out = img.astype(np.float32)
    out[region] = fill[region]
    return np.asarray(out.clip(0, 255), dtype=np.uint8)


def _polygon(img: RGBImage, points: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    canvas = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


# Mesh outline of a surgical mask: nose bridge, under both eyes, down the jaw, under the chin.
MASK_OUTLINE = (93, 117, 118, 119, 197, 348, 347, 346, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                152, 148, 176, 149, 150, 136, 172, 58, 132)  # fmt: skip
SURGICAL_BLUE = (150, 200, 230)
MASK_WHITE = (235, 235, 235)


def paint_mask(
    img: RGBImage, mesh: FloatArray, colour: tuple[int, int, int] = SURGICAL_BLUE
) -> RGBImage:
    """A face mask over the mesh's lower face, grown 6 % around the nose tip."""
    centre = mesh[[1], :2].astype(np.float64)
    outline = centre + (mesh[list(MASK_OUTLINE), :2].astype(np.float64) - centre) * 1.06
    return _paint(img, _polygon(img, outline), _lit(img, mesh, colour), seed=0, shade=True)


def _eyes(mesh: FloatArray) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    right = mesh[[33, 133, 159, 145], :2].astype(np.float64).mean(axis=0)
    left = mesh[[263, 362, 386, 374], :2].astype(np.float64).mean(axis=0)
    return right, left, float(np.linalg.norm(left - right))


def paint_sunglasses(img: RGBImage, mesh: FloatArray) -> RGBImage:
    """Two dark elliptical lenses (0.84 x 0.6 inter-ocular distances) and a bridge."""
    right, left, iod = _eyes(mesh)
    angle = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    canvas = np.zeros(img.shape[:2], np.uint8)
    for centre in (right, left):
        c = (int(centre[0]), int(centre[1] - 0.03 * iod))
        cv2.ellipse(canvas, c, (int(0.42 * iod), int(0.3 * iod)), angle, 0, 360, 1, -1)
    thickness = max(1, int(0.05 * iod))
    cv2.line(canvas, (int(right[0]), int(right[1])), (int(left[0]), int(left[1])), 1, thickness)
    return _paint(img, canvas.astype(bool), _lit(img, mesh, (25, 25, 30)), seed=1, shade=False)


def paint_hat(img: RGBImage, mesh: FloatArray, box: BBox) -> RGBImage:
    """A dark navy band from the top of the image down to just below both eyebrows."""
    _, _, iod = _eyes(mesh)
    brows = mesh[[46, 53, 52, 65, 55, 285, 295, 282, 283, 276], :2].astype(np.float64)
    brows[:, 1] += 0.06 * iod
    x_left, x_right = box.x0 - 0.4 * box.width, box.x1 + 0.4 * box.width
    corners = [[x_right, brows[-1, 1]], [x_right, -10.0], [x_left, -10.0], [x_left, brows[0, 1]]]
    outline = np.vstack([brows, corners])
    return _paint(img, _polygon(img, outline), _lit(img, mesh, (35, 40, 70)), seed=2, shade=False)


def paint_hair_over_eye(img: RGBImage, mesh: FloatArray) -> RGBImage:
    """90 dark strands falling from above the brow across the subject's right eye."""
    rng = np.random.default_rng(3)
    right, _, iod = _eyes(mesh)
    top = float(mesh[[105, 66, 10], 1].min()) - 0.3 * iod
    colour = _lit(img, mesh, (32, 24, 20))
    out = img.copy()
    for _ in range(90):
        x0 = right[0] + rng.uniform(-0.6, 0.6) * iod
        x1 = x0 + rng.uniform(-0.25, 0.25) * iod
        y1 = right[1] + rng.uniform(0.3, 0.6) * iod
        shade = tuple(int(v) for v in colour + rng.integers(-4, 4, 3))
        cv2.line(
            out,
            (int(x0), int(top)),
            (int(x1), int(y1)),
            shade,
            max(1, int(0.035 * iod)),
            cv2.LINE_AA,
        )
    return out


def collage(first: RGBImage, second: RGBImage) -> RGBImage:
    """Two photos side by side at the same height."""
    h = min(first.shape[0], second.shape[0])
    parts = [cv2.resize(p, (int(p.shape[1] * h / p.shape[0]), h)) for p in (first, second)]
    return np.ascontiguousarray(np.hstack(parts))


Degrade = Callable[[RGBImage, Detection, FloatArray], RGBImage]
_R = ReasonCode
DEGRADATIONS: dict[str, tuple[ReasonCode, Degrade]] = {
    "darken": (_R.QUALITY_TOO_DARK, lambda i, f, m: darken(i, f.box)),
    "overexpose": (_R.QUALITY_OVEREXPOSED, lambda i, f, m: overexpose(i, f.box)),
    "backlight": (_R.QUALITY_BACKLIGHT, lambda i, f, m: backlight(i, f.box)),
    "haze": (_R.QUALITY_LOW_CONTRAST, lambda i, f, m: haze(i)),
    "blur": (_R.QUALITY_BLURRED, lambda i, f, m: blur(i, f.box)),
    "shrink": (_R.QUALITY_FACE_TOO_SMALL, lambda i, f, m: shrink(i)),
    "cut_off": (_R.QUALITY_FACE_CUT_OFF, lambda i, f, m: cut_off(i, f.box)),
    "roll_30": (_R.QUALITY_POSE_ROLL, lambda i, f, m: rotate(i, f.box, -30.0)),
    "mask_blue": (_R.QUALITY_OCCLUDED_MASK, lambda i, f, m: paint_mask(i, m)),
    "mask_white": (_R.QUALITY_OCCLUDED_MASK, lambda i, f, m: paint_mask(i, m, MASK_WHITE)),
    "sunglasses": (_R.QUALITY_OCCLUDED_SUNGLASSES, lambda i, f, m: paint_sunglasses(i, m)),
    "hat": (_R.QUALITY_OCCLUDED_HAT, lambda i, f, m: paint_hat(i, m, f.box)),
    "hair_over_eye": (_R.QUALITY_OCCLUDED_HAIR_EYES, lambda i, f, m: paint_hair_over_eye(i, m)),
}


# ---- running the gate ---------------------------------------------------------------------------


@dataclass
class Analysis:
    faces: list[Detection]
    face: Detection | None
    mesh: FloatArray | None
    report: QualityReport


class Gate:
    """Detector + mesh + quality gate, as the verifier runs them: the models and face policy are
    built from the default :class:`~shiren.verifier.VerifierConfig`, the same way
    :meth:`shiren.verifier.Verifier.from_config` builds them, so the survey cannot drift from
    production (the embedder, irrelevant here, is not loaded)."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        production = VerifierConfig()
        self.detector: FaceDetector = build_model(
            production.detector, min_score=production.min_face_score
        )
        self.mesher: FaceLandmarker = build_model(production.landmarker)
        self.policy = production.face_policy
        self.config = config or QualityConfig.default()

    def analyse(self, pixels: RGBImage) -> Analysis:
        faces = self.detector.detect(pixels)
        if not faces:
            return Analysis(faces, None, None, no_face_report(pixels, self.config))
        face = choose_face(faces, pixels.shape[1], pixels.shape[0], self.policy)
        mesh = self.mesher.landmarks(pixels, face.box)
        report = assess_quality(pixels, face, mesh, all_faces=faces, config=self.config)
        return Analysis(faces, face, mesh, report)


def _paths(patterns: list[str], every: int, limit: int | None) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        else:
            found += sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    found = found[::every]
    return found[:limit] if limit else found


def _survey(
    gate: Gate, paths: list[Path], degrade: bool
) -> tuple[dict[str, list[float]], dict[str, list[str]], Counter[str]]:
    metrics: dict[str, list[float]] = defaultdict(list)
    by_reason: dict[str, list[str]] = defaultdict(list)
    degraded: Counter[str] = Counter()
    for path in paths:
        pixels = load_image(path).pixels
        result = gate.analyse(pixels)
        for key, value in result.report.metrics.items():
            metrics[key].append(value)
        for reason in result.report.reasons or ("(passed)",):
            by_reason[str(reason)].append(str(path))
        if degrade and result.face is not None and result.mesh is not None:
            degraded.update(_degrade_one(gate, pixels, result.face, result.mesh))
    return metrics, by_reason, degraded


def _degrade_one(gate: Gate, pixels: RGBImage, face: Detection, mesh: FloatArray) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name, (expected, make) in DEGRADATIONS.items():
        report = gate.analyse(make(pixels, face, mesh)).report
        counts[f"{name}:n"] += 1
        counts[f"{name}:no_face"] += ReasonCode.QUALITY_NO_FACE in report.reasons
        counts[f"{name}:fired"] += expected in report.reasons
    return counts


def _print(
    metrics: dict[str, list[float]], by_reason: dict[str, list[str]], total: int, show: int
) -> None:
    print(f"images: {total}")
    print("metric".ljust(34) + "n".rjust(5) + "".join(f"p{p}".rjust(9) for p in _PERCENTILES))
    for key in sorted(metrics):
        values = np.asarray(metrics[key], dtype=np.float64)
        cells = "".join(f"{v:9.3f}" for v in np.percentile(values, _PERCENTILES))
        print(key.ljust(34) + str(values.size).rjust(5) + cells)
    print("\nreason rates:")
    for reason, files in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"  {reason:32s} {len(files):5d}  {100.0 * len(files) / max(total, 1):6.2f} %")
        for name in files[:show] if reason != "(passed)" else []:
            print(f"      {name}")


def _print_degraded(counts: Counter[str]) -> None:
    print("\nsynthetic degradations (expected reason fired / face still detected):")
    for name, (expected, _) in DEGRADATIONS.items():
        n, lost, fired = counts[f"{name}:n"], counts[f"{name}:no_face"], counts[f"{name}:fired"]
        found = n - lost
        rate = 100.0 * fired / max(found, 1)
        line = f"  {name:14s} {expected!s:30s} {fired:4d}/{found:<4d} {rate:6.1f} %"
        print(f"{line}   (face lost: {lost}/{n})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    parser.add_argument("--every", type=int, default=1, help="keep every n-th file (after sorting)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many files")
    parser.add_argument("--show", type=int, default=0, help="list this many files per reason")
    parser.add_argument(
        "--degrade", action="store_true", help="also run the synthetic degradations"
    )
    parser.add_argument("--config", type=Path, default=None, help="a JSON object of overrides")
    parser.add_argument(
        "--json", type=Path, default=None, help="write raw metrics and reasons here"
    )
    args = parser.parse_args(argv)
    overrides = json.loads(args.config.read_text()) if args.config else {}
    paths = _paths(args.images, max(1, args.every), args.limit)
    if not paths:
        print("no images matched", file=sys.stderr)
        return 2
    gate = Gate(QualityConfig.from_mapping(overrides))
    metrics, by_reason, degraded = _survey(gate, paths, args.degrade)
    _print(metrics, by_reason, len(paths), args.show)
    if args.degrade:
        _print_degraded(degraded)
    if args.json:
        args.json.write_text(json.dumps({"metrics": metrics, "reasons": by_reason}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The capture-quality gate on real faces with the real models (BlazeFace + Face Mesh).

* Clean frontal images pass (in aggregate, >= 90 %), and no single reason fires often on them.
* Real defects found in the data are reported: sunglasses, caps, bangs over the brows, a second
  person, closed eyes, a turned head, a washed-out webcam session.
* Synthetic degradations of clean sources (defined in ``scripts/quality_survey.py``, which also
  measures their detection rates) produce their reason: darken, overexpose, backlight, haze,
  blur, shrink into a big canvas, shift out of frame, roll, blue and white masks, sunglasses,
  hat, hair over an eye; mirroring flips the yaw sign; a two-face collage is ``multiple_faces``
  while a small face on a "poster" behind is not.

The clean set was chosen by eye at full resolution before the thresholds were final: LFW
``*_0001`` images that are frontal, unobstructed and alone in the frame (regular glasses, beards,
smiles kept), and NUAA live frames at fixed positions (first, middle, last) of every session except
the two lighting-condition-06 sessions (washed out) and 0006_00_00_01 (a fringe over the brows).
Three LFW picks were moved to the real defects once the survey ran the production detector (the
BlazeFace cascade, whose short-range model sees faces that the full-range one missed): on a second
look, Lee_Soo-hyuck, Andrew_Weissmann and Garry_Kasparov each have another person of about the
same size in the frame (other-face ratio 0.97, 0.71, 0.73), so they were never "alone".
Re-run the survey on it with::

    .venv/bin/python -c \\
        "import tests.integration.test_quality_real as t; print(*t.clean_paths())" \\
        | xargs .venv/bin/python scripts/quality_survey.py --degrade
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from shiren.core.image import load_image
from shiren.reasons import ReasonCode
from tests.conftest import SHARED, require

DATA = SHARED
LFW = DATA / "lfw_view2" / "lfw-deepfunneled"
NUAA = DATA / "nuaa_pad" / "ClientRaw"
SILENT = DATA / "silent_face_samples"
SURVEY = Path(__file__).resolve().parents[2] / "scripts" / "quality_survey.py"
R = ReasonCode

CLEAN_LFW = (
    "Al_Sharpton",
    "Alfonso_Soriano",
    "Art_Lopez",
    "Begum_Khaleda_Zia",
    "Bobby_Kielty",
    "Brian_Mulroney",
    "Celso_Amorim",
    "Claire_De_Gryse",
    "Craig_Morgan",
    "Felix_Sanchez",
    "Gilberto_Simoni",
    "Harry_Kalas",
    "Hilmi_Ozkok",
    "Jack_Valenti",
    "James_Williams",
    "Joe_Crede",
    "John_Kerr",
    "Joseph_Lopez",
    "Kaisser_Bazan",
    "Kelli_White",
    "Kirk_Douglas",
    "Linda_Lingle",
    "Luis_Guzman",
    "Avril_Lavigne",
    "Billy_Sollie",
    "Brandon_Jones",
    "Bryant_Young",
    "Charlie_Garner",
    "Dan_Duquette",
    "Dave_McGinnis",
    "Dean_Barker",
    "Dick_Smothers",
    "Francis_Ricciardone",
    "Gwyneth_Paltrow",
    "Heidi_Klum",
    "Isaiah_Washington",
    "James_Butts",
    "Jane_Pauley",
    "Jerry_Falwell",
    "Jim_Piper",
    "John_Brady",
    "John_Rigas",
    "Kathie_Louise_Saunders",
    "Lesley_Flood",
    "Maggie_Smith",
    "Marsha_Thomason",
)
CLEAN_NUAA_SESSIONS = (
    "0001_00_00_02",
    "0002_01_00_01",
    "0003_01_00_01",
    "0004_01_00_01",
    "0004_01_00_02",
    "0005_00_00_01",
    "0005_00_00_02",
    "0006_00_00_02",
    "0007_00_00_01",
    "0007_01_00_01",
    "0007_01_00_02",
    "0007_01_05_03",
    "0008_00_00_02",
    "0009_01_00_01",
    "0009_01_00_02",
)
MIN_CLEAN_PASS_RATE = 0.90
MAX_SINGLE_REASON_RATE = 0.05


def clean_paths() -> list[Path]:
    """LFW clean picks, 3 NUAA frames per clean session (first, middle, last), both live phone
    photos of the Silent-Face samples."""
    paths = [LFW / name / f"{name}_0001.jpg" for name in CLEAN_LFW]
    for session in CLEAN_NUAA_SESSIONS:
        frames = sorted(NUAA.joinpath(session[:4]).glob(f"{session}_*.jpg"), key=_frame_number)
        paths += [frames[0], frames[len(frames) // 2], frames[-1]] if frames else []
    return [*paths, SILENT / "image_T1.jpg", SILENT / "image_T2.jpg"]


def _frame_number(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])


@cache
def _load_survey() -> ModuleType:
    """``scripts/quality_survey.py``, which defines the synthetic degradations and the gate."""
    spec = importlib.util.spec_from_file_location("shiren_quality_survey", SURVEY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def survey() -> ModuleType:
    require(DATA)
    return _load_survey()


@pytest.fixture(scope="module")
def gate(survey: ModuleType) -> Any:
    """Detector + mesh + gate, loaded once for the module."""
    return survey.Gate()


def _pixels(path: Path) -> np.ndarray[Any, Any]:
    return load_image(path).pixels


def _reasons(gate: Any, pixels: np.ndarray[Any, Any]) -> tuple[ReasonCode, ...]:
    return tuple(gate.analyse(pixels).report.reasons)


# ---- clean images -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_results(gate: Any) -> dict[str, tuple[ReasonCode, ...]]:
    return {path.name: _reasons(gate, _pixels(path)) for path in clean_paths()}


def test_clean_set_is_large_enough(clean_results: dict[str, tuple[ReasonCode, ...]]) -> None:
    assert len(clean_results) >= 90


def test_clean_frontal_images_pass(clean_results: dict[str, tuple[ReasonCode, ...]]) -> None:
    failed = {name: [str(r) for r in reasons] for name, reasons in clean_results.items() if reasons}
    rate = 1.0 - len(failed) / len(clean_results)
    assert rate >= MIN_CLEAN_PASS_RATE, failed


def test_no_reason_fires_often_on_clean_images(
    clean_results: dict[str, tuple[ReasonCode, ...]],
) -> None:
    counts = Counter(r for reasons in clean_results.values() for r in reasons)
    too_often = {
        str(r): n for r, n in counts.items() if n > MAX_SINGLE_REASON_RATE * len(clean_results)
    }
    assert not too_often


@pytest.mark.parametrize(
    "name", ["image_T1.jpg", "image_T2.jpg", "Gwyneth_Paltrow_0001.jpg", "Billy_Sollie_0001.jpg"]
)
def test_sources_of_the_degradations_pass_clean(
    clean_results: dict[str, tuple[ReasonCode, ...]], name: str
) -> None:
    assert clean_results[name] == ()


# ---- real defects in the data ------------------------------------------------------------------

REAL_DEFECTS = [
    (LFW / "Anil_Ramsook" / "Anil_Ramsook_0001.jpg", R.QUALITY_OCCLUDED_SUNGLASSES),
    (LFW / "Jimmy_Jimenez" / "Jimmy_Jimenez_0001.jpg", R.QUALITY_OCCLUDED_SUNGLASSES),
    (LFW / "Carla_Sullivan" / "Carla_Sullivan_0001.jpg", R.QUALITY_OCCLUDED_SUNGLASSES),
    (LFW / "Candie_Kung" / "Candie_Kung_0001.jpg", R.QUALITY_OCCLUDED_HAT),
    (LFW / "Jim_Parque" / "Jim_Parque_0001.jpg", R.QUALITY_OCCLUDED_HAT),
    (LFW / "Jorge_Arce" / "Jorge_Arce_0001.jpg", R.QUALITY_OCCLUDED_HAT),
    (LFW / "Don_Matthews" / "Don_Matthews_0001.jpg", R.QUALITY_OCCLUDED_HAT),
    (NUAA / "0006" / "0006_00_00_01_246.jpg", R.QUALITY_OCCLUDED_HAT),  # fringe over both brows
    (LFW / "Gro_Harlem_Brundtland" / "Gro_Harlem_Brundtland_0001.jpg", R.QUALITY_MULTIPLE_FACES),
    (LFW / "Marco_Irizarry" / "Marco_Irizarry_0001.jpg", R.QUALITY_MULTIPLE_FACES),
    # A second person of about the applicant's size next to or behind them (once in the clean set).
    (LFW / "Lee_Soo-hyuck" / "Lee_Soo-hyuck_0001.jpg", R.QUALITY_MULTIPLE_FACES),
    (LFW / "Andrew_Weissmann" / "Andrew_Weissmann_0001.jpg", R.QUALITY_MULTIPLE_FACES),
    (LFW / "Garry_Kasparov" / "Garry_Kasparov_0001.jpg", R.QUALITY_MULTIPLE_FACES),
    (NUAA / "0005" / "0005_00_00_01_374.jpg", R.QUALITY_EYES_CLOSED),
    (LFW / "Mark_Foley" / "Mark_Foley_0001.jpg", R.QUALITY_POSE_YAW),
    (NUAA / "0004" / "0004_01_06_03_0.jpg", R.QUALITY_OVEREXPOSED),
]


@pytest.mark.parametrize(
    ("path", "expected"), REAL_DEFECTS, ids=lambda v: getattr(v, "stem", str(v))
)
def test_real_defects_are_reported(gate: Any, path: Path, expected: ReasonCode) -> None:
    assert expected in _reasons(gate, _pixels(path))


# ---- synthetic degradations --------------------------------------------------------------------

SOURCES = [
    SILENT / "image_T2.jpg",  # phone selfie, 1617 x 2160
    SILENT / "image_T1.jpg",  # phone selfie, 640 x 480 with EXIF rotation
    NUAA / "0005" / "0005_00_00_02_0.jpg",  # webcam
    NUAA / "0007" / "0007_01_00_02_0.jpg",  # webcam, glasses
    LFW / "Gwyneth_Paltrow" / "Gwyneth_Paltrow_0001.jpg",  # pale skin
    LFW / "Billy_Sollie" / "Billy_Sollie_0001.jpg",  # dark skin
]


@pytest.fixture(scope="module")
def sources(gate: Any) -> dict[str, Any]:
    found = {}
    for path in SOURCES:
        pixels = _pixels(path)
        analysis = gate.analyse(pixels)
        assert analysis.face is not None, path.name
        assert analysis.mesh is not None, path.name
        found[path.name] = (pixels, analysis)
    return found


def _cases() -> Iterator[Any]:
    for name in _load_survey().DEGRADATIONS:
        for path in SOURCES:
            yield pytest.param(name, path.name, id=f"{name}-{path.stem}")


@pytest.mark.parametrize(("degradation", "source"), list(_cases()))
def test_degradation_produces_its_reason(
    survey: ModuleType, gate: Any, sources: dict[str, Any], degradation: str, source: str
) -> None:
    expected, make = survey.DEGRADATIONS[degradation]
    pixels, clean = sources[source]
    reasons = _reasons(gate, make(pixels, clean.face, clean.mesh))
    if (degradation, source) == ("sunglasses", "image_T1.jpg"):
        # image_T1 is a head turned 22 deg (limit 25); on the dark lenses the mesh reads 25.7 deg
        # and the gate asks to face the camera first: by design occlusion is not judged on a
        # turned head (quality.assess_quality).  The capture is still refused, for that reason.
        expected = R.QUALITY_POSE_YAW
    assert expected in reasons, [str(r) for r in reasons]


@pytest.mark.parametrize("source", [p.name for p in SOURCES])
def test_mirroring_flips_yaw_and_roll(
    survey: ModuleType, gate: Any, sources: dict[str, Any], source: str
) -> None:
    pixels, clean = sources[source]
    flipped = gate.analyse(survey.mirror(pixels)).report.metrics
    yaw, yaw_mirrored = clean.report.metrics["yaw_deg"], flipped["yaw_deg"]
    # Neither the detector nor the mesh is exactly mirror-equivariant: on the frontal image_T2
    # the short-range BlazeFace box moves by 7 % of its width when the photo is mirrored, and
    # yaw reads -2.7 and -2.6 deg (-1.6 / -1.8 with the full-range box; -2.7 / -1.7 with the
    # mesh run on the exactly mirrored box): about 2.5 deg of noise per reading on a frontal
    # face, hence 6 deg on the sum.  The sign must flip once the head is clearly turned.
    assert abs(yaw + yaw_mirrored) < 6.0 + 0.2 * abs(yaw)
    if abs(yaw) >= 6.0:
        assert np.sign(yaw) == -np.sign(yaw_mirrored)
    assert abs(clean.report.metrics["roll_deg"] + flipped["roll_deg"]) < 3.0


@pytest.mark.parametrize("source", [p.name for p in SOURCES[:3]])
def test_clockwise_rotation_raises_roll(
    survey: ModuleType, gate: Any, sources: dict[str, Any], source: str
) -> None:
    pixels, clean = sources[source]
    turned = gate.analyse(survey.rotate(pixels, clean.face.box, -12.0)).report
    assert turned.metrics["roll_deg"] - clean.report.metrics["roll_deg"] == pytest.approx(
        12.0, abs=3.0
    )


def test_two_faces_side_by_side_are_multiple_faces(survey: ModuleType, gate: Any) -> None:
    pair = survey.collage(
        _pixels(LFW / "Kirk_Douglas" / "Kirk_Douglas_0001.jpg"),
        _pixels(LFW / "Jane_Pauley" / "Jane_Pauley_0001.jpg"),
    )
    assert R.QUALITY_MULTIPLE_FACES in _reasons(gate, pair)


@pytest.mark.parametrize(("size_ratio", "is_second_applicant"), [(0.4, False), (0.7, True)])
def test_a_small_face_behind_is_not_a_second_applicant(
    gate: Any, sources: dict[str, Any], size_ratio: float, is_second_applicant: bool
) -> None:
    """A "poster" face pasted into a corner of the selfie counts only when it is big.

    The poster is scaled by its face box as the gate's own detector measures it (box sizes are a
    convention of the detector).  The production cascade may not see the small poster at all: its
    short-range model misses a face this far below its range (about 10 px at its 128 px input),
    and the full-range model only runs when the short-range one finds nothing, which is not the
    case with the applicant in front.  Then there is one face and no second applicant; when the
    poster is seen, its size ratio must read as pasted."""
    pixels, clean = sources["image_T2.jpg"]
    poster = _pixels(LFW / "Kirk_Douglas" / "Kirk_Douglas_0001.jpg")
    poster_face = gate.analyse(poster).face
    assert poster_face is not None
    side = int(clean.face.box.width * size_ratio / poster_face.box.width * poster.shape[1])
    composite = pixels.copy()
    composite[10 : 10 + side, 10 : 10 + side] = cv2.resize(poster, (side, side))
    analysis = gate.analyse(composite)
    assert len(analysis.faces) in ((2,) if is_second_applicant else (1, 2))
    if len(analysis.faces) == 2:
        assert analysis.report.metrics["other_face_ratio"] == pytest.approx(size_ratio, abs=0.05)
    assert (R.QUALITY_MULTIPLE_FACES in analysis.report.reasons) is is_second_applicant


def test_report_serialises_in_both_languages(
    gate: Any, sources: dict[str, Any], survey: ModuleType
) -> None:
    pixels, clean = sources["image_T2.jpg"]
    report = gate.analyse(survey.darken(pixels, clean.face.box)).report
    zh, en = report.to_dict("zh-CN"), report.to_dict("en")
    assert zh["reasons"][0]["code"] == en["reasons"][0]["code"] == "quality.too_dark"
    assert "光线" in zh["reasons"][0]["message"]
    assert "light" in en["reasons"][0]["message"]

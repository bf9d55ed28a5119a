"""The bring-your-own ONNX detector: letterboxing, mapping back to image pixels, score filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shiren.models.manifest import load_user_manifest
from shiren.models.protocols import FaceDetector
from shiren.models.registry import build_model
from tests.support.tiny_onnx import write_detector_manifest


def _detector(tmp_path: Path, **kwargs: float) -> object:
    extra = load_user_manifest(write_detector_manifest(tmp_path, box=(32, 48, 96, 80)))
    return build_model("tiny-detector", extra=extra, **kwargs)


def test_box_maps_back_through_the_letterbox(tmp_path: Path) -> None:
    detector = _detector(tmp_path, min_score=0.1)
    assert isinstance(detector, FaceDetector)
    image = np.full((100, 200, 3), 200, dtype=np.uint8)  # 200×100 → scale 0.64, pad_y 32
    (found,) = detector.detect(image)  # type: ignore[attr-defined]
    assert found.box.x0 == pytest.approx(32 / 0.64)
    assert found.box.y0 == pytest.approx((48 - 32) / 0.64)
    assert found.box.x1 == pytest.approx(96 / 0.64)
    assert found.box.y1 == pytest.approx((80 - 32) / 0.64)
    assert 0.5 < found.score < 1.0  # mean of a letterboxed bright image, padding included


def test_low_scores_are_dropped(tmp_path: Path) -> None:
    detector = _detector(tmp_path, min_score=0.5)
    dark = np.zeros((100, 200, 3), dtype=np.uint8)
    assert detector.detect(dark) == []  # type: ignore[attr-defined]

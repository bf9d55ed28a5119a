"""The real default pipeline on real photos: orientation, big phone photos, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.conftest import SHARED, lfw, require


def test_exif_rotated_phone_photo_is_upright(real_verifier: Any) -> None:
    # image_T1.jpg is stored sideways with EXIF Orientation = 6 (DATA.md).
    analysis = real_verifier.analyze(require(SHARED / "silent_face_samples" / "image_T1.jpg"))
    roll = analysis.quality.metrics.get("roll_deg")
    assert roll is not None
    assert abs(roll) < 30


def test_large_phone_photo_is_decoded_small_and_judged(real_verifier: Any) -> None:
    analysis = real_verifier.analyze(require(SHARED / "silent_face_samples" / "image_T2.jpg"))
    assert max(analysis.image_size) <= 1920  # 1617×2160 decoded straight to ≤ 1920 px
    assert analysis.template.shape == (192,)  # MobileFaceNet, the shipped network


def test_templates_are_deterministic_and_input_type_free(real_verifier: Any) -> None:
    path = lfw("Abel_Pacheco", 1)
    first = real_verifier.template(path)
    again = real_verifier.template(path.read_bytes())
    from_array = real_verifier.template(real_verifier.decode(path))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, from_array, atol=1e-6)


def test_small_real_slice_is_verified_correctly(real_verifier: Any) -> None:
    from shiren.eval.pairs import limit_per_fold, read_pairs
    from shiren.thresholds import threshold_entry

    entry = threshold_entry(real_verifier.embedder.info.name, views=real_verifier.config.views)
    lfw_threshold = entry["by_far"]["1e-03"]
    # The shipped default protects the worst demographic cohort, so it is never below the
    # threshold LFW alone would give (docs/MODEL_CARD.md).
    assert real_verifier.threshold >= lfw_threshold
    at_lfw = real_verifier.with_config(threshold=lfw_threshold)
    pairs = limit_per_fold(read_pairs(require(SHARED / "lfw_view2" / "pairs.txt")), 4)[:20]
    images = SHARED / "lfw_view2" / "lfw-deepfunneled"
    correct = sum(at_lfw.compare(images / p.a, images / p.b).match == p.same for p in pairs)
    assert correct >= 19  # 99 % accuracy on all 6,000 pairs; 20 pairs allow one miss

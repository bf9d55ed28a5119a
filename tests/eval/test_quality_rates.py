"""Quality-gate rejections per cohort: golden numbers on a hand-checkable fixture."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shiren.eval.quality_rates import markdown, quality_by_cohort


@dataclass(frozen=True)
class L:
    path: str
    cohort: str


def test_counts_rates_and_ratios() -> None:
    labels = [L("a1", "A"), L("a2", "A"), L("a3", "A"), L("a4", "A"), L("b1", "B"), L("b2", "B")]
    outcomes: dict[str, list[str] | str] = {
        "a1": [],  # passed
        "a2": ["quality.too_dark"],
        "a3": ["quality.too_dark", "quality.blurred"],
        "a4": "face.not_found",  # no face: not in the denominator of gate rates
        "b1": [],
        "b2": ["quality.blurred"],
    }
    summary = quality_by_cohort(labels, outcomes)
    a, b = summary["cohorts"]["A"], summary["cohorts"]["B"]
    assert (a["images"], a["faces_found"]) == (4, 3)
    assert (a["rejected"]["k"], a["rejected"]["n"]) == (2, 3)
    assert a["by_reason"]["quality.too_dark"]["rate"] == pytest.approx(2 / 3)
    assert a["by_reason"]["quality.blurred"]["rate"] == pytest.approx(1 / 3)
    assert b["by_reason"]["quality.too_dark"]["k"] == 0
    assert b["by_reason"]["quality.blurred"]["rate"] == pytest.approx(1 / 2)
    # too_dark: best cohort B has 0 → unbounded; blurred: (1/2) / (1/3) = 1.5; rejected: (2/3)/(1/2)
    assert summary["ratio"]["quality.too_dark"] is None
    assert summary["ratio"]["quality.blurred"] == pytest.approx(1.5)
    assert summary["ratio"]["rejected"] == pytest.approx(4 / 3)
    # Clopper-Pearson for 1 of 2: (0.0126, 0.9874)
    low, high = b["by_reason"]["quality.blurred"]["ci95"]
    assert low == pytest.approx(0.01258, abs=1e-4)
    assert high == pytest.approx(0.98742, abs=1e-4)
    table = markdown(summary)
    assert "| A | 3 | 2/3 |" in table

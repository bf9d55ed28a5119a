"""Quality-gate rejections per cohort: a check that fires more often for one group (a "too dark"
rule on darker skin, say) is a fairness bug too.

Counts are per image: ``rejected`` = images the gate sent back for any reason, over the images in
which a face was found; ``by_reason`` = images carrying that reason code.  Rates carry exact 95 %
Clopper–Pearson intervals; ``ratio`` is worst / best over cohorts (null when the best is 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from shiren.eval.intervals import clopper_pearson


class _Labelled(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def cohort(self) -> str: ...


def _rate(k: int, n: int) -> dict[str, Any]:
    low, high = clopper_pearson(k, n) if n else (None, None)
    return {"rate": k / n if n else None, "k": k, "n": n, "ci95": [low, high]}


def quality_by_cohort(
    labels: Sequence[_Labelled], outcomes: Mapping[str, list[str] | str]
) -> dict[str, Any]:
    """Per cohort: images, faces found, rejected rate, and the rate of each reason code."""
    cohorts: dict[str, list[list[str] | str]] = {}
    for item in labels:
        if item.path in outcomes:
            cohorts.setdefault(item.cohort, []).append(outcomes[item.path])
    codes = sorted({c for v in outcomes.values() if isinstance(v, list) for c in v})
    rows = {name: _row(values, codes) for name, values in sorted(cohorts.items())}
    return {
        "cohorts": rows,
        "ratio": {
            code: _ratio(r["by_reason"][code]["rate"] for r in rows.values()) for code in codes
        }
        | {"rejected": _ratio(r["rejected"]["rate"] for r in rows.values())},
        "method": "per image; rates over images with a face found; 95 % Clopper-Pearson",
    }


def _row(values: Sequence[list[str] | str], codes: Sequence[str]) -> dict[str, Any]:
    acquired = [v for v in values if isinstance(v, list)]
    n = len(acquired)
    return {
        "images": len(values),
        "faces_found": n,
        "rejected": _rate(sum(1 for v in acquired if v), n),
        "by_reason": {code: _rate(sum(1 for v in acquired if code in v), n) for code in codes},
    }


def _ratio(rates: Iterable[float | None]) -> float | None:
    known = [r for r in rates if r is not None]
    if not known or min(known) == 0:
        return None
    return max(known) / min(known)


def markdown(summary: Mapping[str, Any], top: int = 6) -> str:
    """A Markdown table: rejected rate and the most frequent reasons per cohort."""
    totals: dict[str, int] = {}
    for row in summary["cohorts"].values():
        for code, rate in row["by_reason"].items():
            totals[code] = totals.get(code, 0) + int(rate["k"])
    codes = [c for c, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]
    head = (
        "| cohort | faces | rejected | "
        + " | ".join(c.removeprefix("quality.") for c in codes)
        + " |"
    )
    lines = [head, "|" + "---|" * (3 + len(codes))]
    for name, row in summary["cohorts"].items():
        cells = [f"{row['by_reason'][c]['k']}" for c in codes]
        rej = row["rejected"]
        lines.append(
            f"| {name} | {row['faces_found']} | {rej['k']}/{rej['n']} | " + " | ".join(cells) + " |"
        )
    ratio = summary["ratio"]
    lines.append("")
    lines.append(
        "worst/best ratio: "
        + ", ".join(f"{k}: {'unbounded' if v is None else f'{v:.2f}'}" for k, v in ratio.items())
    )
    return "\n".join(lines) + "\n"

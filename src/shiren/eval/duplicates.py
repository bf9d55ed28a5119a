"""Duplicate-identity detection measured on real faces: one person enrolling under several ID
numbers (``shiren eval duplicates``).

Protocol, on a labelled image set (LFW: the folder name is the person):

* every person with 2+ usable images enrols the **first** image (sorted) under one ID number:
  the gallery; people with a single image are split by a hash of their name into *distractors*
  (also enrolled, so the gallery is larger and harder) and *non-mated probes*;
* every **later** image of a gallery person is a *mated probe*: a new enrolment under another
  ID number that should be flagged as a duplicate of the first;
* each probe searches the gallery (the embedded HNSW index, k nearest; cosine, the verifier's
  score).  **Detection** at threshold t: the mate is among the hits with similarity ≥ t.
  **False hit** at t: a non-mated probe has any hit ≥ t (the rate a lender sees on honest new
  customers).  Mated probes that also hit someone else ≥ t are counted separately.

The threshold is chosen honestly by two-fold cross-validation over people (a hash of the name):
on one fold's non-mated probes, the lowest t with a false-hit rate ≤ the target; reported on the
other fold; both directions pooled.  The shipped policy threshold is reported too, as is the
detection rate an oracle threshold chosen on all probes would reach (labelled as such).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shiren.eval.intervals import clopper_pearson
from shiren.fraud.embedded import HnswIndex


@dataclass(slots=True)
class ProbeScores:
    """Per probe: the mate's similarity (or -inf when not a mated probe / not found) and the
    best similarity to anyone else in the gallery; the person's fold (0/1)."""

    mate: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)
    fold: list[int] = field(default_factory=list)
    mated: list[bool] = field(default_factory=list)


def _fold(person: str) -> int:
    return hashlib.sha256(person.encode()).digest()[0] & 1


def person_of(rel: str) -> str:
    return rel.replace("\\", "/").split("/")[0]


def split(
    templates: Mapping[str, np.ndarray[Any, Any]],
) -> tuple[dict[str, np.ndarray[Any, Any]], list[tuple[str, str]], dict[str, str]]:
    """Gallery (person → first template), probes (rel path, person), and the role of each
    image (``enrolled`` / ``mated_probe`` / ``distractor`` / ``non_mated_probe``)."""
    by_person: dict[str, list[str]] = defaultdict(list)
    for rel in sorted(templates):
        by_person[person_of(rel)].append(rel)
    gallery: dict[str, np.ndarray[Any, Any]] = {}
    probes: list[tuple[str, str]] = []
    role: dict[str, str] = {}
    for person, rels in sorted(by_person.items()):
        if len(rels) >= 2:
            gallery[person] = templates[rels[0]]
            role[rels[0]] = "enrolled"
            for rel in rels[1:]:
                probes.append((rel, person))
                role[rel] = "mated_probe"
        elif hashlib.sha256(b"d" + person.encode()).digest()[0] & 1:
            gallery[person] = templates[rels[0]]
            role[rels[0]] = "distractor"
        else:
            probes.append((rels[0], person))
            role[rels[0]] = "non_mated_probe"
    return gallery, probes, role


def score_probes(
    templates: Mapping[str, np.ndarray[Any, Any]], k: int = 10
) -> tuple[ProbeScores, int]:
    """Search every probe in an HNSW index of the gallery; returns scores and gallery size."""
    gallery, probes, _ = split(templates)
    index = HnswIndex(dim=len(next(iter(gallery.values()))))
    names = sorted(gallery)
    index.add_many(names, np.stack([gallery[p] for p in names]))
    out = ProbeScores()
    for rel, person in probes:
        hits = index.search(templates[rel], k)
        out.mate.append(max((h.similarity for h in hits if h.entry_id == person), default=-2.0))
        out.other.append(max((h.similarity for h in hits if h.entry_id != person), default=-2.0))
        out.fold.append(_fold(person))
        out.mated.append(person in gallery)
    return out, len(gallery)


def _threshold_for(other: np.ndarray[Any, Any], target: float) -> float:
    """The lowest threshold whose false-hit rate on these non-mated probes is ≤ target."""
    allowed = int(np.floor(target * len(other)))
    ranked = np.sort(other)[::-1]
    if allowed >= len(ranked):
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.inf))


def _rates(s: ProbeScores, t: float, mask: np.ndarray[Any, Any]) -> dict[str, Any]:
    mate = np.asarray(s.mate)
    other = np.asarray(s.other)
    mated = np.asarray(s.mated) & mask
    non = ~np.asarray(s.mated) & mask
    detected = int((mate[mated] >= t).sum())
    false_hits = int((other[non] >= t).sum())
    wrong = int((other[mated] >= t).sum())
    return {
        "threshold": round(t, 6),
        "detection": _rate(detected, int(mated.sum())),
        "false_hit": _rate(false_hits, int(non.sum())),
        "mated_probe_also_hit_other_person": _rate(wrong, int(mated.sum())),
    }


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n) if n else (0.0, 1.0)
    return {"count": k, "of": n, "rate": round(k / n, 6) if n else None, "ci95": [lo, hi]}


def duplicates_report(
    s: ProbeScores, gallery_size: int, policy_threshold: float, target: float = 1e-3
) -> dict[str, Any]:
    fold = np.asarray(s.fold)
    other = np.asarray(s.other)
    non = ~np.asarray(s.mated)
    everyone = np.ones(len(fold), dtype=bool)
    cv: dict[str, Any] = {}
    detected = mated_n = false_hits = non_n = 0
    for f in (0, 1):
        t = _threshold_for(other[non & (fold == f)], target)
        test = _rates(s, t, fold != f)
        cv[f"chosen_on_fold_{f}"] = test
        detected += test["detection"]["count"]
        mated_n += test["detection"]["of"]
        false_hits += test["false_hit"]["count"]
        non_n += test["false_hit"]["of"]
    oracle_t = _threshold_for(other[non], target)
    return {
        "gallery_size": gallery_size,
        "mated_probes": int(np.asarray(s.mated).sum()),
        "non_mated_probes": int(non.sum()),
        "target_false_hit_rate": target,
        "cross_validated": {
            "detection": _rate(detected, mated_n),
            "false_hit": _rate(false_hits, non_n),
            "folds": cv,
        },
        "at_policy_threshold": _rates(s, policy_threshold, everyone),
        "oracle_threshold_on_all_probes": _rates(s, oracle_t, everyone),
        "sweep": [_rates(s, t, everyone) for t in _sweep(oracle_t, policy_threshold)],
    }


def _sweep(oracle: float, policy: float) -> list[float]:
    """Thresholds around the oracle's and the policy's: networks score on different scales
    (dlib's cosines crowd near 1, MobileFaceNet's spread over 0-1), so no fixed grid fits both."""
    steps = (-0.15, -0.10, -0.05, -0.02, 0.0, 0.02, 0.05)
    grid = {round(oracle + d, 4) for d in steps} | {round(policy, 4)}
    return sorted(t for t in grid if -1.0 <= t <= 1.0)


def templates_by_rel(paths: Sequence[str], found: Mapping[str, Any]) -> dict[str, Any]:
    return {p: found[p] for p in paths if p in found}


__all__ = ["ProbeScores", "duplicates_report", "person_of", "score_probes", "split"]

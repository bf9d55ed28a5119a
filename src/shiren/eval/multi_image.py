"""Several images per side: 1:1 comparisons of fused K-image templates (issue 14, item 1).

A lender can hold more than one photo of a person (the ID portrait, the enrolment selfie, earlier
step-ups) and a capture can yield several frames.  This module measures what that buys: each side
of a comparison is :func:`shiren.core.fusion.fuse` of the templates of K distinct images of one
person (K = 1: the image's own template, unchanged, so K = 1 is the ordinary protocol).

The plan (which comparisons) depends only on the labels, K and the seed, never on the network, so
two profiles are measured on the very same comparisons:

* **genuine**: for every person with at least 2K images, unordered pairs of *disjoint* K-image
  sets.  All of them when there are at most ``max_genuine`` (e.g. 5 images: 10 pairs at K = 1,
  15 at K = 2), else ``max_genuine`` distinct ones drawn at random.
* **impostor**: every person with at least K images contributes up to ``max_sides`` distinct
  K-image sets (all of them when there are that few, else a random draw); every pair of sets of
  two different people is an impostor comparison.  They share images, so they are not
  independent (the binomial intervals are optimistic).
* Draws use ``numpy.random.default_rng((seed, crc32(person), stream))``: one person's draw does
  not depend on who else is in the data.

With a degraded reference (:mod:`shiren.core.degrade`) the two sides are no longer alike, so each
comparison is made both ways (either set as the reference): the counts double.

Failures follow :func:`shiren.eval.metrics.apply_failure_policy` ``"reject"``: a side is fused from
those of its images that produced a template (``n_sides_partial`` counts the sides that lost some);
a side with none makes its comparisons non-matches (a false non-match for a genuine pair), counted
in ``n_failed``.  Scores: similarities, higher = more alike, match when ``score >= threshold``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.core.fusion import fuse
from shiren.core.similarity import Metric, similarity_matrix
from shiren.eval.fairness import Rate
from shiren.eval.metrics import apply_failure_policy, max_false_accepts, operating_point

FloatArray = npt.NDArray[np.float32]
Templates = Mapping[str, npt.NDArray[Any]]

MAX_GENUINE_PER_PERSON = 15
MAX_SIDES_PER_PERSON = 10
TARGET_FMR = 1e-3
_BLOCK = 1024


@dataclass(frozen=True, slots=True)
class Side:
    """K distinct images of one person (relative paths, sorted)."""

    person: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The comparisons of one run, and who could take part."""

    k: int
    seed: int
    genuine: tuple[tuple[Side, Side], ...]
    sides: tuple[Side, ...]
    n_people: int
    n_people_genuine: int
    """People with at least 2K images (and ``min_images``): those with genuine comparisons."""
    n_people_impostor: int
    """People with at least K images: those whose sets enter impostor comparisons."""
    n_images: int


def n_disjoint_pairs(n: int, k: int) -> int:
    """Unordered pairs of disjoint K-subsets of ``n`` items: C(n,K)·C(n−K,K)/2."""
    if n < 2 * k:
        return 0
    return math.comb(n, k) * math.comb(n - k, k) // 2


def person_rng(seed: int, person: str, stream: int = 0) -> np.random.Generator:
    """A random stream of one person (independent of the other people); stream 0 draws the
    genuine comparisons, stream 1 the impostor sets."""
    return np.random.default_rng((seed, zlib.crc32(person.encode("utf-8")), stream))


def genuine_splits(n: int, k: int, cap: int, rng: np.random.Generator) -> list[tuple[Any, Any]]:
    """Index pairs ``(A, B)`` (sorted tuples, ``A < B``) of disjoint K-subsets of ``range(n)``:
    all of them when there are at most ``cap``, else ``cap`` distinct ones drawn at random."""
    total = n_disjoint_pairs(n, k)
    if total <= cap:
        out = []
        for a in itertools.combinations(range(n), k):
            rest = [i for i in range(n) if i not in a and i > a[0]]
            out += [(a, b) for b in itertools.combinations(rest, k)]
        return out
    found: set[tuple[Any, Any]] = set()
    while len(found) < cap:
        drawn = [int(i) for i in rng.permutation(n)[: 2 * k]]
        a, b = tuple(sorted(drawn[:k])), tuple(sorted(drawn[k:]))
        found.add((a, b) if a < b else (b, a))
    return sorted(found)


def side_subsets(n: int, k: int, cap: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Distinct K-subsets of ``range(n)``: all if there are at most ``cap``, else ``cap`` drawn."""
    if n < k:
        return []
    if math.comb(n, k) <= cap:
        return list(itertools.combinations(range(n), k))
    found: set[tuple[int, ...]] = set()
    while len(found) < cap:
        found.add(tuple(sorted(int(i) for i in rng.choice(n, size=k, replace=False))))
    return sorted(found)


def plan(
    identities: Mapping[str, Sequence[str]],
    k: int,
    seed: int,
    *,
    max_genuine: int = MAX_GENUINE_PER_PERSON,
    max_sides: int = MAX_SIDES_PER_PERSON,
    min_images: int = 0,
) -> Plan:
    """The comparisons for ``identities`` (person → image paths) with K images per side.

    Genuine comparisons come from the people with at least ``max(2K, min_images)`` images
    (``min_images``: compare K = 1 and K = 2 on the same people)."""
    if k < 1 or max_genuine < 1 or max_sides < 1:
        raise ValueError("k, max_genuine and max_sides must be >= 1")
    needed = max(2 * k, min_images)
    genuine: list[tuple[Side, Side]] = []
    sides: list[Side] = []
    for person in sorted(identities):
        paths = sorted(set(identities[person]))
        if len(paths) >= needed:
            for a, b in genuine_splits(len(paths), k, max_genuine, person_rng(seed, person)):
                genuine.append((_side(person, paths, a), _side(person, paths, b)))
        drawn = side_subsets(len(paths), k, max_sides, person_rng(seed, person, 1))
        sides += [_side(person, paths, s) for s in drawn]
    counts = [len(set(v)) for v in identities.values()]
    return Plan(
        k=k,
        seed=seed,
        genuine=tuple(genuine),
        sides=tuple(sides),
        n_people=len(identities),
        n_people_genuine=sum(1 for n in counts if n >= needed),
        n_people_impostor=sum(1 for n in counts if n >= k),
        n_images=sum(counts),
    )


def _side(person: str, paths: Sequence[str], index: Sequence[int]) -> Side:
    return Side(person, tuple(paths[i] for i in index))


def side_template(side: Side, templates: Templates) -> tuple[FloatArray | None, bool]:
    """``(template, partial)``: the fused template of the side's images that have one (one image:
    its template unchanged), None when none has; ``partial`` when some but not all are missing."""
    found = [np.asarray(templates[p], np.float32) for p in side.paths if p in templates]
    partial = 0 < len(found) < len(side.paths)
    if not found:
        return None, False
    if len(side.paths) == 1:
        return found[0], False
    return fuse(found), partial


@dataclass(frozen=True, slots=True)
class Scores:
    """Genuine and impostor scores (NaN: a side failed), with the people of the genuine ones."""

    genuine: FloatArray
    genuine_people: tuple[str, ...]
    impostor: FloatArray
    n_sides_partial: int
    n_sides_failed: int
    ordered: bool


def score(the_plan: Plan, reference: Templates, probe: Templates | None, metric: Metric) -> Scores:
    """Score the plan.  ``probe`` None: both sides use ``reference`` and each comparison is made
    once; otherwise the reference side uses ``reference`` (e.g. degraded images), the probe side
    ``probe``, and each comparison is made both ways."""
    ordered = probe is not None
    fused = _Fused(reference, probe if probe is not None else reference)
    genuine: list[float] = []
    people: list[str] = []
    for a, b in the_plan.genuine:
        for ref, prb in ((a, b), (b, a)) if ordered else ((a, b),):
            genuine.append(_pair(fused.ref(ref), fused.probe(prb), metric))
            people.append(a.person)
    ref_m, ref_ok = _matrix(fused.ref, the_plan.sides)
    prb_m, prb_ok = _matrix(fused.probe, the_plan.sides)
    owner = _owners(the_plan.sides)
    impostor = _impostor_scores(ref_m, ref_ok, prb_m, prb_ok, owner, metric, ordered)
    return Scores(
        genuine=np.asarray(genuine, np.float32),
        genuine_people=tuple(people),
        impostor=impostor,
        n_sides_partial=fused.partial,
        n_sides_failed=fused.failed,
        ordered=ordered,
    )


class _Fused:
    """Side templates, fused once; counts partial and failed sides (once per side and role when
    the reference is degraded, else once per side)."""

    def __init__(self, reference: Templates, probe: Templates) -> None:
        self._sources = {"ref": reference, "probe": probe}
        self._memo: dict[tuple[str, Side], FloatArray | None] = {}
        self.partial = 0
        self.failed = 0

    def _get(self, role: str, side: Side) -> FloatArray | None:
        key = (role, side)
        if key not in self._memo:
            template, partial = side_template(side, self._sources[role])
            self._memo[key] = template
            self.partial += int(partial)
            self.failed += int(template is None)
        return self._memo[key]

    def ref(self, side: Side) -> FloatArray | None:
        return self._get("ref", side)

    def probe(self, side: Side) -> FloatArray | None:
        same = self._sources["probe"] is self._sources["ref"]
        return self._get("ref" if same else "probe", side)


def _pair(a: FloatArray | None, b: FloatArray | None, metric: Metric) -> float:
    if a is None or b is None:
        return math.nan
    return float(similarity_matrix(a[None, :], b[None, :], metric)[0, 0])


def _matrix(get: Any, sides: Sequence[Side]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Stacked side templates ``(S, D)`` (zeros where failed) and the ok mask ``(S,)``."""
    found = [get(s) for s in sides]
    dim = next((t.shape[0] for t in found if t is not None), 1)
    out = np.zeros((len(sides), dim), np.float32)
    ok = np.array([t is not None for t in found], dtype=bool)
    for i, t in enumerate(found):
        if t is not None:
            out[i] = t
    return out, ok


def _owners(sides: Sequence[Side]) -> npt.NDArray[np.int64]:
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(s.person, len(codes)) for s in sides], dtype=np.int64)


def _impostor_scores(
    ref: FloatArray,
    ref_ok: npt.NDArray[np.bool_],
    prb: FloatArray,
    prb_ok: npt.NDArray[np.bool_],
    owner: npt.NDArray[np.int64],
    metric: Metric,
    ordered: bool,
) -> FloatArray:
    """Every cross-person (reference set, probe set) score: unordered (upper triangle) or, when
    ``ordered``, both ways.  NaN where a side failed."""
    parts = list(_blocks(ref, ref_ok, prb, prb_ok, owner, metric, ordered))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _blocks(
    ref: FloatArray,
    ref_ok: npt.NDArray[np.bool_],
    prb: FloatArray,
    prb_ok: npt.NDArray[np.bool_],
    owner: npt.NDArray[np.int64],
    metric: Metric,
    ordered: bool,
) -> Iterator[FloatArray]:
    n = len(owner)
    cols = np.arange(n)
    for start in range(0, n, _BLOCK):
        rows = np.arange(start, min(start + _BLOCK, n))
        scores = similarity_matrix(ref[rows], prb, metric)
        scores[~ref_ok[rows], :] = np.nan
        scores[:, ~prb_ok] = np.nan
        keep = owner[rows][:, None] != owner[None, :]
        if not ordered:
            keep &= cols[None, :] > rows[:, None]
        yield scores[keep]


def rate_dict(rate: Rate) -> dict[str, Any]:
    """A rate as JSON: errors, trials, rate and its 95 % Clopper–Pearson interval."""
    return {"errors": rate.errors, "trials": rate.trials, "rate": rate.rate, "ci95": rate.ci}


def summarize(
    scores: Scores, thresholds: Mapping[str, float], target_fmr: float = TARGET_FMR
) -> dict[str, Any]:
    """Counts and rates: FNMR and FMR at each named threshold, and FNMR at the threshold that
    gives FMR <= ``target_fmr`` on this run's own impostors (:func:`operating_point`)."""
    gen = apply_failure_policy(scores.genuine, np.ones(scores.genuine.size, bool), "reject")
    imp = apply_failure_policy(scores.impostor, np.zeros(scores.impostor.size, bool), "reject")
    out: dict[str, Any] = {
        "n_genuine": int(gen.scores.size),
        "n_impostor": int(imp.scores.size),
        "n_failed_genuine": gen.n_failed,
        "n_failed_impostor": imp.n_failed,
        "n_sides_partial": scores.n_sides_partial,
        "n_sides_failed": scores.n_sides_failed,
        "both_ways": scores.ordered,
        "at_threshold": {},
    }
    for name, t in thresholds.items():
        out["at_threshold"][name] = {
            "threshold": float(t),
            "fnmr": rate_dict(Rate(int((gen.scores < t).sum()), int(gen.scores.size))),
            "fmr": rate_dict(Rate(int((imp.scores >= t).sum()), int(imp.scores.size))),
        }
    if gen.scores.size and imp.scores.size:
        out["at_fmr"] = _at_fmr(gen.scores, imp.scores, target_fmr)
    return out


def _at_fmr(genuine: npt.NDArray[Any], impostor: npt.NDArray[Any], target: float) -> dict[str, Any]:
    point = operating_point(genuine, impostor, target)
    return {
        "target_fmr": target,
        "threshold": point.threshold,
        "fnmr": rate_dict(Rate(point.n_genuine - point.n_true_accept, point.n_genuine)),
        "fmr": rate_dict(Rate(point.n_false_accept, point.n_impostor)),
        "resolvable": point.resolvable,
        "max_false_accepts": max_false_accepts(point.n_impostor, target),
    }


def per_person(scores: Scores, threshold: float) -> list[dict[str, Any]]:
    """Genuine comparisons and false non-matches at ``threshold``, per person (failed: NaN
    counts as a false non-match)."""
    tally: dict[str, list[int]] = {}
    for person, value in zip(scores.genuine_people, scores.genuine, strict=True):
        row = tally.setdefault(person, [0, 0])
        row[0] += 1
        row[1] += int(not value >= threshold)
    return [
        {"person": p, "n_genuine": n, "false_non_matches": k} for p, (n, k) in sorted(tally.items())
    ]


__all__ = [
    "MAX_GENUINE_PER_PERSON",
    "MAX_SIDES_PER_PERSON",
    "TARGET_FMR",
    "Plan",
    "Scores",
    "Side",
    "genuine_splits",
    "n_disjoint_pairs",
    "per_person",
    "person_rng",
    "plan",
    "rate_dict",
    "score",
    "side_subsets",
    "side_template",
    "summarize",
]

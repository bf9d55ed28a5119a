"""``shiren eval idcard``: how well an ID-card reader reads synthetic and specimen cards.

Accountant style: each card read gives one :class:`CardOutcome` (what was expected, what was
read, how long it took); :func:`summarize` adds the outcomes up into counts and derives the
rates, each with its exact (Clopper–Pearson) 95 % interval:

* ``fields.<name>.exact`` — the read value equals the printed one (after NFKC and with
  whitespace removed: a reader may split the address into lines; nothing else is forgiven);
* ``side_accuracy`` — front/back told apart;
* ``portrait_found`` — a portrait cut out of a front;
* ``check_digit`` — ``caught``: numbers printed with a wrong GB 11643 check character that the
  reader flagged with ``idcard.number_invalid`` (``passed=False``); ``false_alarms``: valid
  numbers flagged; both also counted only over cards whose number was read exactly (a misread
  digit usually breaks the check character, which is then a right flag for a wrong reading);
* guidance and failed-check code counts, per-card time (p50/p95, ms), and the corners' error.

The reader is anything with :class:`ReaderLike`'s ``read`` (``shiren.idcard``'s ``CardReader``,
or a fake in tests).  The card-portrait face match is in :mod:`shiren.eval.idcard_match`.
"""

from __future__ import annotations

import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from shiren.errors import InputError
from shiren.eval.idcard_synth import CardTruth, SyntheticCard
from shiren.eval.intervals import clopper_pearson

NUMBER_INVALID: Final = "idcard.number_invalid"
FRONT_FIELDS: Final = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")
BACK_FIELDS: Final = ("authority", "valid_from", "valid_until")
MAX_MISREADS: Final = 8
"""Misread examples kept per field (synthetic, fictional people only)."""

SPECIMEN_FILE: Final = "cn_idcard_demo_specimen_front.jpg"
SPECIMEN_FIELDS: Final[Mapping[str, str]] = {
    # Read off the vendor demo specimen (shared/data/DATA.md §5): a fictional person; its number
    # fails the GB 11643 check (the right check digit is 9), so a reader must flag it.
    "name": "刘小合",
    "sex": "女",
    "ethnicity": "汉",
    "birth_date": "1995-06-06",
    "address": "上海市静安区万荣路1268号",
    "id_number": "440305199506062561",
}
SPECIMEN_CORNERS: Final = ((168.0, 197.0), (910.0, 197.0), (910.0, 663.0), (168.0, 663.0))
"""The specimen card's corners in its 1080 × 864 photo (measured by eye, ± 3 px)."""
TARGETS: Final[Mapping[str, float]] = {
    # Issue 16's targets at the moderate level.
    "fields.id_number.exact": 0.99,
    "fields.name.exact": 0.97,
    "side_accuracy": 1.0,
    "portrait_found": 0.99,
    "check_digit.caught": 1.0,
    "time_ms.p95": 400.0,
}


class FieldLike(Protocol):
    @property
    def value(self) -> str: ...


class CheckLike(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def passed(self) -> bool | None: ...


class ReadingLike(Protocol):
    """What :func:`score` needs of a reading (``shiren.idcard.types.CardReading`` has it)."""

    @property
    def side(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, FieldLike]: ...

    @property
    def checks(self) -> Sequence[CheckLike]: ...

    @property
    def portrait(self) -> npt.NDArray[np.uint8] | None: ...

    @property
    def corners(self) -> Any: ...

    @property
    def guidance(self) -> Sequence[str]: ...


class ReaderLike(Protocol):
    def read(
        self,
        image: bytes | npt.NDArray[np.uint8],
        *,
        expected_id_number: str | None = None,
        today: date | None = None,
    ) -> ReadingLike: ...


@dataclass(frozen=True, slots=True)
class CardOutcome:
    """One card read: ``fields`` maps each expected field to ``(expected, read or None)``."""

    index: int
    side: str
    side_read: str
    fields: dict[str, tuple[str, str | None]]
    number_valid: bool | None
    number_flagged: bool
    portrait_found: bool
    guidance: tuple[str, ...]
    failed_checks: tuple[str, ...]
    elapsed_ms: float
    corner_error: float | None
    """Mean distance from each true corner to the nearest read one, over the card's diagonal."""
    corners_in_order: bool | None = None
    """Whether the read corners start at the card's own top-left (the nearest read corner to
    each true one has its index): the reader knew which way up the card lay."""

    def exact(self, name: str) -> bool:
        expected, read = self.fields[name]
        return read is not None and normalize(read) == normalize(expected)


def normalize(text: str) -> str:
    """NFKC with all whitespace removed: the only differences a field comparison forgives."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def score(truth: CardTruth, reading: ReadingLike, elapsed_ms: float) -> CardOutcome:
    """Compare one reading with the card's ground truth."""
    checks = tuple(reading.checks)
    read_fields = reading.fields
    fields = {
        name: (value, read_fields[name].value if name in read_fields else None)
        for name, value in truth.fields.items()
    }
    return CardOutcome(
        index=truth.index,
        side=truth.side,
        side_read=str(reading.side),
        fields=fields,
        number_valid=truth.number_valid,
        number_flagged=any(str(c.code) == NUMBER_INVALID and c.passed is False for c in checks),
        portrait_found=reading.portrait is not None,
        guidance=tuple(str(g) for g in reading.guidance),
        failed_checks=tuple(str(c.code) for c in checks if c.passed is False),
        elapsed_ms=elapsed_ms,
        corner_error=corner_error(truth.corners, reading.corners),
        corners_in_order=corners_in_order(truth.corners, reading.corners),
    )


def _distances(truth: Sequence[tuple[float, float]], read: Any) -> npt.NDArray[np.float64] | None:
    """``(4, 4)`` distances from each true corner (rows) to each read one, or None when the
    reading has no 4 finite corners."""
    if read is None:
        return None
    try:
        points = np.asarray(read, np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    if points.shape[0] != len(truth) or not np.isfinite(points).all():
        return None
    true = np.asarray(truth, np.float64)
    out: npt.NDArray[np.float64] = np.linalg.norm(true[:, None, :] - points[None, :, :], axis=2)
    return out


def corner_error(truth: Sequence[tuple[float, float]], read: Any) -> float | None:
    """Mean distance from each true corner to the nearest read corner, over the card's diagonal
    (order-free: a wrong start is counted by :func:`corners_in_order`); None when no 4 corners
    were read."""
    distances = _distances(truth, read)
    if distances is None:
        return None
    diagonal = float(np.linalg.norm(np.subtract(truth[2], truth[0])))
    return float(distances.min(axis=1).mean() / diagonal)


def corners_in_order(truth: Sequence[tuple[float, float]], read: Any) -> bool | None:
    """Whether read corner ``i`` is the one nearest true corner ``i`` for every ``i``."""
    distances = _distances(truth, read)
    if distances is None:
        return None
    return bool((distances.argmin(axis=1) == np.arange(len(truth))).all())


@dataclass(frozen=True, slots=True)
class LevelRun:
    """The outcomes of one distortion level and the portraits the reader cut from fronts (by
    card index), with the ground truth of every card."""

    level: str
    outcomes: tuple[CardOutcome, ...]
    truths: tuple[CardTruth, ...]
    portraits: dict[int, npt.NDArray[np.uint8]]


def read_cards(
    reader: ReaderLike,
    cards: Iterable[SyntheticCard],
    *,
    level: str,
    today: date | None = None,
    progress: Callable[[int], object] | None = None,
) -> LevelRun:
    """Read every card once (timed, the JPEG bytes as uploaded) and score it."""
    outcomes, truths, portraits = [], [], {}
    for card in cards:
        start = time.perf_counter()
        reading = read_or_refusal(reader, card.jpeg, today)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        outcomes.append(score(card.truth, reading, elapsed_ms))
        truths.append(card.truth)
        if reading.portrait is not None and card.truth.face is not None:
            portraits[card.truth.index] = np.asarray(reading.portrait, np.uint8)
        if progress is not None:
            progress(1)
    return LevelRun(level, tuple(outcomes), tuple(truths), portraits)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The reading of a photo the reader refused with an ``InputError`` (two cards, another
    document, an undecodable image): side ``error``, nothing read, the error's code as the one
    failed check, so that a refusal counts against every rate."""

    code: str
    side: str = "error"
    fields: Mapping[str, FieldLike] = field(default_factory=dict)
    portrait: npt.NDArray[np.uint8] | None = None
    corners: Any = None
    guidance: Sequence[str] = ()

    @property
    def checks(self) -> Sequence[CheckLike]:
        return (_Failed(self.code),)


@dataclass(frozen=True, slots=True)
class _Failed:
    code: str
    passed: bool | None = False


def read_or_refusal(reader: ReaderLike, image: bytes, today: date | None) -> ReadingLike:
    """``reader.read(image, today=today)``, or a :class:`Refusal` for an ``InputError``."""
    try:
        return reader.read(image, today=today)
    except InputError as exc:
        return Refusal(str(exc.code))


def rate(k: int, n: int) -> dict[str, Any]:
    """``k / n`` with its exact 95 % interval (``None`` rate when ``n == 0``)."""
    if n == 0:
        return {"rate": None, "k": 0, "n": 0, "ci95": None}
    lo, hi = clopper_pearson(k, n)
    return {"rate": k / n, "k": k, "n": n, "ci95": [lo, hi]}


def summarize(outcomes: Sequence[CardOutcome]) -> dict[str, Any]:
    """Counts and rates over ``outcomes`` (one level's cards)."""
    fronts = [o for o in outcomes if o.side == "front"]
    side_errors = Counter(f"{o.side}->{o.side_read}" for o in outcomes if o.side_read != o.side)
    times = np.array([o.elapsed_ms for o in outcomes], np.float64)
    corner_errors = [o.corner_error for o in outcomes if o.corner_error is not None]
    return {
        "cards": len(outcomes),
        "fronts": len(fronts),
        "backs": len(outcomes) - len(fronts),
        "fields": _fields(outcomes),
        "side_accuracy": rate(sum(o.side_read == o.side for o in outcomes), len(outcomes)),
        "side_errors": dict(sorted(side_errors.items())),
        "portrait_found": rate(sum(o.portrait_found for o in fronts), len(fronts)),
        "check_digit": check_digit(fronts),
        "guidance": dict(sorted(Counter(g for o in outcomes for g in o.guidance).items())),
        "failed_checks": dict(
            sorted(Counter(c for o in outcomes for c in o.failed_checks).items())
        ),
        "time_ms": _times(times),
        "corners": {
            "n": len(corner_errors),
            "median_error_rel": float(np.median(corner_errors)) if corner_errors else None,
            "within_2pct": rate(sum(e <= 0.02 for e in corner_errors), len(corner_errors)),
            "in_order": rate(sum(o.corners_in_order is True for o in outcomes), len(corner_errors)),
        },
        "misreads": misreads(outcomes),
    }


def _fields(outcomes: Sequence[CardOutcome]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in (*FRONT_FIELDS, *BACK_FIELDS):
        having = [o for o in outcomes if name in o.fields]
        if having:
            counted = rate(sum(o.exact(name) for o in having), len(having))
            out[name] = {"exact": counted.pop("rate"), **counted}
    return out


def check_digit(fronts: Sequence[CardOutcome]) -> dict[str, Any]:
    """Invalid numbers flagged (caught) and valid ones flagged (false alarms)."""
    invalid = [o for o in fronts if o.number_valid is False]
    valid = [o for o in fronts if o.number_valid is True]
    invalid_exact = [o for o in invalid if o.exact("id_number")]
    valid_exact = [o for o in valid if o.exact("id_number")]
    return {
        "caught": _flagged(invalid),
        "caught_when_read_exactly": _flagged(invalid_exact),
        "false_alarms": _flagged(valid),
        "false_alarms_when_read_exactly": _flagged(valid_exact),
    }


def _flagged(outcomes: Sequence[CardOutcome]) -> dict[str, Any]:
    return rate(sum(o.number_flagged for o in outcomes), len(outcomes))


def _times(times: npt.NDArray[np.float64]) -> dict[str, Any]:
    if times.size == 0:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "max": None}
    p50, p95 = np.percentile(times, [50, 95])
    return {"n": int(times.size), "p50": float(p50), "p95": float(p95),
            "mean": float(times.mean()), "max": float(times.max())}  # fmt: skip


def misreads(
    outcomes: Sequence[CardOutcome], limit: int = MAX_MISREADS
) -> dict[str, list[dict[str, Any]]]:
    """The first ``limit`` wrong readings of each field, with the card they came from."""
    out: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        for name, (expected, read) in o.fields.items():
            if not o.exact(name) and len(out.setdefault(name, [])) < limit:
                out[name].append({"card": o.index, "expected": expected, "read": read})
    return {name: rows for name, rows in out.items() if rows}


def targets(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of :data:`TARGETS` with the measured value and whether it is met."""
    measured = {
        "fields.id_number.exact": summary["fields"].get("id_number", {}).get("exact"),
        "fields.name.exact": summary["fields"].get("name", {}).get("exact"),
        "side_accuracy": summary["side_accuracy"]["rate"],
        "portrait_found": summary["portrait_found"]["rate"],
        "check_digit.caught": summary["check_digit"]["caught"]["rate"],
        "time_ms.p95": summary["time_ms"]["p95"],
    }
    out = {}
    for name, goal in TARGETS.items():
        value = measured[name]
        met = (
            None if value is None else (value <= goal if name.startswith("time") else value >= goal)
        )
        out[name] = {"target": goal, "measured": value, "met": met}
    return out


def read_specimen(reader: ReaderLike, path: Path, *, today: date | None = None) -> dict[str, Any]:
    """The demo specimen read once: each known field (expected, read, exact), the side, the
    portrait, the (wrong) check digit flagged, the corners' error, the time."""
    truth = CardTruth(
        index=-1, side="front", fields=dict(SPECIMEN_FIELDS), number_valid=False,
        corners=SPECIMEN_CORNERS, portrait_box=None, face=None, level="specimen",
        rotation_deg=0.0, upside_down=False, image_size=(1080, 864),
    )  # fmt: skip
    start = time.perf_counter()
    reading = read_or_refusal(reader, path.read_bytes(), today)
    outcome = score(truth, reading, (time.perf_counter() - start) * 1000.0)
    return {
        "file": path.name,
        "side_correct": outcome.side_read == "front",
        "fields": {
            name: {"expected": expected, "read": read, "exact": outcome.exact(name)}
            for name, (expected, read) in outcome.fields.items()
        },
        "number_invalid_flagged": outcome.number_flagged,
        "portrait_found": outcome.portrait_found,
        "corner_error_rel": outcome.corner_error,
        "guidance": list(outcome.guidance),
        "failed_checks": list(outcome.failed_checks),
        "time_ms": outcome.elapsed_ms,
    }


__all__ = [
    "BACK_FIELDS",
    "FRONT_FIELDS",
    "NUMBER_INVALID",
    "SPECIMEN_FIELDS",
    "SPECIMEN_FILE",
    "TARGETS",
    "CardOutcome",
    "CheckLike",
    "FieldLike",
    "LevelRun",
    "ReaderLike",
    "ReadingLike",
    "Refusal",
    "check_digit",
    "corner_error",
    "corners_in_order",
    "misreads",
    "normalize",
    "rate",
    "read_cards",
    "read_or_refusal",
    "read_specimen",
    "score",
    "summarize",
    "targets",
]

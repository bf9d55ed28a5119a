"""The ID card at enrolment: read it, check it, and take the reference portrait from it.

The lender may send the borrower's resident ID card (the front, and the back for the expiry)
instead of a separate reference photo.  The card is read in memory (:mod:`shiren.idcard`) and
dropped; what stays is what the lender would have typed anyway (name and ID number, sealed as
always), the portrait's *template* as the enrolment reference (``reference_kind`` ``id_card``),
and the checks' outcomes — codes, never values — in the audit log.

What each outcome does:

* **the card cannot be read** (no card, the wrong side, cut off, too blurred, no portrait) →
  ``input.idcard_unreadable`` with the capture guidance codes, so the page can say what to fix;
* **a check fails that no honest card fails** (GB 11643 check digit, birth date or sex against
  the number, the number differs from the one the lender sent, an expired card, an impossible
  validity period) → ``input.idcard_rejected`` naming the checks; nothing is stored;
* **a review signal** (the photo looks like a screen or a printout; the name on the card differs
  from the one the lender sent — an OCR misread or another person) → the enrolment goes ahead and
  the signal is recorded as an anti-fraud finding of the enrolment, so its capture ends in the
  manual-review queue instead of a pass.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.domain import idnumber
from shiren.errors import ErrorCode, InputError
from shiren.idcard import CardReader, CardReading, CardSide
from shiren.reasons import ReasonCode

HARD_CHECKS = frozenset(
    {
        ReasonCode.IDCARD_NUMBER_INVALID.value,
        ReasonCode.IDCARD_BIRTH_DATE_MISMATCH.value,
        ReasonCode.IDCARD_SEX_MISMATCH.value,
        ReasonCode.IDCARD_NUMBER_MISMATCH.value,
        ReasonCode.IDCARD_EXPIRED.value,
        ReasonCode.IDCARD_VALIDITY_INVALID.value,
    }
)
"""Failed, these refuse the card: an honest, valid card never fails them."""
REVIEW_SIGNALS = frozenset({ReasonCode.IDCARD_RECAPTURE_SUSPECTED.value})
"""Failed, these send the enrolment to manual review (they are cues, not proof)."""
SHOWN_FIELDS = (
    "name",
    "sex",
    "ethnicity",
    "birth_date",
    "address",
    "authority",
    "valid_from",
    "valid_until",
)
"""Fields the lender sees back as read (the ID number only masked)."""


@dataclass(frozen=True, slots=True)
class CardExpectation:
    """What the lender expects of the card, as predicates over the values read: a card capture
    keeps only keyed digests of the name and number it was given, never the values."""

    number: Callable[[str], bool] | None = None
    """Whether the card's (normalised) ID number is the expected one."""
    name: Callable[[str], bool] | None = None
    """Whether the card's name is the expected one."""


@dataclass(frozen=True, slots=True)
class CardEvidence:
    """What the card gave an enrolment (in memory only; the images are already dropped)."""

    front: CardReading
    back: CardReading | None
    name: str
    id_number: str
    review: tuple[str, ...]
    """Review-signal codes raised (recapture, name mismatch)."""

    @property
    def portrait(self) -> npt.NDArray[np.uint8]:
        assert self.front.portrait is not None
        return self.front.portrait

    def checks(self) -> list[dict[str, Any]]:
        """Every check of both sides: code, outcome (``None``: not applicable) and the side it
        was made on."""
        out = [{"code": c.code, "passed": c.passed, "side": "front"} for c in self.front.checks]
        if self.back is not None:
            out += [{"code": c.code, "passed": c.passed, "side": "back"} for c in self.back.checks]
        out += [
            {"code": code, "passed": False, "side": "front"}
            for code in self.review
            if code not in _codes(out)
        ]
        return out

    def summary(self) -> dict[str, Any]:
        """What the lender's response carries: the shown fields with their confidence, the ID
        number masked, every check's outcome, the review signals raised."""
        fields: dict[str, Any] = {}
        for reading in (self.front, self.back):
            if reading is None:
                continue
            for name, f in reading.fields.items():
                if name in SHOWN_FIELDS:
                    fields[name] = {"value": f.value, "confidence": round(f.confidence, 4)}
        return {
            "sides": ["front"] + (["back"] if self.back is not None else []),
            "fields": fields,
            "id_number_masked": idnumber.parse(self.id_number).mask(),
            "checks": self.checks(),
            "review_signals": list(self.review),
            "portrait_found": True,
        }

    def audit(self) -> dict[str, Any]:
        """The audit payload: which checks ran and how they came out — no value read (and no
        key naming the card: :func:`shiren.audit.check_payload` refuses those)."""
        return {
            "sides": ["front"] + (["back"] if self.back is not None else []),
            "checks": self.checks(),
            "review_signals": list(self.review),
        }


def _codes(items: list[dict[str, Any]]) -> set[str]:
    return {str(i["code"]) for i in items}


def normalise_name(text: str) -> str:
    """A name as compared: NFKC, no whitespace (OCR spacing and full-width forms differ)."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _same_name(a: str, b: str) -> bool:
    return normalise_name(a) == normalise_name(b)


def _unreadable(side: str, reading: CardReading | None, why: str) -> InputError:
    guidance = list(reading.guidance) if reading is not None else []
    return InputError(
        f"the ID card's {side} could not be read ({why})",
        code=ErrorCode.IDCARD_UNREADABLE,
        detail={"side": side, "why": why, "guidance": guidance},
    )


class IdCards:
    """Reads and judges ID cards for enrolment; the reader's models load once, on first use."""

    def __init__(self, reader: CardReader | Callable[[], CardReader] = CardReader.load) -> None:
        self._reader: CardReader | None = reader if isinstance(reader, CardReader) else None
        self._factory = None if isinstance(reader, CardReader) else reader
        self._lock = threading.Lock()

    def reader(self) -> CardReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    assert self._factory is not None
                    self._reader = self._factory()
        return self._reader

    def _side(
        self, image: bytes, side: CardSide, expected_id: str | None, today: date
    ) -> CardReading:
        reading = self.reader().read(
            image, expected_id_number=expected_id, today=today, expected_side=side
        )
        if reading.side is not side:
            why = "no card" if reading.side is CardSide.UNKNOWN else "the other side"
            raise _unreadable(side.value, reading, why)
        return reading

    def read_for_enrolment(
        self,
        front: bytes,
        back: bytes | None,
        *,
        name: str | None,
        id_number: str | None,
        today: date,
        expect: CardExpectation | None = None,
    ) -> CardEvidence:
        """Read and judge the card (see the module docstring); the typed errors there."""
        expected = idnumber.parse(id_number).number if id_number else None
        reading = self._side(front, CardSide.FRONT, expected, today)
        back_reading = self._side(back, CardSide.BACK, None, today) if back else None
        failed = [
            c.code
            for r in (reading, back_reading)
            if r is not None
            for c in r.checks
            if c.passed is False and c.code in HARD_CHECKS
        ]
        if failed:
            raise InputError(
                "the ID card did not pass its checks",
                code=ErrorCode.IDCARD_REJECTED,
                detail={"checks": sorted(set(failed))},
            )
        card_number = reading.value("id_number")
        card_name = reading.value("name")
        if not card_number or not card_name:
            raise _unreadable("front", reading, "name or ID number not read")
        if reading.portrait is None:
            raise _unreadable("front", reading, "no portrait")
        number = idnumber.parse(card_number).number
        if expect is not None and expect.number is not None and not expect.number(number):
            raise InputError(
                "the ID card did not pass its checks",
                code=ErrorCode.IDCARD_REJECTED,
                detail={"checks": [ReasonCode.IDCARD_NUMBER_MISMATCH.value]},
            )
        review = [
            c.code
            for r in (reading, back_reading)
            if r is not None
            for c in r.checks
            if c.passed is False and c.code in REVIEW_SIGNALS
        ]
        if name is not None and not _same_name(name, card_name):
            review.append(ReasonCode.IDCARD_NAME_MISMATCH.value)
        if expect is not None and expect.name is not None and not expect.name(card_name):
            review.append(ReasonCode.IDCARD_NAME_MISMATCH.value)
        return CardEvidence(
            front=reading,
            back=back_reading,
            name=name if name is not None else card_name,
            id_number=expected or number,
            review=tuple(dict.fromkeys(review)),
        )


__all__ = [
    "HARD_CHECKS",
    "REVIEW_SIGNALS",
    "CardEvidence",
    "CardExpectation",
    "IdCards",
    "normalise_name",
]

"""What reading one ID-card photo produces: the side, typed fields, checks, guidance, the portrait.

These are plain values: the reader (:mod:`shiren.idcard.types`) builds them, the checks
(:mod:`shiren.idcard.checks`) and the parsers (:mod:`shiren.idcard.parse`) fill them, and callers
(the CLI, the service, ``shiren eval idcard``) read them.  They sit in their own module, below
everything else in the package, so that no module of the package imports one that imports it back.

Privacy: a :class:`CardReading` holds personal information (name, ID number, address, the
portrait).  :meth:`CardReading.to_dict` never includes the portrait's pixels, and the full ID number
appears only as the ``id_number`` field's value: a caller that must not show it masks it (see
:meth:`shiren.domain.idnumber.IdNumber.mask`).  Nothing here logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from shiren.messages import message

CARD_WIDTH_PX: Final = 856
CARD_HEIGHT_PX: Final = 540
"""The rectified card: ISO/IEC 7810 ID-1 (85.6 × 54 mm) at 10 px per mm."""

FRONT_FIELDS: Final = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")
"""The portrait side's fields, in print order (``birth_date`` as ``YYYY-MM-DD``)."""
BACK_FIELDS: Final = ("authority", "valid_from", "valid_until")
"""The emblem side's fields (dates as ``YYYY-MM-DD``; ``valid_until`` may be ``长期``)."""
LONG_TERM: Final = "长期"
"""The ``valid_until`` of a card valid for life (issued to people aged 46 and over)."""


class CardSide(StrEnum):
    """Which side of the card the photo shows."""

    FRONT = "front"
    """人像面: the portrait, name, sex, ethnicity, birth date, address and number."""
    BACK = "back"
    """国徽面: the national emblem, the issuing authority and the validity period."""
    UNKNOWN = "unknown"
    """No card, or one whose side could not be told."""


@dataclass(frozen=True, slots=True)
class CardField:
    """One printed field as read: ``confidence`` is the OCR's mean character probability, 0..1,
    lowered when the value had to be repaired (a letter read where a digit must be)."""

    name: str
    value: str
    confidence: float


@dataclass(frozen=True, slots=True)
class CardCheck:
    """One consistency check.  ``code`` is the stable reason code the check is named by (the
    failure it looks for: ``idcard.number_invalid``); ``passed`` is True when the card is fine on
    this point, False when the failure was found, None when it does not apply or could not be
    checked (a field was not read; no expected number was given).  ``detail`` is JSON-ready and
    never holds a name or a full ID number."""

    code: str
    passed: bool | None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class CardReading:
    """Everything read from one photo of one side of one card.

    ``fields``: front — ``name``, ``sex``, ``ethnicity``, ``birth_date`` (``YYYY-MM-DD``),
    ``address``, ``id_number``; back — ``authority``, ``valid_from``, ``valid_until``
    (``YYYY-MM-DD`` or ``长期``).  Only fields that were read are present.
    ``portrait``: an ``(h, w, 3)`` uint8 RGB crop of the front's photo, or None.
    ``corners``: the card's 4 corners in pixels of the input image (clockwise from the card's own
    top-left, so a card photographed upside down starts at the image's bottom right), or None
    when no card outline was found.  ``guidance``: capture-guidance reason codes, most important
    first (``idcard.not_found``, ``idcard.cut_off``, ``idcard.too_far``, ``idcard.blurry``,
    ``idcard.glare``, ``idcard.wrong_side``).  ``metrics``: the measurements behind the guidance
    and the recapture check (blur, glare, card size), for evaluation and tuning.
    """

    side: CardSide
    fields: dict[str, CardField]
    checks: tuple[CardCheck, ...]
    portrait: npt.NDArray[np.uint8] | None
    corners: tuple[tuple[float, float], ...] | None
    guidance: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        """The value of field ``name``, or None when it was not read."""
        found = self.fields.get(name)
        return found.value if found is not None else None

    def check(self, code: str) -> CardCheck | None:
        """The check named by ``code``, or None when it was not run."""
        return next((c for c in self.checks if c.code == code), None)

    def to_dict(self, lang: str = "zh-CN") -> dict[str, object]:
        """JSON-ready: ``side``, ``fields`` ``{name: {value, confidence}}``, ``checks``
        ``[{code, passed, message, detail}]``, ``portrait_found``, ``guidance`` ``[{code,
        message}]``, ``metrics``.  Never the portrait's pixels."""
        return {
            "side": str(self.side),
            "fields": {
                name: {"value": f.value, "confidence": round(f.confidence, 4)}
                for name, f in self.fields.items()
            },
            "checks": [
                {
                    "code": c.code,
                    "passed": c.passed,
                    "message": message(c.code, lang),
                    "detail": dict(c.detail),
                }
                for c in self.checks
            ],
            "portrait_found": self.portrait is not None,
            "guidance": [{"code": code, "message": message(code, lang)} for code in self.guidance],
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
        }


__all__ = [
    "BACK_FIELDS",
    "CARD_HEIGHT_PX",
    "CARD_WIDTH_PX",
    "FRONT_FIELDS",
    "LONG_TERM",
    "CardCheck",
    "CardField",
    "CardReading",
    "CardSide",
]

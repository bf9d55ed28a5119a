"""Reading a Chinese second-generation resident ID card (居民身份证) offline, from a phone photo.

* :mod:`.types` — the interface: :class:`CardReader` and the :class:`CardReading` it returns
  (side, typed fields with confidences, checks, capture guidance, the portrait);
* :mod:`.card` — the result types themselves (plain values, below everything else here);
* :mod:`.locate` — finding the card, warping it flat and upright, framing/blur/glare measures;
* :mod:`.parse` — OCR lines → side and fields, by label and by the card's fixed layout;
* :mod:`.checks` — GB 11643 number, birth date and sex against the number, the expected
  number, expiry, the validity period, recapture cues; each a stable reason code;
* :mod:`.portrait` — the front's photo, cut out (re-centred on the face with a detector).

The text recogniser is PP-OCRv4 (:mod:`shiren.models.rapid_ocr`), behind the
:class:`~shiren.models.protocols.TextRecognizer` Protocol, so tests and other engines plug in.
"""

from shiren.idcard.types import (
    CardCheck,
    CardField,
    CardReader,
    CardReading,
    CardSide,
)

__all__ = ["CardCheck", "CardField", "CardReader", "CardReading", "CardSide"]

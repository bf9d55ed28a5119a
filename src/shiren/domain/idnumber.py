"""Chinese resident identity numbers (公民身份号码, GB 11643-1999): parse, validate, mask.

An 18-character number is laid out as::

    RRRRRR YYYYMMDD SSS C
    │      │        │   └ check character, ISO 7064 MOD 11-2 over the first 17 digits (0-9 or X)
    │      │        └──── sequence; odd = male, even = female
    │      └───────────── date of birth
    └──────────────────── administrative region code (GB/T 2260) where the number was first issued

First-generation cards (issued until 2004) carry a 15-digit number ``RRRRRR YYMMDD SSS`` with no
check character; GB 11643-1999 converts it by inserting the century ``19`` and appending the
check character.  :func:`parse` does that conversion and flags the result ``legacy=True``, so
the same person always ends up with the same normalised 18-character number (and therefore the
same pseudonym in :mod:`shiren.privacy.pseudonym`).

What is validated, and why no more:

* **Region**: only the first two digits (the province-level unit) are checked against
  :data:`PROVINCE_CODES`.  The remaining four digits are *not* checked against the current
  GB/T 2260 table on purpose: counties are merged and renamed every year, but a number keeps the
  region code of the place that first issued it, so a full-table check would reject genuine
  numbers issued decades ago.
* **Birth date**: a real calendar date, not before 1900-01-01 and not after "today" in China
  Standard Time (UTC+8; a number issued for a baby born just after midnight in Beijing must not
  be rejected because the server's UTC date is still yesterday).
* **Check character**: ISO 7064 MOD 11-2 detects every single-character error and every
  transposition of adjacent characters, which is what people get wrong when typing a number.

A valid number is only *well-formed*: whether it was ever issued, and to whom, is a question for
an authority check, not for this module.

Privacy: an ID number is personal information.  :class:`IdNumber` never prints the full number
(``repr``/``str``/f-strings show :meth:`IdNumber.mask`), and the errors raised here carry only a
coarse ``reason`` — never the input.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Final

from shiren.errors import ErrorCode, InputError

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "PROVINCE_CODES",
    "IdNumber",
    "IdNumberError",
    "IdNumberReason",
    "Sex",
    "check_character",
    "is_valid",
    "parse",
]

PROVINCE_CODES: Final[dict[str, str]] = {
    # North China
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    # North-east
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    # East
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    # Central and South
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    # South-west
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    # North-west
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    # Listed in GB/T 2260; 81/82/83 are also the codes (810000/820000/830000) of the residence
    # permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证, 2018), whose 18-character
    # numbers follow GB 11643-1999 exactly, so lenders see them in the same field.
    "71": "台湾省",
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
    "83": "台湾居民居住证",
}
"""Province-level codes accepted as the first two digits.

Deliberately *not* accepted: the 2023 Foreign Permanent Resident ID Card (外国人永久居留身份证),
which starts with ``9`` and puts a nationality code where a region code would be: its digits
mean something else, so it needs its own parser rather than a widened table here."""

EARLIEST_BIRTH_DATE: Final = date(1900, 1, 1)
"""Nobody alive was born earlier; older dates are typing errors or made-up numbers."""

_CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "CST")
_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
"""ISO 7064 MOD 11-2 weights, 2^(n-1) mod 11 for character positions n = 18 … 2 counted from the
right: 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2."""
_CHECK_CHARS: Final = "10X98765432"
"""Check character indexed by (weighted sum mod 11)."""
_DIGITS: Final = frozenset("0123456789")
_LENGTH: Final = 18
_LEGACY_LENGTH: Final = 15
_MASK_HEAD: Final = 3
_MASK_TAIL: Final = 1


class Sex(StrEnum):
    """Sex as encoded in the sequence digits (odd = male), as the standard defines it."""

    MALE = "male"
    FEMALE = "female"


class IdNumberReason(StrEnum):
    """The ``reason`` detail of an ``input.id_number_invalid`` error, in checking order."""

    LENGTH = "length"
    CHARACTERS = "characters"
    REGION = "region"
    BIRTH_DATE = "birth_date"
    CHECK_DIGIT = "check_digit"


class IdNumberError(InputError):
    """An ID number that is not well-formed.  ``detail = {"reason": IdNumberReason}``.

    The message and detail never contain the input: it is personal information, and an error
    object ends up in logs and API responses.
    """

    code = ErrorCode.ID_NUMBER_INVALID

    def __init__(self, reason: IdNumberReason) -> None:
        super().__init__(f"invalid ID number ({reason})", detail={"reason": str(reason)})
        self.reason = reason


@dataclass(frozen=True, slots=True, repr=False)
class IdNumber:
    """A well-formed, normalised resident ID number.  Build it with :func:`parse`.

    ``number`` is the normalised 18-character form (upper-case ``X``; 15-digit numbers converted).
    Printing, formatting or ``repr`` shows only :meth:`mask`; read ``number`` explicitly when the
    full value is really needed (encryption, pseudonymisation, an authority check).
    """

    number: str
    region_code: str
    birth_date: date
    sex: Sex
    legacy: bool = False

    @property
    def province_code(self) -> str:
        """The first two digits: the province-level unit of :attr:`region_code`."""
        return self.region_code[:2]

    def mask(self) -> str:
        """The number for display: first 3 and last 1 characters, the rest as ``*``.

        ``110**************X``: enough for a user to recognise "their" number on a screen, while
        hiding the birth date and the sequence digits (whose last digit gives away the sex) and
        most of the region.  The check character shown is a function of the hidden digits and
        carries under 4 bits.
        """
        hidden = _LENGTH - _MASK_HEAD - _MASK_TAIL
        return self.number[:_MASK_HEAD] + "*" * hidden + self.number[-_MASK_TAIL:]

    def age_on(self, day: date) -> int:
        """Completed years of age on ``day`` (a person born on 29 February ages on 1 March)."""
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - int(before_birthday)

    def __repr__(self) -> str:
        return f"IdNumber({self.mask()!r}, legacy={self.legacy})"

    def __str__(self) -> str:
        return self.mask()


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character (``0``–``9`` or ``X``) for 17 ASCII digits."""
    if len(first17) != _LENGTH - 1 or not _DIGITS.issuperset(first17):
        raise ValueError("check_character needs exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse(text: str, *, today: date | None = None) -> IdNumber:
    """Parse and validate an 18-character (or legacy 15-digit) resident ID number.

    The input is NFKC-normalised first (so full-width digits and ``Ｘ`` typed with a Chinese input
    method are accepted) and stripped of surrounding whitespace; a lower-case ``x`` is accepted
    as the check character.  ``today`` (default: today in China Standard Time) bounds the birth
    date and exists so that tests do not depend on the clock.

    Raises :class:`IdNumberError` (``input.id_number_invalid``) with the first failing
    :class:`IdNumberReason`: length, characters, region, birth_date, check_digit.
    """
    value = unicodedata.normalize("NFKC", text).strip()
    if len(value) == _LEGACY_LENGTH:
        return _parse_legacy(value, today)
    if len(value) != _LENGTH:
        raise IdNumberError(IdNumberReason.LENGTH)
    body, check = value[:-1], value[-1].upper()
    if not _DIGITS.issuperset(body) or not (check in _DIGITS or check == "X"):
        raise IdNumberError(IdNumberReason.CHARACTERS)
    region, birth = _validate_body(body, today)
    if check_character(body) != check:
        raise IdNumberError(IdNumberReason.CHECK_DIGIT)
    return IdNumber(body + check, region, birth, _sex(body), legacy=False)


def is_valid(text: str, *, today: date | None = None) -> bool:
    """Whether :func:`parse` accepts ``text``."""
    try:
        parse(text, today=today)
    except IdNumberError:
        return False
    return True


def _parse_legacy(value: str, today: date | None) -> IdNumber:
    """A first-generation 15-digit number, converted as GB 11643-1999 prescribes (century 19)."""
    if not _DIGITS.issuperset(value):
        raise IdNumberError(IdNumberReason.CHARACTERS)
    body = value[:6] + "19" + value[6:]
    region, birth = _validate_body(body, today)
    return IdNumber(body + check_character(body), region, birth, _sex(body), legacy=True)


def _validate_body(body: str, today: date | None) -> tuple[str, date]:
    """Region and birth date of 17 ASCII digits, or the matching :class:`IdNumberError`."""
    region = body[:6]
    if region[:2] not in PROVINCE_CODES:
        raise IdNumberError(IdNumberReason.REGION)
    try:
        birth = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise IdNumberError(IdNumberReason.BIRTH_DATE) from None
    latest = today if today is not None else datetime.now(UTC).astimezone(_CHINA_STANDARD_TIME)
    latest_day = latest.date() if isinstance(latest, datetime) else latest
    if not EARLIEST_BIRTH_DATE <= birth <= latest_day:
        raise IdNumberError(IdNumberReason.BIRTH_DATE)
    return region, birth


def _sex(body: str) -> Sex:
    return Sex.MALE if int(body[16]) % 2 == 1 else Sex.FEMALE

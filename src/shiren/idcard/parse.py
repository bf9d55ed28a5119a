"""OCR lines of a rectified card → which side it is and its typed fields.

Input: the :class:`~shiren.models.protocols.TextLine` s read on the card warped upright to
856 × 540 px (:data:`~shiren.idcard.card.CARD_WIDTH_PX`).  The card's layout is fixed by its
standard (GA 450-2013), so the parser leans on *where* things are as much as on what was read:

* front: labels (姓名 性别 民族 出生 住址 公民身份号码) in a column at the left edge, each value
  starting at about 19 % of the card's width on the same row; the address wraps over up to three
  rows; the number runs along the bottom; the photo fills the right third;
* back: 中华人民共和国 / 居民身份证 at the top, 签发机关 and 有效期限 with their values below.

OCR reads a small, letter-spaced label unreliably (``姓名`` comes back as ``名``, ``多`` or
nothing): a label read whole is cut off by its text, else by each character's position along the
line (:attr:`TextLine.char_positions`): left of the value column is label, whatever it was read
as.  Digits get the usual repairs (``O``→``0``, ``I``/``l``→``1``, ``x``→``X``, full-width by
NFKC); a repaired value's confidence is lowered so that a reviewer sees it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final

from shiren.domain.idnumber import check_character
from shiren.idcard.card import (
    BACK_FIELDS,
    CARD_HEIGHT_PX,
    CARD_WIDTH_PX,
    FRONT_FIELDS,
    LONG_TERM,
    CardField,
    CardSide,
)
from shiren.models.protocols import TextLine

W: Final = float(CARD_WIDTH_PX)
H: Final = float(CARD_HEIGHT_PX)
VALUE_COLUMN_X: Final = 0.175 * W
"""Front: the label column ends here (label characters centred at 7–15 % of the width, value
characters from 20 %)."""
PHOTO_X: Final = 0.615 * W
"""Front: the photo starts here; nothing but the number row is printed right of it."""
BACK_VALUE_X: Final = 0.345 * W
"""Back: 签发机关 / 有效期限 end here, their values start at about 37 %."""
NUMBER_ROW_Y: Final = 0.76 * H
"""Front: the number row lies below this line (its centre at about 87 %)."""
REPAIR_PENALTY: Final = 0.85
"""Confidence factor for a value whose characters had to be repaired or completed."""

_ETHNIC_GROUPS_TEXT: Final = (
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 "
    "怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
)
ETHNIC_GROUPS: Final = frozenset(_ETHNIC_GROUPS_TEXT.split(" "))
"""The 56 ethnic groups as printed on the card (without 族), GB/T 3304-1991."""

_DIGIT_REPAIRS: Final = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "i": "1", "|": "1", "!": "1",
     "Z": "2", "z": "2", "S": "5", "s": "5", "B": "8", "b": "6", "g": "9", "q": "9"}
)  # fmt: skip
_NUMBER_RUN = re.compile(r"[0-9X]{18,}")
_DATE = re.compile(r"(\d{4})\D{0,3}?(\d{1,2})\D{0,3}?(\d{1,2})")
_DAY = r"(\d{4})\D?(\d{2})\D?(\d{2})"
_VALIDITY = re.compile(_DAY + r"\D{0,3}?(?:" + _DAY + r"|(长期|长|期))")
_CJK = re.compile(r"[\u3400-\u9fff·]")
_FRONT_LABELS: Final = ("姓名", "性别", "民族", "出生", "住址", "公民身份号码")
_BACK_LABELS: Final = ("中华人民共和国", "居民身份证", "签发机关", "有效期限")
_OTHER_DOCUMENTS: Final = {
    "驾驶证": "driving_licence", "行驶证": "vehicle_licence", "护照": "passport",
    "PASSPORT": "passport", "居住证": "residence_permit", "社会保障卡": "social_security_card",
    "银联": "bank_card", "UNIONPAY": "bank_card", "港澳居民来往内地通行证": "home_return_permit",
    "永久性居民身份证": "hong_kong_or_macao_id", "永久居留": "foreign_permanent_resident_id",
}  # fmt: skip
"""Text that only other documents carry (a bank card's UnionPay mark, a licence's title)."""


@dataclass(frozen=True, slots=True)
class Glyph:
    """One character read, where its centre is on the card (px), and its line's confidence;
    ``placed``: the position is the recogniser's (not even spacing assumed along the line)."""

    char: str
    x: float
    y: float
    confidence: float
    placed: bool = True


@dataclass(frozen=True, slots=True)
class Row:
    """The glyphs of the lines that share one printed row, left to right."""

    glyphs: tuple[Glyph, ...]
    y: float

    @property
    def text(self) -> str:
        return "".join(g.char for g in self.glyphs)

    def right_of(self, x: float) -> Row:
        return Row(tuple(g for g in self.glyphs if g.x > x), self.y)

    def value(self, label: str) -> Row:
        """What follows ``label``: cut after the label when it was read whole, else at the
        front's value column (the label read as something else, or not at all)."""
        text = self.text
        at = text.find(label)
        if at >= 0:
            return Row(self.glyphs[at + len(label) :], self.y)
        return self.right_of(VALUE_COLUMN_X)

    def after(self, *labels: str) -> Row | None:
        """The glyphs after the first of ``labels`` (whole label first, then its tail) read in
        the row, or None when none was."""
        text = self.text
        for label in labels:
            at = text.find(label)
            if at >= 0:
                return Row(self.glyphs[at + len(label) :], self.y)
        return None


def glyphs(line: TextLine) -> list[Glyph]:
    """``line``'s characters, NFKC-normalised (full-width → ASCII), spaces dropped, each placed
    along the line's mid-axis by :attr:`TextLine.char_positions` (even spacing when absent)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = line.box[:4]
    start = ((x0 + x3) / 2, (y0 + y3) / 2)
    end = ((x1 + x2) / 2, (y1 + y2) / 2)
    n = len(line.text)
    placed = len(line.char_positions) == n
    where = line.char_positions if placed else [(i + 0.5) / n for i in range(n)]
    out = []
    for char, f in zip(line.text, where, strict=True):
        for c in unicodedata.normalize("NFKC", char):
            if not c.isspace():
                x = start[0] + f * (end[0] - start[0])
                y = start[1] + f * (end[1] - start[1])
                out.append(Glyph(c, x, y, line.confidence, placed))
    return out


def rows(lines: list[TextLine]) -> list[Row]:
    """Lines grouped into printed rows (their vertical centres within half a line's height),
    top to bottom."""
    ordered = sorted(lines, key=_centre_y)
    groups: list[list[TextLine]] = []
    for line in ordered:
        if groups and abs(_centre_y(line) - _centre_y(groups[-1][-1])) < 0.5 * _height(line):
            groups[-1].append(line)
        else:
            groups.append([line])
    out = []
    for group in groups:
        found = sorted(_row_glyphs(group), key=lambda g: g.x)
        if found:
            out.append(Row(tuple(found), sum(map(_centre_y, group)) / len(group)))
    return out


_SAME_GLYPH: Final = 0.7
"""Two glyphs of overlapping lines closer than this many line heights are one printed character."""


def _row_glyphs(group: list[TextLine]) -> list[Glyph]:
    """The glyphs of one row's lines, each printed character once.

    The detector often boxes a label and its value separately, with boxes that overlap by a
    character: the character under the overlap is then read twice — whole by the line it starts
    (or ends), cut in half at the edge of the other, where it comes back doubled (云云南省) or as
    something else (西 → 面).  Of two glyphs of overlapping lines that fall on one character, the
    one nearer its own line's end is dropped."""
    lines = [(line, glyphs(line), _span(line)) for line in group]
    dropped: set[int] = set()
    for i, (line_a, found_a, (a0, a1)) in enumerate(lines):
        for line_b, found_b, (b0, b1) in lines[i + 1 :]:
            if min(a1, b1) <= max(a0, b0):
                continue  # no overlap
            near = _SAME_GLYPH * min(_height(line_a), _height(line_b))
            for g in found_a:
                for h in found_b:
                    shared = max(a0, b0) - near <= g.x <= min(a1, b1) + near
                    if not shared or abs(g.x - h.x) >= near or id(g) in dropped:
                        continue
                    edge_g = min(g.x - a0, a1 - g.x)
                    edge_h = min(h.x - b0, b1 - h.x)
                    dropped.add(id(g) if edge_g < edge_h else id(h))
    return [g for _, found, _ in lines for g in found if id(g) not in dropped]


def _span(line: TextLine) -> tuple[float, float]:
    """Where ``line`` starts and ends along the card's x axis."""
    xs = [p[0] for p in line.box[:4]]
    return min(xs), max(xs)


def _centre_y(line: TextLine) -> float:
    return sum(p[1] for p in line.box) / len(line.box)


def _height(line: TextLine) -> float:
    (x0, y0), _, _, (x3, y3) = line.box[:4]
    return max(1.0, math.hypot(x3 - x0, y3 - y0))


def _has(text: str, label: str) -> bool:
    """``label`` read in ``text``: all of it for a 2-character label, or all but one character
    for a longer one (in order)."""
    it = iter(text)
    found = sum(1 for char in label if char in it)
    return found == len(label) if len(label) <= 2 else found >= len(label) - 1


def side_of(lines: list[TextLine]) -> CardSide:
    """Front, back or unknown, from the labels read (and the number's or the dates' shape)."""
    text = "".join(unicodedata.normalize("NFKC", line.text) for line in lines).replace(" ", "")
    front = sum(_has(text, label) for label in _FRONT_LABELS)
    front += 2 * bool(_NUMBER_RUN.search(text.translate(_DIGIT_REPAIRS).upper()))
    back = sum(_has(text, label) for label in _BACK_LABELS)
    back += 2 * bool(_VALIDITY.search(text))
    if max(front, back) < 2 or front == back:
        return CardSide.UNKNOWN
    return CardSide.FRONT if front > back else CardSide.BACK


def other_document(lines: list[TextLine]) -> str | None:
    """The kind of another document whose marks were read (a driving licence, a passport, a bank
    card, …), or None."""
    text = "".join(unicodedata.normalize("NFKC", line.text) for line in lines)
    text = text.replace(" ", "").upper()
    return next((kind for mark, kind in _OTHER_DOCUMENTS.items() if mark in text), None)


def id_numbers(lines: list[TextLine]) -> list[CardField]:
    """Every ID-number-shaped value read (normally one; two mean two cards), repaired."""
    return [value for value in map(number_in, rows(lines)) if value is not None]


def number_in(row: Row) -> CardField | None:
    """The 18-character number in ``row``, with OCR repairs: letters that look like digits, a
    lower-case ``x``; when a longer run was read, the 18 characters whose check character is
    right (else the first 18).  Shorter runs are no number: a second-generation card never
    carries a 15-digit one, so a 15-character run is a number read in part."""
    chars = [g for g in row.glyphs if not _CJK.match(g.char)]
    raw = "".join(g.char for g in chars)
    repaired = raw.translate(_DIGIT_REPAIRS).upper()
    match = max(_NUMBER_RUN.finditer(repaired), key=lambda m: len(m.group()), default=None)
    if match is None:
        return None
    run = match.group()
    starts = [i for i in range(len(run) - 17) if "X" not in run[i : i + 17]]
    if not starts:
        return None
    start = next((i for i in starts if _valid_shape(run[i : i + 18])), starts[0])
    begin, end = match.start() + start, match.start() + start + 18
    confidence = sum(g.confidence for g in chars[begin:end]) / 18
    if repaired[begin:end] != raw[begin:end]:
        confidence *= REPAIR_PENALTY
    return CardField("id_number", repaired[begin:end], confidence)


def _valid_shape(value: str) -> bool:
    return len(value) == 18 and value[:17].isdigit() and check_character(value[:17]) == value[17]


def parse_front(lines: list[TextLine]) -> dict[str, CardField]:
    """The portrait side's fields that could be read (names as in
    :data:`~shiren.idcard.card.FRONT_FIELDS`)."""
    found = [r for r in (_outside_photo(r) for r in rows(lines)) if r.glyphs]
    number_row = _number_row(found)
    bottom = number_row.y if number_row is not None else NUMBER_ROW_Y
    upper = [r for r in found if r is not number_row and r.y < bottom and not _number_label(r.text)]
    fields: dict[str, CardField] = {}
    if number_row is not None and (number := number_in(number_row)) is not None:
        fields["id_number"] = number
    slots = _front_slots(upper)
    for name, parser in (("name", _name), ("sex", _sex), ("birth_date", _birth)):
        value = parser(slots[name][0]) if name in slots else None
        if value is not None:
            fields[name] = value
    if "sex" in slots and (ethnicity := _ethnicity(slots["sex"][0])) is not None:
        fields["ethnicity"] = ethnicity
    if (address := _address(slots.get("address", []))) is not None:
        fields["address"] = address
    return {name: fields[name] for name in FRONT_FIELDS if name in fields}


def _outside_photo(row: Row) -> Row:
    """The row without what lies over the photo (its background, a hologram's letters)."""
    if row.y > NUMBER_ROW_Y:
        return row
    return Row(tuple(g for g in row.glyphs if g.x < PHOTO_X), row.y)


def _number_label(text: str) -> bool:
    """公民身份号码 read on a row of its own (the number's row tilted away from it)."""
    return "号码" in text or "身份" in text or _has(text, "公民身份号码")


def _number_row(found: list[Row]) -> Row | None:
    candidates = [r for r in found if number_in(r) is not None]
    if candidates:
        return max(candidates, key=lambda r: r.y)
    bottom = [r for r in found if r.y > NUMBER_ROW_Y]
    return bottom[-1] if bottom else None


_SLOT_OFFSETS: Final = {"name": 0, "sex": 1, "birth_date": 2, "address": 3}
"""Front rows in print order: the sex row also holds the ethnicity; the address takes up to 3."""
_YEAR_MONTH = re.compile(r"\d{4}\D{0,2}年|\d{4}\D{0,3}\d{1,2}\D{0,3}\d{1,2}\D?日")


def _front_label(text: str) -> str | None:
    """Which field a front row is, from its label (or, for the birth date, its shape)."""
    if _has(text, "出生") or _YEAR_MONTH.search(text.translate(_DIGIT_REPAIRS)):
        return "birth_date"
    if _has(text, "性别") or _has(text, "民族"):
        return "sex"
    if _has(text, "住址"):
        return "address"
    return "name" if _has(text, "姓名") else None


def _front_slots(upper: list[Row]) -> dict[str, list[Row]]:
    """Which rows hold which field: a row whose label was read is placed by it; the others by
    the print order, counted from the most reliable label read (the birth date's digits first)."""
    anchors: dict[str, int] = {}
    for i, row in enumerate(upper):
        kind = _front_label(row.text)
        if kind is not None and kind not in anchors:
            anchors[kind] = i
    base = next(
        (
            anchors[k] - _SLOT_OFFSETS[k]
            for k in ("birth_date", "sex", "address", "name")
            if k in anchors
        ),
        0,
    )
    slots: dict[str, list[Row]] = {}
    for kind, offset in _SLOT_OFFSETS.items():
        i = anchors.get(kind, base + offset)
        if 0 <= i < len(upper):
            slots[kind] = upper[i : i + 3] if kind == "address" else [upper[i]]
    return slots


def _cjk_value(row: Row) -> tuple[str, float] | None:
    chars = [g for g in row.glyphs if _CJK.match(g.char)]
    if not chars:
        return None
    return "".join(g.char for g in chars), sum(g.confidence for g in chars) / len(chars)


def _name(row: Row) -> CardField | None:
    value = _cjk_value(row.value("姓名"))
    if value is None:
        return None
    text, confidence = value
    text = text.removeprefix("姓名").strip("·")
    return CardField("name", text, confidence) if text else None


def _sex(row: Row) -> CardField | None:
    end = min((g.x for g in row.glyphs if g.char in "民族" and g.x > VALUE_COLUMN_X), default=W)
    for g in row.value("性别").glyphs:
        if g.char in "男女" and g.x < end:
            return CardField("sex", g.char, g.confidence)
    return None


def _ethnicity(row: Row) -> CardField | None:
    """The value after 民族 (or its 族, or its 民), else what lies right of 43 % of the card; a
    value outside the 56 groups is kept with a lowered confidence (or snapped to the one group
    it contains)."""
    tail = row.after("民族", "族", "民") or row.right_of(0.43 * W)
    value = _cjk_value(tail)
    if value is None:
        return None
    text, confidence = value[0].removesuffix("族"), value[1]
    if text not in ETHNIC_GROUPS:
        close = [e for e in ETHNIC_GROUPS if e in text or (len(text) > 1 and text in e)]
        if len(close) == 1:
            text = close[0]
        confidence *= REPAIR_PENALTY
    return CardField("ethnicity", text, confidence) if text else None


def _birth(row: Row) -> CardField | None:
    value_glyphs = [g for g in row.glyphs if not _CJK.match(g.char) or g.char in "年月日"]
    raw = "".join(g.char for g in value_glyphs)
    repaired = raw.translate(_DIGIT_REPAIRS)
    match = _DATE.search(repaired)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    confidence = sum(g.confidence for g in value_glyphs) / len(value_glyphs)
    if repaired != raw:
        confidence *= REPAIR_PENALTY
    return CardField("birth_date", born.isoformat(), confidence)


def _address(address_rows: list[Row]) -> CardField | None:
    parts = []
    for row in address_rows:
        value = [g for g in row.value("住址").glyphs if g.x < PHOTO_X]
        # A stray mark between the label and the value (read as "-" or "一") lies in the label
        # column, where no value is printed; punctuation never starts an address line either.
        while value and (
            (value[0].placed and value[0].x < VALUE_COLUMN_X) or not value[0].char.isalnum()
        ):
            value.pop(0)
        if value:
            parts.append(value)
    chars = [g for part in parts for g in part]
    if not chars:
        return None
    text = "".join(g.char for g in chars).removeprefix("住址")
    confidence = sum(g.confidence for g in chars) / len(chars)
    return CardField("address", text, confidence) if text else None


def parse_back(lines: list[TextLine]) -> dict[str, CardField]:
    """The emblem side's fields that could be read: ``authority``, ``valid_from``,
    ``valid_until`` (dates ``YYYY-MM-DD``, or ``长期``)."""
    fields: dict[str, CardField] = {}
    found = rows(lines)
    validity = next((r for r in found if _VALIDITY.search(r.text.translate(_DIGIT_REPAIRS))), None)
    if validity is not None:
        fields.update(_validity(validity))
    authority = next((r for r in found if _has(r.text, "签发机关")), None)
    if authority is None:  # the label lost: the row below the title that names a 公安局
        below = [r for r in found if r.y > 0.55 * H and (validity is None or r.y < validity.y)]
        fallback = below[-1] if below and validity is not None else None
        authority = next((r for r in below if "局" in r.text), fallback)
    if authority is not None:
        tail = authority.after("签发机关", "机关", "关") or authority.right_of(BACK_VALUE_X)
        value = _cjk_value(tail)
        if value is not None:
            fields["authority"] = CardField("authority", value[0], value[1])
    return {name: fields[name] for name in BACK_FIELDS if name in fields}


def _validity(row: Row) -> dict[str, CardField]:
    tail = row.after("有效期限", "期限", "限") or row.right_of(BACK_VALUE_X)
    raw = tail.text
    repaired = raw.translate(_DIGIT_REPAIRS)
    match = _VALIDITY.search(repaired)
    if match is None:
        return {}
    confidence = sum(g.confidence for g in tail.glyphs) / max(1, len(tail.glyphs))
    if repaired != raw:
        confidence *= REPAIR_PENALTY
    out = {}
    start = _iso(*match.groups()[0:3])
    if start is not None:
        out["valid_from"] = CardField("valid_from", start, confidence)
    if match.group(7):
        full = match.group(7) == LONG_TERM
        out["valid_until"] = CardField(
            "valid_until", LONG_TERM, confidence * (1.0 if full else REPAIR_PENALTY)
        )
    elif (end := _iso(*match.groups()[3:6])) is not None:
        out["valid_until"] = CardField("valid_until", end, confidence)
    return out


def _iso(year: str, month: str, day: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


__all__ = [
    "ETHNIC_GROUPS", "Glyph", "Row", "glyphs", "id_numbers", "number_in", "other_document",
    "parse_back", "parse_front", "rows", "side_of",
]  # fmt: skip

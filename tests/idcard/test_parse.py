"""The card parsers, fed OCR lines by hand: labels read or lost, OCR confusions, full-width
characters, spaces, multi-line addresses, both sides, and the side decision."""

from __future__ import annotations

import pytest

from shiren.idcard import parse
from shiren.idcard.card import CardSide
from shiren.models.protocols import TextLine


def line(
    text: str,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    *,
    confidence: float = 0.99,
    positions: tuple[float, ...] = (),
) -> TextLine:
    """A horizontal line read on the rectified card (856 × 540), box clockwise from top-left."""
    return TextLine(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), text, confidence, positions)


def front_lines(**replace: TextLine | None) -> list[TextLine]:
    """A clean front as PP-OCRv4 reads a rendered card: labels and values as separate lines."""
    lines = {
        "name_label": line("姓名", 56, 71, 120, 100),
        "name": line("张伟明", 159, 66, 251, 102),
        "sex_label": line("性别", 56, 138, 121, 166),
        "sex": line("男", 161, 136, 191, 166),
        "ethnicity": line("民族汉", 303, 136, 423, 166, positions=(0.12, 0.4, 0.87)),
        "birth_label": line("出生", 56, 206, 120, 234),
        "birth": line("1990年3月7日", 161, 204, 419, 236),
        "address_label": line("住址", 56, 273, 121, 301),
        "address1": line("北京市朝阳区建国路八十", 162, 273, 438, 303),
        "address2": line("八号院三号楼二单元五零", 163, 313, 439, 343),
        "address3": line("一室", 159, 350, 217, 380),
        "number_label": line("公民身份号码", 59, 456, 205, 482),
        "number": line("110105199003071239", 300, 455, 664, 487),
    }
    lines.update(replace)
    return [value for value in lines.values() if value is not None]


def values(fields: dict[str, parse.CardField]) -> dict[str, str]:
    return {name: field.value for name, field in fields.items()}


EXPECTED_FRONT = {
    "name": "张伟明",
    "sex": "男",
    "ethnicity": "汉",
    "birth_date": "1990-03-07",
    "address": "北京市朝阳区建国路八十八号院三号楼二单元五零一室",
    "id_number": "110105199003071239",
}


def test_a_clean_front_gives_every_field() -> None:
    fields = parse.parse_front(front_lines())
    assert values(fields) == EXPECTED_FRONT
    assert all(0.9 < f.confidence <= 1.0 for f in fields.values())
    assert parse.side_of(front_lines()) is CardSide.FRONT


def test_labels_on_the_value_lines_are_cut_where_the_value_column_starts() -> None:
    """The specimen's name line: 姓名 read as a lone 名 — a cut by text would keep it or lose
    the first character of the name; the cut by position does neither."""
    merged = {
        "name_label": None,
        "name": line("名刘小合", 56, 66, 251, 102, positions=(0.2, 0.56, 0.74, 0.9)),
        "sex_label": None,
        "sex": line("性别女", 56, 136, 191, 166, positions=(0.1, 0.44, 0.81)),
        "birth_label": None,
        "birth": line("出生1995年6月6日", 56, 204, 419, 236),
        "address_label": None,
        "address1": line("住址上海市静安区万荣路1268号", 56, 273, 438, 303),
        "address2": None,
        "address3": None,
    }
    got = values(parse.parse_front(front_lines(**merged)))
    assert got["name"] == "刘小合"
    assert got["sex"] == "女"
    assert got["birth_date"] == "1995-06-06"
    assert got["address"] == "上海市静安区万荣路1268号"


def test_a_label_misread_as_another_character_is_still_cut() -> None:
    """RapidOCR reads the specimen's 姓名 as 多: a surname in its own right."""
    name = line("多刘小合", 56, 66, 251, 102, positions=(0.15, 0.56, 0.74, 0.9))
    got = parse.parse_front(front_lines(name_label=None, name=name))
    assert got["name"].value == "刘小合"


@pytest.mark.parametrize(
    ("read", "expected", "repaired"),
    [
        ("110105199003071239", "110105199003071239", False),
        ("11O1O5199OO3O71239", "110105199003071239", True),
        ("I10105l99003071239", "110105199003071239", True),
        ("１１０１０５１９９００３０７１２３９", "110105199003071239", False),
        ("1101 0519 9003 0712 39", "110105199003071239", False),
        ("32010219880811051x", "32010219880811051X", True),
        ("公民身份号码32010219880811051X", "32010219880811051X", False),
        ("432010219880811051X", "32010219880811051X", False),
    ],
)
def test_number_confusions_are_repaired(read: str, expected: str, repaired: bool) -> None:
    fields = parse.parse_front(front_lines(number=line(read, 300, 455, 664, 487)))
    assert fields["id_number"].value == expected
    assert (fields["id_number"].confidence < 0.9) is repaired


def test_a_number_that_is_not_a_number_is_not_invented() -> None:
    fields = parse.parse_front(front_lines(number=line("1101051990", 300, 455, 500, 487)))
    assert "id_number" not in fields


def test_rows_are_placed_by_order_when_no_label_was_read() -> None:
    """A blurred card: only the values were read."""
    lines = front_lines(
        name_label=None,
        sex_label=None,
        birth_label=None,
        address_label=None,
        number_label=None,
        ethnicity=line("汉", 390, 136, 423, 166),
    )
    assert values(parse.parse_front(lines)) == EXPECTED_FRONT


def test_a_missing_row_does_not_shift_the_others() -> None:
    got = values(parse.parse_front(front_lines(name=None)))
    assert "name" not in got
    assert got["sex"] == "男"
    assert got["birth_date"] == "1990-03-07"


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("1995年6月6日", "1995-06-06"),
        ("1995年O6月O6日", "1995-06-06"),
        ("１９９５年６月６日", "1995-06-06"),
    ],
)
def test_birth_dates(read: str, expected: str) -> None:
    got = parse.parse_front(front_lines(birth=line(read, 161, 204, 419, 236)))
    assert got["birth_date"].value == expected


def test_an_impossible_birth_date_is_not_kept() -> None:
    got = parse.parse_front(front_lines(birth=line("1990年2月30日", 161, 204, 419, 236)))
    assert "birth_date" not in got


@pytest.mark.parametrize(
    ("read", "expected"), [("民族蒙古", "蒙古"), ("民族汉族", "汉"), ("族维吾尔", "维吾尔")]
)
def test_ethnic_groups(read: str, expected: str) -> None:
    lines = front_lines(ethnicity=line(read, 303, 136, 470, 166))
    assert parse.parse_front(lines)["ethnicity"].value == expected


def test_text_over_the_photo_is_ignored() -> None:
    hologram = line("中国CHINA", 560, 380, 760, 400)
    assert values(parse.parse_front([*front_lines(), hologram])) == EXPECTED_FRONT


def test_two_lines_of_one_row_are_joined_left_to_right() -> None:
    rows = parse.rows([line("住址", 56, 273, 121, 301), line("北京市", 162, 270, 250, 303)])
    assert [row.text for row in rows] == ["住址北京市"]


def test_even_spacing_is_assumed_without_positions() -> None:
    glyphs = parse.glyphs(line("一二三四", 0, 0, 400, 40))
    assert [round(g.x) for g in glyphs] == [50, 150, 250, 350]


def back_lines(validity: str = "2016.03.01-2036.03.01") -> list[TextLine]:
    return [
        line("中华人民共和国", 307, 60, 572, 95),
        line("居民身份证", 268, 142, 598, 200),
        line("签发机关", 160, 381, 269, 406),
        line("北京市公安局朝阳分局", 315, 376, 569, 410),
        line("有效期限", 159, 451, 269, 476),
        line(validity, 316, 449, 595, 481),
    ]


def test_a_clean_back() -> None:
    assert parse.side_of(back_lines()) is CardSide.BACK
    assert values(parse.parse_back(back_lines())) == {
        "authority": "北京市公安局朝阳分局",
        "valid_from": "2016-03-01",
        "valid_until": "2036-03-01",
    }


@pytest.mark.parametrize(
    ("read", "start", "end"),
    [
        ("2016.03.01-长期", "2016-03-01", "长期"),
        ("2016.03.01—2036.03.01", "2016-03-01", "2036-03-01"),
        ("２０１６．０３．０１－２０３６．０３．０１", "2016-03-01", "2036-03-01"),
        ("20160301-20360301", "2016-03-01", "2036-03-01"),
        ("2O16.03.01-2036.O3.01", "2016-03-01", "2036-03-01"),
        ("有效期限2016.03.01-2036.03.01", "2016-03-01", "2036-03-01"),
        ("2016.03.01-长", "2016-03-01", "长期"),
    ],
)
def test_validity_periods(read: str, start: str, end: str) -> None:
    fields = parse.parse_back(back_lines(read))
    assert (fields["valid_from"].value, fields["valid_until"].value) == (start, end)


def test_authority_on_the_label_line() -> None:
    lines = [
        *back_lines()[:2],
        line("签发机关上海市公安局静安分局", 160, 376, 569, 410),
        *back_lines()[4:],
    ]
    assert parse.parse_back(lines)["authority"].value == "上海市公安局静安分局"


def test_a_photo_with_no_card_text_is_of_unknown_side() -> None:
    assert parse.side_of([line("今天天气不错", 10, 10, 200, 40)]) is CardSide.UNKNOWN
    assert parse.side_of([]) is CardSide.UNKNOWN


def test_other_documents_are_recognised() -> None:
    licence = [
        line("中华人民共和国机动车驾驶证", 100, 20, 700, 60),
        line("姓名张三", 60, 100, 300, 130),
    ]
    assert parse.other_document(licence) == "driving_licence"
    assert parse.other_document([line("UnionPay 银联", 600, 450, 800, 500)]) == "bank_card"
    assert parse.other_document(front_lines()) is None


def test_two_numbers_are_two_cards() -> None:
    lines = [*front_lines(), line("32010219880811051X", 300, 1000, 664, 1030)]
    assert len(parse.id_numbers(lines)) == 2


def test_a_number_read_in_part_is_no_number() -> None:
    """A second-generation card never prints a 15-digit number: 15 characters are a misread."""
    for read in ("104198601034878", "11010519900307123"):
        fields = parse.parse_front(front_lines(number=line(read, 300, 455, 664, 487)))
        assert "id_number" not in fields


def test_the_number_label_on_a_row_of_its_own_is_not_address() -> None:
    """A tilted card: 公民身份号码 lands on its own row, a little above the number's."""
    lines = front_lines(
        address2=None,
        address3=None,
        number_label=line("公民身份号码", 59, 436, 205, 462),
        number=line("110105199003071239", 300, 462, 664, 494),
    )
    assert parse.parse_front(lines)["address"].value == "北京市朝阳区建国路八十"


def test_an_authority_without_its_label_or_a_readable_validity() -> None:
    lines = [*back_lines()[:2], line("重庆市公安局渝中分局", 315, 376, 569, 410)]
    lines.append(line("03804.10", 316, 449, 450, 481))
    assert parse.parse_back(lines) == {
        "authority": parse.CardField("authority", "重庆市公安局渝中分局", 0.99)
    }


def test_a_stray_mark_between_label_and_address_is_dropped() -> None:
    read = line(
        "住址-上海市徐汇区",
        62,
        273,
        330,
        303,
        positions=(0.04, 0.2, 0.3, 0.43, 0.5, 0.6, 0.7, 0.8, 0.9),
    )
    got = parse.parse_front(
        front_lines(address_label=None, address1=read, address2=None, address3=None)
    )
    assert got["address"].value == "上海市徐汇区"


@pytest.mark.parametrize(
    ("label", "value", "expected"),
    [
        # Boxes as PP-OCRv4 read them on synthetic photos: the label's box overlaps the value's
        # by a character, read whole by the value's line and cut at the label line's end.
        (("签发机关面", 125, 313, (0.08, 0.29, 0.47, 0.68, 0.98)),
         ("西安市公安局雁塔分局", 299, 619, (0.07, 0.16, 0.26, 0.36, 0.45, 0.55, 0.66, 0.74,
                                        0.84, 0.95)),
         "西安市公安局雁塔分局"),
        (("签发机关合", 123, 318, (0.08, 0.26, 0.47, 0.66, 0.96)),
         ("合肥市公安局蜀山分局", 297, 622, (0.07, 0.17, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75,
                                        0.85, 0.95)),
         "合肥市公安局蜀山分局"),
    ],
)  # fmt: skip
def test_a_character_under_overlapping_boxes_is_read_once(
    label: tuple[str, float, float, tuple[float, ...]],
    value: tuple[str, float, float, tuple[float, ...]],
    expected: str,
) -> None:
    lines = back_lines()
    lines[2] = line(label[0], label[1], 385, label[2], 421, positions=label[3])
    lines[3] = line(value[0], value[1], 386, value[2], 425, positions=value[3])
    assert parse.parse_back(lines)["authority"].value == expected


def test_a_doubled_first_address_character_is_read_once() -> None:
    label = line("住址云", 61, 277, 182, 310, positions=(0.11, 0.48, 0.93))
    where = (0.06, 0.14, 0.23, 0.31, 0.41, 0.5, 0.58, 0.68, 0.77, 0.85, 0.95)
    value = line("云南省昆明市五华区复兴", 164, 277, 490, 313, positions=where)
    rest = line("路718号", 162, 321, 282, 358, positions=(0.18, 0.38, 0.49, 0.64, 0.85))
    lines = front_lines(address_label=label, address1=value, address2=rest, address3=None)
    assert parse.parse_front(lines)["address"].value == "云南省昆明市五华区复兴路718号"


def test_a_character_printed_twice_in_a_row_is_kept() -> None:
    """Only a glyph under the overlap of two boxes can be a double: 玉玉 in one line stays."""
    lines = front_lines(name=line("段玉玉", 159, 66, 251, 102, positions=(0.17, 0.5, 0.83)))
    assert parse.parse_front(lines)["name"].value == "段玉玉"
    touching = [line("住址云", 61, 277, 160, 310), line("云南省", 164, 277, 260, 313)]
    assert parse.rows(touching)[0].text == "住址云云南省"

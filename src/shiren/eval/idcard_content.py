"""What is printed on a synthetic resident ID card (居民身份证): names, numbers, dates, places.

Everything is drawn from a seeded :class:`numpy.random.Generator`, so one seed gives the same
people.  The people are fictional: names are drawn from common surnames and given-name
characters, the ID numbers are made up (a real region code, a birth date, a random sequence and
the GB 11643-1999 check character from :mod:`shiren.domain.idnumber`), and a configurable share
gets a wrong check character on purpose — the reader must flag those.

Validity periods follow the rule printed on the back of real cards (公安部, 居民身份证法 第五条):
5 years for holders under 16 at issue, 10 years for 16–25, 20 years for 26–45, 长期 from 46.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np

from shiren.domain.idnumber import check_character

LONG_TERM: Final = "长期"
_MAX_ADDRESS_CHARS: Final = 24
"""The back's "valid until" for holders aged 46 or more at issue."""


@dataclass(frozen=True, slots=True)
class Region:
    """A real GB/T 2260 county-level code and the names printed with it."""

    code: str
    province: str
    city: str
    district: str
    police: str
    """The public-security bureau's branch name, as in ``XX市公安局<police>分局``."""

    @property
    def prefix(self) -> str:
        """The address's start: province (omitted for a municipality) + city + district."""
        head = "" if self.province == self.city else self.province
        return f"{head}{self.city}{self.district}"

    @property
    def authority(self) -> str:
        """The issuing authority printed on the back (签发机关)."""
        return f"{self.city}公安局{self.police}分局"


REGIONS: Final[tuple[Region, ...]] = (
    Region("110105", "北京市", "北京市", "朝阳区", "朝阳"),
    Region("110108", "北京市", "北京市", "海淀区", "海淀"),
    Region("120101", "天津市", "天津市", "和平区", "和平"),
    Region("130102", "河北省", "石家庄市", "长安区", "长安"),
    Region("210102", "辽宁省", "沈阳市", "和平区", "和平"),
    Region("310104", "上海市", "上海市", "徐汇区", "徐汇"),
    Region("310115", "上海市", "上海市", "浦东新区", "浦东"),
    Region("320102", "江苏省", "南京市", "玄武区", "玄武"),
    Region("330106", "浙江省", "杭州市", "西湖区", "西湖"),
    Region("340104", "安徽省", "合肥市", "蜀山区", "蜀山"),
    Region("350203", "福建省", "厦门市", "思明区", "思明"),
    Region("370202", "山东省", "青岛市", "市南区", "市南"),
    Region("410105", "河南省", "郑州市", "金水区", "金水"),
    Region("420106", "湖北省", "武汉市", "武昌区", "武昌"),
    Region("430102", "湖南省", "长沙市", "芙蓉区", "芙蓉"),
    Region("440106", "广东省", "广州市", "天河区", "天河"),
    Region("440305", "广东省", "深圳市", "南山区", "南山"),
    Region("500103", "重庆市", "重庆市", "渝中区", "渝中"),
    Region("510107", "四川省", "成都市", "武侯区", "武侯"),
    Region("530102", "云南省", "昆明市", "五华区", "五华"),
    Region("610113", "陕西省", "西安市", "雁塔区", "雁塔"),
)

SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES: Final = ("欧阳", "司马", "上官", "诸葛", "东方", "慕容")
GIVEN_MALE: Final = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰建国志文博"
GIVEN_FEMALE: Final = "芳娜敏静丽艳娟霞燕玲桂英婷雪慧红梅琳颖倩晶欣悦佳怡瑶萍莉洁琴云兰"
GIVEN_ANY: Final = "晨子雨嘉天思一家海春德永玉金小新秋安成立中光荣"

ETHNICITIES: Final[tuple[tuple[str, float], ...]] = (
    # Roughly the 2020 census shares among the largest groups; 汉 is about 91 %.
    ("汉", 0.88),
    ("壮", 0.018),
    ("回", 0.015),
    ("满", 0.014),
    ("维吾尔", 0.012),
    ("苗", 0.01),
    ("彝", 0.009),
    ("土家", 0.009),
    ("藏", 0.007),
    ("蒙古", 0.006),
    ("朝鲜", 0.004),
    ("侗", 0.004),
    ("瑶", 0.004),
    ("白", 0.004),
    ("哈尼", 0.004),
)

ROADS: Final = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "胜利路", "文化路", "长江路",
    "黄河路", "朝阳路", "幸福路", "青年路", "光明街", "东风路", "学院路", "友谊路", "团结街",
    "复兴路", "花园路", "滨江大道", "科技园路", "工业大道", "金桥路", "南京西路",
)  # fmt: skip
ESTATES: Final = (
    "阳光花园", "锦绣家园", "翠湖苑", "金色港湾", "绿城小区", "幸福里", "和平新村", "东方明珠苑",
    "碧桂园", "万科城", "天鹅湾", "书香门第",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    """One fictional card holder: both sides of one card."""

    name: str
    sex: str
    """``"男"`` or ``"女"``, as printed; it agrees with the number's sequence parity."""
    ethnicity: str
    birth_date: date
    address: str
    id_number: str
    number_valid: bool
    """False when the check character was spoiled on purpose."""
    authority: str
    valid_from: date
    valid_until: date | None
    """None for 长期 (long-term)."""

    def front_fields(self) -> dict[str, str]:
        """The front's fields as the reader reports them (dates ``YYYY-MM-DD``)."""
        return {
            "name": self.name,
            "sex": self.sex,
            "ethnicity": self.ethnicity,
            "birth_date": self.birth_date.isoformat(),
            "address": self.address,
            "id_number": self.id_number,
        }

    def back_fields(self) -> dict[str, str]:
        """The back's fields as the reader reports them (``长期`` for a long-term card)."""
        until = self.valid_until.isoformat() if self.valid_until else LONG_TERM
        return {
            "authority": self.authority,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": until,
        }

    @property
    def validity_text(self) -> str:
        """有效期限 as printed: ``2015.03.12-2035.03.12`` or ``2015.03.12-长期``."""
        until = _dotted(self.valid_until) if self.valid_until else LONG_TERM
        return f"{_dotted(self.valid_from)}-{until}"


def draw_person(rng: np.random.Generator, *, invalid_share: float, today: date) -> Person:
    """A fictional adult holder (18–70 on ``today``) with a card valid on ``today``.

    With probability ``invalid_share`` the number's check character is replaced by a wrong one.
    """
    region = REGIONS[int(rng.integers(len(REGIONS)))]
    male = bool(rng.random() < 0.5)
    birth = today - timedelta(days=int(rng.integers(18 * 365 + 5, 70 * 365)))
    number = id_number(rng, region.code, birth, male=male)
    invalid = bool(rng.random() < invalid_share)
    if invalid:
        number = spoil_check_character(rng, number)
    valid_from, valid_until = _validity(rng, birth, today)
    return Person(
        name=draw_name(rng, male=male),
        sex="男" if male else "女",
        ethnicity=_weighted(rng, ETHNICITIES),
        birth_date=birth,
        address=draw_address(rng, region),
        id_number=number,
        number_valid=not invalid,
        authority=region.authority,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def id_number(rng: np.random.Generator, region: str, birth: date, *, male: bool) -> str:
    """A well-formed 18-character number: region, ``YYYYMMDD``, 3-digit sequence whose last digit
    is odd for a man, and the ISO 7064 MOD 11-2 check character."""
    sequence = int(rng.integers(0, 50)) * 10 + 2 * int(rng.integers(0, 5)) + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_character(body)


def spoil_check_character(rng: np.random.Generator, number: str) -> str:
    """``number`` with its check character replaced by a different, wrong one."""
    wrong = [c for c in "0123456789X" if c != number[-1]]
    return number[:-1] + wrong[int(rng.integers(len(wrong)))]


def draw_name(rng: np.random.Generator, *, male: bool) -> str:
    """A 2–3 character name: a common surname (rarely a compound one) and a given name."""
    pool = (GIVEN_MALE if male else GIVEN_FEMALE) + GIVEN_ANY
    if rng.random() < 0.03:
        return COMPOUND_SURNAMES[int(rng.integers(len(COMPOUND_SURNAMES)))] + _pick(rng, pool)
    surname = _pick(rng, SURNAMES)
    given_len = 1 if rng.random() < 0.3 else 2
    return surname + "".join(_pick(rng, pool) for _ in range(given_len))


def draw_address(rng: np.random.Generator, region: Region) -> str:
    """An address in ``region``: road and number, sometimes an estate, building and room."""
    road = ROADS[int(rng.integers(len(ROADS)))]
    text = f"{region.prefix}{road}{int(rng.integers(1, 999))}号"
    estate = ESTATES[int(rng.integers(len(ESTATES)))]
    building, room = int(rng.integers(1, 30)), int(rng.integers(1, 33)) * 100 + 1
    longer = f"{text}{estate}{building}栋{room + int(rng.integers(0, 4))}室"
    # Real cards wrap the address at about 11 characters a line; keep to two lines.
    return longer if rng.random() < 0.55 and len(longer) <= _MAX_ADDRESS_CHARS else text


def _validity(rng: np.random.Generator, birth: date, today: date) -> tuple[date, date | None]:
    """Issue date and expiry of a card valid on ``today``, by the holder's age at issue."""
    # Issue at least 16 years after birth and after 2004 (second-generation cards), at most
    # 20 years ago, so most cards have a finite term.
    earliest = max(_add_years(birth, 16), date(2004, 1, 1), _add_years(today, -19))
    span = max((today - earliest).days, 1)
    for _ in range(20):
        issued = earliest + timedelta(days=int(rng.integers(span)))
        years = _term_years(_age(birth, issued))
        if years is None:
            return issued, None
        until = _add_years(issued, years)
        if until > today:
            return issued, until
    issued = today - timedelta(days=int(rng.integers(30, 3 * 365)))
    years = _term_years(_age(birth, issued))
    return issued, (None if years is None else _add_years(issued, years))


def _term_years(age: int) -> int | None:
    if age < 16:
        return 5
    if age <= 25:
        return 10
    if age <= 45:
        return 20
    return None


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - int((day.month, day.day) < (birth.month, birth.day))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def _dotted(day: date) -> str:
    return f"{day:%Y.%m.%d}"


def _pick(rng: np.random.Generator, chars: str) -> str:
    return chars[int(rng.integers(len(chars)))]


def _weighted(rng: np.random.Generator, table: tuple[tuple[str, float], ...]) -> str:
    weights = np.array([w for _, w in table], dtype=np.float64)
    return table[int(rng.choice(len(table), p=weights / weights.sum()))][0]


__all__ = [
    "LONG_TERM",
    "REGIONS",
    "Person",
    "Region",
    "draw_address",
    "draw_name",
    "draw_person",
    "id_number",
    "spoil_check_character",
]

"""The ID-card evaluation's arithmetic on fake readers with known answers, the portrait-match
protocol on a fake face engine, and (once ``shiren.idcard`` exists) a small real run."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from shiren.errors import ErrorCode, FaceError, InputError
from shiren.eval.idcard_eval import (
    NUMBER_INVALID,
    SPECIMEN_FIELDS,
    CardOutcome,
    LevelRun,
    read_cards,
    score,
    summarize,
    targets,
)
from shiren.eval.idcard_match import portrait_match
from shiren.eval.idcard_report import IdcardRun, evaluate, levels_of, markdown
from shiren.eval.idcard_synth import (
    CardGenerator,
    CardTruth,
    CjkFontMissingError,
    FaceBank,
    SynthConfig,
    find_cjk_font,
)
from tests.conftest import SHARED, require

CORNERS = ((0.0, 0.0), (856.0, 0.0), (856.0, 540.0), (0.0, 540.0))


@dataclass(frozen=True)
class FakeField:
    name: str
    value: str
    confidence: float = 1.0


@dataclass(frozen=True)
class FakeCheck:
    code: str
    passed: bool | None
    detail: str = ""


@dataclass(frozen=True)
class FakeReading:
    """Follows ``shiren.idcard.types.CardReading``."""

    side: str
    fields: dict[str, FakeField]
    checks: tuple[FakeCheck, ...] = ()
    portrait: np.ndarray | None = None
    corners: Any = None
    guidance: tuple[str, ...] = ()


def reading(
    side: str,
    values: Mapping[str, str],
    *,
    flagged: bool = False,
    portrait: bool = True,
    guidance: tuple[str, ...] = (),
    corners: Any = None,
) -> FakeReading:
    checks = (FakeCheck(NUMBER_INVALID, False),) if flagged else ()
    return FakeReading(
        side=side,
        fields={k: FakeField(k, v) for k, v in values.items()},
        checks=checks,
        portrait=np.zeros((8, 8, 3), np.uint8) if portrait else None,
        corners=corners,
        guidance=guidance,
    )


def truth(index: int, side: str, values: dict[str, str], valid: bool | None = None) -> CardTruth:
    return CardTruth(
        index=index, side=side, fields=values, number_valid=valid, corners=CORNERS,
        portrait_box=None, face=None, level="moderate", rotation_deg=0.0, upside_down=False,
        image_size=(1280, 960),
    )  # fmt: skip


FRONT = {"name": "张伟", "sex": "男", "id_number": "110105199001011234"}
BACK = {"authority": "北京市公安局朝阳分局", "valid_until": "长期"}


def test_score_compares_after_nfkc_and_whitespace_only() -> None:
    t = truth(0, "front", {**FRONT, "address": "北京市朝阳区人民路1号"}, valid=True)
    r = reading(
        "front", {"name": "张 伟", "sex": "女", "id_number": "１１０１０５１９９００１０１１２３４",
                  "address": "北京市朝阳区\n人民路1号"},
    )  # fmt: skip
    outcome = score(t, r, 12.0)
    assert outcome.exact("name")
    assert outcome.exact("id_number")
    assert outcome.exact("address")
    assert not outcome.exact("sex")
    assert outcome.side_read == "front"
    assert outcome.portrait_found
    missing = score(t, reading("front", {}), 1.0)
    assert not any(missing.exact(n) for n in t.fields)
    assert missing.fields["name"] == ("张伟", None)


def _outcomes() -> list[CardOutcome]:
    """Four fronts and two backs with hand-counted mistakes."""
    wrong_number = {**FRONT, "id_number": "110105199001011235"}
    return [
        # valid number, read right, not flagged
        score(truth(0, "front", FRONT, True), reading("front", FRONT), 10.0),
        # valid number misread by one digit, flagged (a false alarm, but not "when read exactly")
        score(truth(2, "front", FRONT, True),
              reading("front", wrong_number, flagged=True, guidance=("idcard.glare",)), 20.0),
        # invalid number read right and flagged (caught)
        score(truth(4, "front", FRONT, False), reading("front", FRONT, flagged=True), 30.0),
        # invalid number read right, not flagged (missed), no portrait, wrong name, called a back
        score(truth(6, "front", FRONT, False),
              reading("back", {**FRONT, "name": "张传"}, portrait=False,
                      guidance=("idcard.glare", "idcard.blur")), 40.0),
        score(truth(1, "back", BACK), reading("back", BACK, portrait=False), 50.0),
        score(truth(3, "back", BACK),
              reading("back", {**BACK, "valid_until": "长 期"}, portrait=False), 60.0),
    ]  # fmt: skip


def test_summary_counts_by_hand() -> None:
    s = summarize(_outcomes())
    assert (s["cards"], s["fronts"], s["backs"]) == (6, 4, 2)
    assert s["fields"]["name"] == {
        "exact": 0.75,
        "k": 3,
        "n": 4,
        "ci95": s["fields"]["name"]["ci95"],
    }
    assert (s["fields"]["id_number"]["k"], s["fields"]["id_number"]["n"]) == (3, 4)
    assert s["fields"]["valid_until"]["exact"] == 1.0
    assert s["fields"]["authority"]["n"] == 2
    assert "birth_date" not in s["fields"]
    assert (s["side_accuracy"]["k"], s["side_accuracy"]["n"]) == (5, 6)
    assert s["side_errors"] == {"front->back": 1}
    assert (s["portrait_found"]["k"], s["portrait_found"]["n"]) == (3, 4)
    cd = s["check_digit"]
    assert (cd["caught"]["k"], cd["caught"]["n"]) == (1, 2)
    assert (cd["caught_when_read_exactly"]["k"], cd["caught_when_read_exactly"]["n"]) == (1, 2)
    assert (cd["false_alarms"]["k"], cd["false_alarms"]["n"]) == (1, 2)
    assert (cd["false_alarms_when_read_exactly"]["k"],
            cd["false_alarms_when_read_exactly"]["n"]) == (0, 1)  # fmt: skip
    assert s["guidance"] == {"idcard.blur": 1, "idcard.glare": 2}
    assert s["failed_checks"] == {NUMBER_INVALID: 2}
    assert s["time_ms"]["p50"] == pytest.approx(35.0)
    assert s["time_ms"]["max"] == 60.0
    assert s["misreads"]["name"] == [{"card": 6, "expected": "张伟", "read": "张传"}]
    for r in (s["side_accuracy"], s["portrait_found"], cd["caught"]):
        lo, hi = r["ci95"]
        assert 0.0 <= lo <= r["rate"] <= hi <= 1.0


def test_targets_met_or_not() -> None:
    goals = targets(summarize(_outcomes()))
    assert goals["side_accuracy"]["met"] is False
    assert goals["check_digit.caught"]["measured"] == 0.5
    assert goals["time_ms.p95"]["met"] is True  # p95 of 10..60 ms is far below 400 ms
    perfect = targets(summarize(_outcomes()[:1]))
    assert perfect["fields.name.exact"]["met"] is True
    assert perfect["check_digit.caught"]["met"] is None  # no invalid number: nothing to judge


def test_corner_error_is_order_free() -> None:
    t = truth(0, "back", BACK)
    rotated = [CORNERS[2], CORNERS[3], CORNERS[0], CORNERS[1]]
    upside_down = score(t, reading("back", BACK, corners=rotated), 1.0)
    assert upside_down.corner_error == 0.0
    assert upside_down.corners_in_order is False
    assert score(t, reading("back", BACK, corners=CORNERS), 1.0).corners_in_order is True
    shifted = np.array(CORNERS) + np.array([10.0, 0.0])
    err = score(t, reading("back", BACK, corners=shifted), 1.0).corner_error
    assert err == pytest.approx(10.0 / np.hypot(856, 540))
    assert score(t, reading("back", BACK, corners=[(1, 2)]), 1.0).corner_error is None


@dataclass
class TruthfulReader:
    """Answers from the ground truth it was given (optionally spoiling one field)."""

    answers: dict[bytes, CardTruth] = field(default_factory=dict)
    spoil: str | None = None
    calls: list[date | None] = field(default_factory=list)

    def read(self, image: bytes | np.ndarray, *, expected_id_number: str | None = None,
             today: date | None = None) -> FakeReading:  # fmt: skip
        self.calls.append(today)
        assert isinstance(image, bytes)
        if image not in self.answers:  # the specimen
            return reading("front", SPECIMEN_FIELDS, flagged=True)
        t = self.answers[image]
        values = {k: ("?" if k == self.spoil else v) for k, v in t.fields.items()}
        return reading(t.side, values, flagged=t.number_valid is False,
                       portrait=t.side == "front", corners=t.corners)  # fmt: skip


@pytest.fixture(scope="module")
def font() -> Path:
    try:
        return find_cjk_font()
    except CjkFontMissingError:
        pytest.skip("no CJK font (apt-get install -y fonts-wqy-zenhei)")


def test_perfect_reader_scores_one(font: Path) -> None:
    gen = CardGenerator(SynthConfig(seed=11, level="none", invalid_share=0.5), font=font)
    cards = list(gen.cards(6))
    reader = TruthfulReader({c.jpeg: c.truth for c in cards}, spoil="address")
    ticks: list[int] = []
    run = read_cards(reader, cards, level="none", today=gen.config.today, progress=ticks.append)
    assert ticks == [1] * 6
    assert reader.calls == [gen.config.today] * 6
    s = summarize(run.outcomes)
    assert s["side_accuracy"]["rate"] == 1.0
    assert s["portrait_found"]["rate"] == 1.0
    assert s["fields"]["id_number"]["exact"] == 1.0
    assert s["fields"]["address"]["exact"] == 0.0
    assert s["check_digit"]["false_alarms"]["k"] == 0
    assert s["check_digit"]["caught"]["rate"] in (None, 1.0)
    assert s["corners"]["median_error_rel"] == 0.0


def test_evaluate_writes_a_full_report(font: Path, tmp_path: Path) -> None:
    specimen = require(SHARED / "cn_idcard_specimen" / "cn_idcard_demo_specimen_front.jpg")
    synth = SynthConfig(seed=3)
    run = IdcardRun(cards=4, levels=("none", "strong"), synth=synth, specimen=specimen, font=font)
    answers: dict[bytes, CardTruth] = {}
    for level in run.levels:
        gen = CardGenerator(SynthConfig(seed=3, level=level), font=font)
        answers |= {c.jpeg: c.truth for c in gen.cards(4)}
    report = evaluate(TruthfulReader(answers), run)
    assert set(report["levels"]) == {"none", "strong"}
    sp = report["specimen"]
    assert sp["side_correct"]
    assert sp["number_invalid_flagged"]
    assert all(f["exact"] for f in sp["fields"].values())
    level = report["levels"]["strong"]
    assert level["targets"]["side_accuracy"]["met"] is True
    text = markdown(report)
    assert "## Level `strong`" in text
    assert "fields.id_number.exact" in text
    assert "刘小合" in text
    json.dumps(report)  # JSON-ready without help


def test_levels_option() -> None:
    assert levels_of("all", ("none", "moderate")) == ("none", "moderate")
    assert levels_of("moderate, none", ("none", "moderate")) == ("moderate", "none")
    with pytest.raises(ValueError, match="levels"):
        levels_of("extreme", ("none", "moderate"))


# -- portrait match on a fake face engine --------------------------------------------------


@dataclass
class FakeAnalysis:
    template: np.ndarray


class ColourVerifier:
    """A face engine whose "identity" is the image's red level: one-hot templates, dot score.
    An all-black image has no face."""

    threshold = 0.5

    def analyze(self, image: str | np.ndarray) -> FakeAnalysis:
        pixels = np.asarray(Image.open(image).convert("RGB")) if isinstance(image, str) else image
        red = int(pixels[..., 0].max())
        if red == 0:
            raise FaceError("no face")
        template = np.zeros(8, np.float32)
        template[red // 32] = 1.0
        return FakeAnalysis(template)

    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b)


def test_portrait_match_counts_by_hand(tmp_path: Path) -> None:
    people = {"p1": 40, "p2": 100, "p3": 160}
    rows = []
    for person, red in people.items():
        for k in range(2):
            rel = f"images/{person}_{k}.png"
            (tmp_path / "images").mkdir(exist_ok=True)
            Image.new("RGB", (4, 4), (red, 0, 0)).save(tmp_path / rel)
            rows.append({"path": rel, "identity": person})
    with (tmp_path / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["path", "identity"])
        writer.writeheader()
        writer.writerows(rows)
    bank = FaceBank.load(tmp_path)

    def front(index: int, person: str) -> CardTruth:
        t = truth(index, "front", dict(FRONT), True)
        return replace(t, face=(person, f"images/{person}_0.png"))

    def plate(red: int) -> np.ndarray:
        return np.full((4, 4, 3), (red, 0, 0), np.uint8)

    cards = (front(0, "p1"), front(2, "p2"), front(4, "p3"))
    # p1's portrait is right, p2's has no face, p3's looks like p1 (a cut of the wrong region).
    run = LevelRun("moderate", (), cards, {0: plate(40), 2: plate(0), 4: plate(40)})
    m = portrait_match(cast(Any, ColourVerifier()), bank, run)
    assert (m["cards"], m["identities"]) == (3, 3)
    card, original = m["card_portrait"], m["original"]
    # Genuine: each card against its person's other image (1 each); impostors: 4 per card.
    assert (card["n_genuine"], card["n_impostor"]) == (3, 12)
    assert (card["fnmr_at_shipped"]["k"], card["fmr_at_shipped"]["k"]) == (2, 2)
    assert card["fta"]["k"] == 1
    assert (original["fnmr_at_shipped"]["k"], original["fmr_at_shipped"]["k"]) == (0, 0)
    assert original["at_fmr_0.01"]["fnmr"]["k"] == 0
    assert m["proposed_card_threshold"] is None  # 12 impostors cannot resolve FMR 1e-2


# -- the real reader -------------------------------------------------------------------------


def _real_reader() -> Callable[[], Any]:
    types = pytest.importorskip("shiren.idcard.types")
    return cast(Callable[[], Any], types.CardReader.load)


@pytest.mark.slow
def test_real_reader_on_four_cards(font: Path) -> None:
    load = _real_reader()
    run = IdcardRun(cards=4, levels=("moderate",), synth=SynthConfig(seed=0), font=font)
    report = evaluate(load(), run)
    s = report["levels"]["moderate"]
    assert {"fields", "side_accuracy", "portrait_found", "check_digit", "guidance",
            "time_ms", "targets"} <= set(s)  # fmt: skip
    rates = [f["exact"] for f in s["fields"].values()]
    rates += [s["side_accuracy"]["rate"], s["portrait_found"]["rate"]]
    assert all(r is None or 0.0 <= r <= 1.0 for r in rates)
    assert s["time_ms"]["n"] == 4


class RefusingReader:
    def read(self, image: bytes | np.ndarray, *, expected_id_number: str | None = None,
             today: date | None = None) -> FakeReading:  # fmt: skip
        raise InputError("two cards", code=ErrorCode.INPUT_INVALID)


def test_a_refusal_counts_against_every_rate(font: Path) -> None:
    gen = CardGenerator(SynthConfig(seed=1, level="none"), font=font)
    run = read_cards(RefusingReader(), gen.cards(2), level="none")
    s = summarize(run.outcomes)
    assert s["side_accuracy"]["k"] == 0
    assert s["side_errors"] == {"back->error": 1, "front->error": 1}
    assert s["failed_checks"] == {"input.invalid": 2}
    assert s["fields"]["id_number"]["exact"] == 0.0


@pytest.mark.slow
def test_cli_writes_report_json_and_md(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shiren.cli.main import app

    _real_reader()
    out = tmp_path / "report"
    args = ["eval", "idcard", "--out", str(out), "--cards", "2", "--level", "none"]
    result = CliRunner().invoke(app, [*args, "--no-match", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["protocol"]["cards"] == 2
    assert report["provenance"]["settings"]["levels"] == ["none"]
    assert {m["name"] for m in report["provenance"]["models"]} >= {"ppocr-v4"}
    assert "## Level `none`" in (out / "report.md").read_text(encoding="utf-8")
    bad = CliRunner().invoke(app, ["eval", "idcard", "--out", str(out), "--level", "extreme"])
    assert bad.exit_code == 2

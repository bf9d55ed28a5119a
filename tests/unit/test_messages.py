"""The one message table: complete for every code of both enums, in both languages."""

from __future__ import annotations

import re

import pytest

from shiren.errors import ErrorCode, InputError
from shiren.messages import (
    _MESSAGES,
    DEFAULT_LANG,
    SUPPORTED_LANGS,
    all_codes,
    message,
    negotiate_lang,
    normalise_lang,
)
from shiren.reasons import ReasonCode

CJK = re.compile(r"[\u4e00-\u9fff]")
CODE_SHAPE = re.compile(r"^[a-z]+(\.[a-z_]+)+$")


@pytest.mark.parametrize("code", all_codes(), ids=str)
@pytest.mark.parametrize("lang", SUPPORTED_LANGS)
def test_every_code_has_a_message_in_every_language(
    code: ErrorCode | ReasonCode, lang: str
) -> None:
    text = message(code, lang)
    assert text.strip() == text
    assert text
    if lang == "zh-CN":
        assert CJK.search(text), text
    else:
        assert not CJK.search(text), text
        assert text.isascii(), text


def test_table_has_no_stale_entries() -> None:
    assert set(_MESSAGES) == {str(code) for code in all_codes()}


def test_codes_are_unique_dotted_and_lower_case() -> None:
    values = [str(code) for code in all_codes()]
    assert len(values) == len(set(values))
    assert all(CODE_SHAPE.match(value) for value in values), values


def test_required_reason_codes_exist() -> None:
    required = {
        "quality.no_face", "quality.multiple_faces", "quality.too_dark", "quality.overexposed",
        "quality.backlight", "quality.blurred", "quality.face_too_small", "quality.face_too_large",
        "quality.face_cut_off", "quality.pose_yaw", "quality.pose_pitch", "quality.pose_roll",
        "quality.eyes_closed", "quality.occluded_mask", "quality.occluded_sunglasses",
        "quality.occluded_hat", "quality.occluded_hair_eyes", "quality.low_contrast",
        "quality.landmarks_unreliable", "match.below_threshold", "match.above_threshold",
        "liveness.challenge_failed", "liveness.spoof_suspected",
    }  # fmt: skip
    assert required <= {str(code) for code in ReasonCode}


def test_messages_give_actionable_tips() -> None:
    assert "光线明亮均匀" in message(ReasonCode.QUALITY_TOO_DARK)
    assert "bright, even light" in message(ReasonCode.QUALITY_TOO_DARK, "en")
    assert "behind you" in message(ReasonCode.QUALITY_BACKLIGHT, "en")
    assert "背对光源" in message(ReasonCode.QUALITY_BACKLIGHT, "zh-CN")


@pytest.mark.parametrize(
    "code", [ReasonCode.LIVENESS_SPOOF_SUSPECTED, ReasonCode.LIVENESS_CHALLENGE_FAILED]
)
def test_spoof_messages_stay_coarse(code: ReasonCode) -> None:
    """Nothing that tells an attacker which presentation was caught or how."""
    en = message(code, "en").lower()
    zh = message(code, "zh-CN")
    for word in (
        "spoof",
        "print",
        "screen",
        "replay",
        "mask",
        "photo of",
        "attack",
        "fake",
        "score",
    ):
        assert word not in en
    for word in ("翻拍", "屏幕", "打印", "攻击", "假", "面具", "分数"):
        assert word not in zh


def test_match_messages_reveal_no_score() -> None:
    for code in (ReasonCode.MATCH_BELOW_THRESHOLD, ReasonCode.MATCH_ABOVE_THRESHOLD):
        assert not re.search(r"\d", message(code, "en") + message(code, "zh-CN"))


def test_default_language_is_simplified_chinese() -> None:
    assert DEFAULT_LANG == "zh-CN"
    assert message(ErrorCode.FACE_NOT_FOUND) == message(ErrorCode.FACE_NOT_FOUND, "zh-CN")


def test_codes_may_be_given_as_strings() -> None:
    assert message("quality.too_dark", "en") == message(ReasonCode.QUALITY_TOO_DARK, "en")
    with pytest.raises(KeyError):
        message("quality.no_such_code", "en")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
    ],
)
def test_language_tags_are_normalised(tag: str, expected: str) -> None:
    assert normalise_lang(tag) == expected


@pytest.mark.parametrize("tag", ["fr", "", "de-DE", "*"])
def test_unsupported_languages_are_input_errors(tag: str) -> None:
    with pytest.raises(InputError) as caught:
        message(ReasonCode.QUALITY_BLURRED, tag)
    assert caught.value.code == ErrorCode.INPUT_INVALID


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("fr-FR, de;q=0.9", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh;q=0.1, en", "en"),
        ("fr, zh-CN;q=0.8, en;q=0.5", "zh-CN"),
        ("en;q=0.5, zh;q=0.5", "en"),
        ("*", "zh-CN"),
        ("en;q=abc", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate_lang(header) == expected

"""The zh-CN and English messages of issue 18's read-the-digits codes: merged into the one table
in :mod:`shiren.messages` through :mod:`shiren.capture_messages` (that table is at the 600-line
module limit).  The liveness reasons stay coarse on purpose: the borrower is asked to read the
digits aloud, never told which signal failed."""

from __future__ import annotations

from typing import Final

from shiren.errors import ErrorCode
from shiren.reasons import ReasonCode

_SPOOF: Final = (
    "验证未通过，请本人实时拍摄后重试",
    "Verification failed. Please try again, live and in person.",
)
"""The same coarse text as every other attack-catching signal (see :mod:`shiren.messages`)."""

READDIGITS_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    ErrorCode.AUDIO_MISSING: (
        "视频中没有声音，请允许使用麦克风后重新录制",
        "The video has no sound. Allow the microphone and record again.",
    ),
    ErrorCode.AUDIO_SILENT: (
        "没有录到声音，请检查麦克风，在安静处大声读出数字",
        "No sound was recorded. Check the microphone and read the digits aloud.",
    ),
    ErrorCode.AUDIO_LENGTH_MISMATCH: (
        "声音与画面长度不一致，请重新录制",
        "The sound and the picture have different lengths. Please record again.",
    ),
    ErrorCode.AV_TIMESTAMPS_MISMATCH: (
        "声音与画面时间不一致，请重新录制",
        "The sound and the picture are out of step. Please record again.",
    ),
    ErrorCode.RECORDING_TOO_LARGE: (
        "视频文件太大，请重新录制",
        "The video file is too large. Please record again.",
    ),
    ReasonCode.LIVENESS_SPEECH_MISMATCH: (
        "未能听清您读出的数字，请在安静处随提示逐个大声读出",
        "We could not hear the digits. In a quiet place, read each digit aloud as it appears.",
    ),
    ReasonCode.LIVENESS_TOO_NOISY: (
        "周围太吵，请到安静的地方，随提示逐个大声读出数字",
        "It is too noisy here. Move somewhere quieter and read each digit aloud as it appears.",
    ),
    ReasonCode.LIVENESS_AV_DESYNC: _SPOOF,
    ReasonCode.LIVENESS_DIGITS_MISMATCH: _SPOOF,
    ReasonCode.LIVENESS_RECOGNISER_UNAVAILABLE: (
        "暂时无法完成验证，请稍后重试",
        "The check cannot be completed right now. Please try again later.",
    ),
}

__all__ = ["READDIGITS_MESSAGES"]

"""The zh-CN and English messages of issue 17's capture codes (the light ladder, the
record-and-upload fallback) and, through it, issue 16's ID-card codes
(:mod:`shiren.idcard_messages`): merged into the one table in :mod:`shiren.messages`, which would
pass the 600-line module limit with them inline."""

from __future__ import annotations

from typing import Final

from shiren.errors import ErrorCode
from shiren.idcard_messages import IDCARD_MESSAGES
from shiren.readdigits_messages import READDIGITS_MESSAGES
from shiren.reasons import ReasonCode

CAPTURE_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    **IDCARD_MESSAGES,
    **READDIGITS_MESSAGES,
    ErrorCode.RECORDING_TOO_LONG: (
        "视频太长，请按提示在 20 秒内完成动作后重新录制",
        "The video is too long. Record again and finish the actions within 20 seconds.",
    ),
    ErrorCode.CAPTURE_RECORDING_NOT_ALLOWED: (
        "此验证不能使用录制视频，请使用其他方式",
        "This verification cannot use a recorded video. Please use another way.",
    ),
    ReasonCode.LIVENESS_FLASH_REQUIRED: (
        "本次验证需要屏幕闪光，已转人工审核",
        "This verification needs the screen flash: it has been sent for a manual review.",
    ),
}

__all__ = ["CAPTURE_MESSAGES"]

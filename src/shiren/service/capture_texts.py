"""What the capture page tells a borrower, in zh-CN and English: the separate consent for face
processing, the non-face alternatives, and the troubleshooting advice after a failed check.

The consent text is served by the API and rendered as is, so the SHA-256 recorded with the
borrower's acceptance is the hash of exactly what they were shown (lender name and retention
filled in).  Bump :data:`CONSENT_VERSION` whenever a text changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from shiren.reasons import ReasonCode

CONSENT_VERSION: Final = "capture-2026-12.1"
CONSENT_PURPOSE: Final = "face_capture"
CARD_CONSENT_VERSION: Final = "capture-card-2026-12.1"
"""The version of the texts shown when the capture starts with the ID card (the face texts and
:data:`_ID_CARD`)."""
LANGS: Final = ("zh-CN", "en")

_CONSENT: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "title": "人脸识别单独同意",
        "purpose": "目的：{lender} 需要确认正在办理业务的是您本人。"
        "我们将通过摄像头拍摄您的面部视频，进行活体检测，并与您的证件照比对。",
        "retention": "保存期限：原始图像和视频在比对完成后立即删除，不会保存；"
        "仅保存加密的人脸特征，最长 {days} 天，到期或您要求删除时销毁。",
        "processor": "处理者：{lender}（个人信息处理者），"
        "以及其委托运行的 shiren 实人认证服务（受托处理者）。"
        "人脸信息不会用于其他目的，也不会提供给第三方。",
        "rights": "您可以拒绝，也可以随时撤回同意并要求删除；拒绝不影响您通过其他方式办理。",
        "alternative": "不想使用人脸？您可以选择以下方式之一完成验证：",
    },
    "en": {
        "title": "Separate consent to face recognition",
        "purpose": "Purpose: {lender} needs to confirm that it is really you. The camera films "
        "your face for a short liveness check, which is compared with your ID photo.",
        "retention": "Retention: the images and video are deleted as soon as the check is done; "
        "only an encrypted face template is kept, for at most {days_en}, and destroyed "
        "then or when you ask.",
        "processor": "Who processes it: {lender} (the controller) and the shiren verification "
        "service it runs (the processor). Your face data is used for nothing else and is not "
        "shared with third parties.",
        "rights": "You may refuse, or withdraw consent and ask for deletion at any time; "
        "refusing does not stop you from using another way to verify.",
        "alternative": "Rather not use your face? You can verify in one of these ways instead:",
    },
}

_ID_CARD: Final[dict[str, str]] = {
    "zh-CN": "身份证：您将拍摄本人居民身份证的正面（和背面）。我们会识别证件上的姓名、"
    "身份证号、有效期等信息并核验真伪，用证件照作为人脸比对的参照；"
    "证件照片在识别后立即删除，不会保存，姓名与身份证号加密保存。",
    "en": "ID card: you will photograph the front (and back) of your own resident ID card. "
    "We read its name, ID number and validity to check it, and use its portrait as the "
    "reference for the face comparison; the card photos are deleted as soon as they are read, "
    "and the name and number are stored encrypted.",
}

FALLBACK_LABELS: Final[dict[str, tuple[str, str]]] = {
    "sms_otp": ("短信验证码", "SMS one-time code"),
    "bank_card_4": ("银行卡四要素验证", "Bank-card verification (4 details)"),
    "authority_name_id": ("姓名与身份证号核验", "Name and ID-number check"),
    "manual_review": ("人工审核", "Manual review by staff"),
}

# The troubleshooting table: symptom → likely cause → what to tell the user.
ADVICE: Final[dict[str, tuple[tuple[str, str], tuple[str, str]]]] = {
    "too_dark": (
        ("光线太暗", "Too dark"),
        (
            "请到明亮、均匀的光线下，避免背后有强光",
            "Move to bright, even light; avoid light behind you.",
        ),
    ),
    "face_covered": (
        ("面部被遮挡", "Face covered"),
        (
            "请摘下眼镜、帽子或口罩，整理头发，露出完整面部",
            "Take off glasses, hat or mask, tidy your hair and show your whole face.",
        ),
    ),
    "not_live": (
        ("不是同一人或非活体", "Not the same person / not live"),
        (
            "必须由您本人实时拍摄，请按提示完成动作",
            "It must be you, live. Follow the prompts.",
        ),
    ),
    "not_heard": (
        ("周围太吵或没有听清数字", "Too noisy, or the digits not heard"),
        (
            "请到安静的地方，数字出现后逐个大声读出",
            "Move somewhere quiet and read each digit aloud as it appears.",
        ),
    ),
    "stuck": (
        ("无响应、卡住", "Stuck, no response"),
        (
            "请检查网络，切换 Wi-Fi 或移动数据，或更新应用后重试",
            "Check the network, switch between Wi-Fi and mobile data, or update the app.",
        ),
    ),
    "id_mismatch": (
        ("身份信息不一致", "Identity info mismatch"),
        (
            "请核对姓名和身份证号是否与证件一致，或联系客服",
            "Check the name and ID number against the card, or contact support.",
        ),
    ),
}

_NOT_A_PROBLEM = {
    ReasonCode.MATCH_ABOVE_THRESHOLD.value,
    ReasonCode.LIMIT_LOCKED.value,
    ReasonCode.LIMIT_DAILY_CAP.value,
    ReasonCode.LIVENESS_PASSIVE_UNAVAILABLE.value,
}
_LIGHT = {"quality.too_dark", "quality.backlight", "quality.overexposed", "quality.low_contrast"}
_SPEECH = {ReasonCode.LIVENESS_SPEECH_MISMATCH.value, ReasonCode.LIVENESS_TOO_NOISY.value}
"""Read the digits: a digit not heard, or a room too noisy to judge the voice (a retry)."""


def advice_for(reasons: list[str]) -> list[str]:
    """The troubleshooting rows that explain ``reasons``, most actionable first."""
    if ReasonCode.LIVENESS_FLASH_UNSEEN.value in reasons:  # sent for review: nothing to fix
        return []
    reasons = [r for r in reasons if r not in _NOT_A_PROBLEM]
    rows: list[str] = []
    if any(r in _LIGHT for r in reasons):
        rows.append("too_dark")
    if any(r.startswith("quality.occluded") for r in reasons):
        rows.append("face_covered")
    if any(r in _SPEECH for r in reasons):
        rows.append("not_heard")
        reasons = [r for r in reasons if r not in _SPEECH]
    if any(r.startswith(("liveness.", "match.")) for r in reasons) or (not rows and reasons):
        rows.append("not_live")
    if ReasonCode.QUALITY_NO_FACE.value in reasons and "not_live" not in rows:
        rows.append("not_live")
    return rows


def consent_texts(lender: str, days: int, *, id_card: bool = False) -> dict[str, dict[str, str]]:
    """The consent texts as shown, per language (``id_card``: with what reading the card
    means, for a capture that starts with it)."""
    out = {
        lang: {
            key: text.format(lender=lender, days=days, days_en=_days_en(days))
            for key, text in parts.items()
        }
        for lang, parts in _CONSENT.items()
    }
    if id_card:
        for lang, shown in out.items():
            shown["id_card"] = _ID_CARD[lang]
    return out


def _days_en(days: int) -> str:
    """English counts its plural ("1 day", "30 days"); Chinese does not."""
    return f"{days} day" if days == 1 else f"{days} days"


def consent_sha256(texts: dict[str, str]) -> str:
    """The hash recorded with an acceptance: canonical JSON of the texts shown."""
    canonical = json.dumps(texts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def label(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    zh, en = table[key]
    return zh if lang == "zh-CN" else en


__all__ = [
    "ADVICE",
    "CARD_CONSENT_VERSION",
    "CONSENT_PURPOSE",
    "CONSENT_VERSION",
    "FALLBACK_LABELS",
    "LANGS",
    "advice_for",
    "consent_sha256",
    "consent_texts",
    "label",
]

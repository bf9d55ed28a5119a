"""The zh-CN and English messages of the ID-card codes (issue 16), merged into the one table in
:mod:`shiren.messages` (which would pass the 600-line module limit with them inline).

Like every message: short, and saying what the user can *do*.  The recapture check
(``idcard.recapture_suspected``) is a review signal whose public text stays neutral, as for
spoofs: it never says which cue (moiré, glare, colour) raised it.
"""

from __future__ import annotations

from typing import Final

from shiren.errors import ErrorCode
from shiren.reasons import ReasonCode

IDCARD_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # ---- ErrorCode: the photo cannot be read as one side of one ID card ----
    ErrorCode.IDCARD_MULTIPLE: (
        "画面中有多张证件，请每次只拍摄一张身份证的一面",
        "More than one card is in the photo. Please photograph one side of one ID card.",
    ),
    ErrorCode.IDCARD_UNSUPPORTED: (
        "这不是居民身份证，请拍摄第二代居民身份证",
        "This is not a resident ID card. Please photograph a second-generation ID card.",
    ),
    ErrorCode.IDCARD_UNREADABLE: (
        "未能读取身份证，请按提示重新拍摄",
        "The ID card could not be read. Please follow the tips and photograph it again.",
    ),
    ErrorCode.IDCARD_REJECTED: (
        "身份证核验未通过，请核对证件与填写的信息",
        "The ID card did not pass its checks. Please check the card and the details given.",
    ),
    # ---- ReasonCode: checks of what was read ----
    ReasonCode.IDCARD_NUMBER_INVALID: (
        "身份证号码无效，请核对证件",
        "The ID number is not valid. Please check the card.",
    ),
    ReasonCode.IDCARD_BIRTH_DATE_MISMATCH: (
        "出生日期与身份证号码不一致",
        "The date of birth does not agree with the ID number.",
    ),
    ReasonCode.IDCARD_SEX_MISMATCH: (
        "性别与身份证号码不一致",
        "The sex printed on the card does not agree with the ID number.",
    ),
    ReasonCode.IDCARD_NUMBER_MISMATCH: (
        "证件号码与填写的身份证号码不一致",
        "The card's number differs from the ID number given.",
    ),
    ReasonCode.IDCARD_NAME_MISMATCH: (
        "证件姓名与填写的姓名不一致，需要人工审核",
        "The name on the card differs from the name given; the case needs a review.",
    ),
    ReasonCode.IDCARD_EXPIRED: (
        "身份证已过有效期，请使用有效证件",
        "The ID card has expired. Please use a valid card.",
    ),
    ReasonCode.IDCARD_VALIDITY_INVALID: (
        "证件有效期限不符合规定，请核对证件",
        "The validity period is not one a resident ID card can have. Please check the card.",
    ),
    ReasonCode.IDCARD_FIELDS_MISSING: (
        "部分证件信息未能识别，请重新拍摄清晰完整的照片",
        "Some details could not be read. Please take a clear photo of the whole card.",
    ),
    ReasonCode.IDCARD_RECAPTURE_SUSPECTED: (
        "证件照片需要人工审核",
        "The card photo needs a manual review.",
    ),
    # ---- ReasonCode: capture guidance ----
    ReasonCode.IDCARD_NOT_FOUND: (
        "未识别到身份证，请将证件平放并完整拍摄",
        "No ID card was found. Lay the card flat and photograph all of it.",
    ),
    ReasonCode.IDCARD_WRONG_SIDE: (
        "拍摄的证件面不对，请翻面后重新拍摄",
        "This is the other side of the card. Please turn it over and try again.",
    ),
    ReasonCode.IDCARD_CUT_OFF: (
        "证件不完整，请将四个角都放入取景框内",
        "Part of the card is outside the frame. Keep all four corners in view.",
    ),
    ReasonCode.IDCARD_TOO_FAR: (
        "证件太小，请靠近一些",
        "The card is too small in the photo. Move closer.",
    ),
    ReasonCode.IDCARD_BLURRY: (
        "照片模糊，请保持手机稳定并对焦",
        "The photo is blurry. Hold the phone still and let it focus.",
    ),
    ReasonCode.IDCARD_GLARE: (
        "证件表面反光，请避开强光或调整角度",
        "Light is reflecting off the card. Avoid direct light or tilt the card.",
    ),
}

__all__ = ["IDCARD_MESSAGES"]

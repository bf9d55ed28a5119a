"""User-facing messages for every :class:`~shiren.errors.ErrorCode` and
:class:`~shiren.reasons.ReasonCode`, in simplified Chinese and English — one table.

Messages are short and say what the user can *do* ("Move to bright, even light"), not what the
software measured.  Spoof-related messages stay deliberately coarse: the precise reason goes to the
audit log, never to the client, so that an attacker cannot tune a presentation against them.
A test checks that every code of both enums has a non-empty message in every supported language,
so a newly added code fails the suite until it is translated.
"""

from __future__ import annotations

from typing import Final

from shiren.capture_messages import CAPTURE_MESSAGES
from shiren.errors import ErrorCode, InputError
from shiren.reasons import ReasonCode

SUPPORTED_LANGS: Final = ("zh-CN", "en")
DEFAULT_LANG: Final = "zh-CN"

Code = ErrorCode | ReasonCode

# code value → (zh-CN, en)
_FRAUD: Final = (
    "您的验证需要人工审核，请耐心等待或联系客服",
    "Your verification needs a manual review. Please wait or contact support.",
)
"""Anti-fraud findings: the applicant is never told which one (a blacklist, a duplicate)."""
_SPOOF: Final = (
    "验证未通过，请本人实时拍摄后重试",
    "Verification failed. Please try again, live and in person.",
)
"""One text for every signal that catches an attack: telling the user which one fired would
teach an attacker what to fix."""

_MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # ---- ErrorCode: no verdict could be produced ----
    ErrorCode.INPUT_INVALID: (
        "请求内容无效，请检查后重试",
        "The request is invalid. Please check it and try again.",
    ),
    ErrorCode.INPUT_FILE_NOT_FOUND: ("找不到指定的文件", "The file was not found."),
    ErrorCode.INPUT_FILE_UNREADABLE: (
        "无法读取该文件，请检查后重试",
        "The file cannot be read. Please check it and try again.",
    ),
    ErrorCode.IMAGE_EMPTY: (
        "没有收到图片，请重新拍摄",
        "No image was received. Please take the photo again.",
    ),
    ErrorCode.IMAGE_TOO_LARGE: (
        "图片文件过大，请压缩后重试",
        "The image file is too large. Please send a smaller one.",
    ),
    ErrorCode.IMAGE_TOO_MANY_PIXELS: (
        "图片分辨率过高，请降低分辨率后重试",
        "The image resolution is too high. Please send a smaller image.",
    ),
    ErrorCode.IMAGE_TOO_SMALL: (
        "图片分辨率过低，请使用更清晰的照片",
        "The image is too small. Please use a higher-resolution photo.",
    ),
    ErrorCode.IMAGE_UNSUPPORTED_FORMAT: (
        "不支持该图片格式，请使用 JPEG 或 PNG",
        "This image format is not supported. Please use JPEG or PNG.",
    ),
    ErrorCode.IMAGE_CORRUPT: (
        "图片已损坏，无法读取，请重新拍摄",
        "The image is damaged and cannot be read. Please take it again.",
    ),
    ErrorCode.IMAGE_TRUNCATED: (
        "图片不完整，请重新上传",
        "The image is incomplete. Please upload it again.",
    ),
    ErrorCode.FACE_NOT_FOUND: (
        "未检测到人脸，请正对镜头",
        "No face was found. Please face the camera.",
    ),
    ErrorCode.FACE_MULTIPLE: (
        "检测到多张人脸，请确保画面中只有您本人",
        "More than one face was found. Please make sure only you are in the picture.",
    ),
    ErrorCode.FACE_UNUSABLE: (
        "人脸无法识别，请按提示重新拍摄",
        "The face cannot be used. Please follow the tips and try again.",
    ),
    ErrorCode.FRAMES_EMPTY: (
        "没有收到视频画面，请重试",
        "No video frames were received. Please try again.",
    ),
    ErrorCode.FRAMES_TOO_FEW: (
        "视频过短，请按提示完成动作",
        "The video is too short. Please complete the action as shown.",
    ),
    ErrorCode.FRAMES_INCONSISTENT: (
        "视频画面不一致，请重新录制",
        "The video frames do not match. Please record again.",
    ),
    ErrorCode.FRAMES_BAD_TIMESTAMPS: (
        "视频时间信息异常，请重新录制",
        "The video timing is invalid. Please record again.",
    ),
    ErrorCode.VIDEO_UNREADABLE: (
        "无法读取视频，请重新录制",
        "The video cannot be read. Please record again.",
    ),
    ErrorCode.CHALLENGE_INVALID: (
        "动作指令无效或已过期，请重新开始",
        "The action prompt is invalid or has expired. Please start again.",
    ),
    ErrorCode.MODEL_UNAVAILABLE: (
        "服务暂时不可用，请稍后重试",
        "The service is temporarily unavailable. Please try again later.",
    ),
    ErrorCode.MODEL_CHECKSUM_MISMATCH: (
        "服务暂时不可用，请稍后重试",
        "The service is temporarily unavailable. Please try again later.",
    ),
    ErrorCode.MODEL_UNKNOWN: (
        "服务配置有误，请联系客服",
        "The service is misconfigured. Please contact support.",
    ),
    ErrorCode.MODEL_INVALID: (
        "服务配置有误，请联系客服",
        "The service is misconfigured. Please contact support.",
    ),
    ErrorCode.CONFIG_INVALID: (
        "服务配置有误，请联系客服",
        "The service is misconfigured. Please contact support.",
    ),
    ErrorCode.INTERNAL: (
        "系统繁忙，请稍后重试",
        "Something went wrong on our side. Please try again later.",
    ),
    ErrorCode.CONSENT_PURPOSE_UNKNOWN: (
        "同意书的用途不在本机构登记的用途之中",
        "The consent names a purpose this lender has not declared.",
    ),
    ErrorCode.ID_NUMBER_INVALID: (
        "身份证号码有误，请核对后重新输入",
        "The ID number is not valid. Please check it and enter it again.",
    ),
    ErrorCode.CRYPTO_DECRYPT_FAILED: (
        "数据暂时无法读取，请联系客服",
        "The stored data cannot be read. Please contact support.",
    ),
    ErrorCode.CRYPTO_KEY_UNKNOWN: (
        "服务配置有误，请联系客服",
        "The service is misconfigured. Please contact support.",
    ),
    ErrorCode.AUDIT_PAYLOAD_FORBIDDEN: (
        "系统繁忙，请稍后重试",
        "Something went wrong on our side. Please try again later.",
    ),
    ErrorCode.SESSION_ALREADY_USED: (
        "本次验证已使用，请重新发起验证",
        "This verification session has already been used. Please start a new one.",
    ),
    ErrorCode.RECORD_NOT_FOUND: ("未找到相关记录", "The record was not found."),
    ErrorCode.RECORD_CONFLICT: (
        "记录已被修改，请刷新后重试",
        "The record was changed meanwhile. Please reload and try again.",
    ),
    ErrorCode.RECORD_DUPLICATE: (
        "记录已存在，请勿重复提交",
        "The record already exists. Please do not submit it twice.",
    ),
    ErrorCode.STORAGE_UNAVAILABLE: (
        "服务暂时不可用，请稍后重试",
        "The service is temporarily unavailable. Please try again later.",
    ),
    ErrorCode.STORAGE_FULL: (
        "服务暂时无法保存数据，请稍后重试",
        "The service cannot store data right now. Please try again later.",
    ),
    ErrorCode.SHARED_STATE_UNAVAILABLE: (
        "服务暂时不可用，请稍后重试",
        "The service is temporarily unavailable. Please try again later.",
    ),
    ErrorCode.METHOD_NOT_ALLOWED: (
        "该地址不支持此请求方法",
        "This method is not allowed on this resource.",
    ),
    ErrorCode.AUTH_REQUIRED: (
        "身份认证失败，请检查接入凭证",
        "Authentication failed. Please check the API key.",
    ),
    ErrorCode.SESSION_EXPIRED: (
        "本次验证已过期，请重新发起验证",
        "This verification session has expired. Please start a new one.",
    ),
    ErrorCode.REQUEST_TOO_LARGE: (
        "上传内容过大，请压缩后重试",
        "The upload is too large. Please send less data.",
    ),
    ErrorCode.SUBJECT_NOT_READY: (
        "该用户当前无法进行此操作，请先完成认证",
        "This user cannot do this now. Please complete the verification first.",
    ),
    ErrorCode.REVIEW_ALREADY_CLOSED: (
        "该复核已处理，请勿重复提交",
        "This review has already been decided.",
    ),
    ErrorCode.WEBHOOK_URL_INVALID: (
        "回调地址无效，生产环境须使用 HTTPS",
        "The webhook URL is invalid; production requires HTTPS.",
    ),
    ErrorCode.CONSOLE_SIGN_IN_FAILED: (
        "用户名或密码错误",
        "The username or password is wrong.",
    ),
    ErrorCode.CONSOLE_LOCKED: (
        "登录失败次数过多，账号已暂时锁定，请稍后再试",
        "Too many failed sign-ins: the account is locked for a while. Try again later.",
    ),
    ErrorCode.CONSOLE_SESSION_EXPIRED: (
        "登录已过期，请重新登录",
        "Your session has expired. Please sign in again.",
    ),
    ErrorCode.CONSOLE_FORBIDDEN: (
        "您的角色无权执行此操作",
        "Your role does not allow this.",
    ),
    ErrorCode.CONSOLE_CSRF_FAILED: (
        "表单已失效，请刷新页面后重试",
        "The form has expired. Reload the page and try again.",
    ),
    ErrorCode.CONSOLE_DEMO_UNAVAILABLE: (
        "此部署暂未提供演示会话",
        "Demo sessions are not available in this deployment.",
    ),
    ErrorCode.WEBHOOK_URL_FORBIDDEN: (
        "回调地址指向不允许的网络地址（内网、本机或保留地址）",
        "The webhook URL points to a forbidden address (private, local or reserved network).",
    ),
    ErrorCode.CONSENT_WITHDRAWN: (
        "该用户已撤回人脸识别授权，请使用其他验证方式",
        "This user withdrew consent to face verification. Please use another way to verify.",
    ),
    ErrorCode.CAPTURE_TOKEN_INVALID: (
        "验证链接无效，请回到借款应用重新打开",
        "This verification link is not valid. Please open it again from the lending app.",
    ),
    ErrorCode.CAPTURE_TOKEN_EXPIRED: (
        "验证链接已过期，请回到借款应用获取新链接",
        "This verification link has expired. Please get a new one from the lending app.",
    ),
    ErrorCode.CAPTURE_RATE_LIMITED: (
        "请求过于频繁，请稍候再试",
        "Too many requests. Please wait a moment.",
    ),
    ErrorCode.CAPTURE_CONSENT_REQUIRED: (
        "请先阅读并同意人脸信息处理说明",
        "Please read and accept the face-processing notice first.",
    ),
    ErrorCode.CAPTURE_RETRY_NOT_ALLOWED: (
        "无法从此链接再次尝试，请回到借款应用",
        "No further attempt can be started from this link. Please go back to the lending app.",
    ),
    # ---- ReasonCode: capture quality ----
    ReasonCode.QUALITY_NO_FACE: (
        "未检测到人脸，请正对镜头",
        "No face found. Please look straight at the camera.",
    ),
    ReasonCode.QUALITY_MULTIPLE_FACES: (
        "画面中有多张人脸，请确保只有您本人",
        "More than one face. Make sure only you are in the picture.",
    ),
    ReasonCode.QUALITY_FACE_CUT_OFF: (
        "人脸不完整，请将整张脸放入取景框内",
        "Part of your face is outside the frame. Keep your whole face in the frame.",
    ),
    ReasonCode.QUALITY_FACE_TOO_SMALL: (
        "距离太远，请靠近一些",
        "Too far away. Move closer to the camera.",
    ),
    ReasonCode.QUALITY_FACE_TOO_LARGE: (
        "距离太近，请离远一些",
        "Too close. Move a little further from the camera.",
    ),
    ReasonCode.LIVENESS_FLASH_UNSEEN: (
        "屏幕闪光没能在脸上看出来（可能光线太强），请避开强光直射",
        "The screen's flash could not be seen on your face (too much light?). Avoid direct sun.",
    ),
    ReasonCode.QUALITY_TOO_DARK: (
        "光线太暗，请到光线明亮均匀的地方",
        "Too dark. Move to bright, even light.",
    ),
    ReasonCode.QUALITY_OVEREXPOSED: (
        "光线太强，请避免强光直射面部",
        "Too bright. Avoid strong light shining on your face.",
    ),
    ReasonCode.QUALITY_BACKLIGHT: (
        "逆光，请避免背对光源（如窗户、灯）",
        "Backlit. Avoid having a window or lamp behind you.",
    ),
    ReasonCode.QUALITY_LOW_CONTRAST: (
        "画面发灰不清晰，请擦拭镜头并到光线均匀的地方",
        "The picture looks washed out. Wipe the lens and move to even light.",
    ),
    ReasonCode.QUALITY_BLURRED: (
        "画面模糊，请保持手机稳定并对焦",
        "Blurry. Hold the phone still and let it focus.",
    ),
    ReasonCode.QUALITY_POSE_YAW: (
        "请正对镜头，不要左右转头",
        "Face the camera; don't turn your head to the side.",
    ),
    ReasonCode.QUALITY_POSE_PITCH: (
        "请平视镜头，不要抬头或低头",
        "Look straight at the camera; don't tilt your head up or down.",
    ),
    ReasonCode.QUALITY_POSE_ROLL: (
        "请保持头部端正，不要歪头",
        "Keep your head upright; don't tilt it sideways.",
    ),
    ReasonCode.QUALITY_EYES_CLOSED: ("请睁开眼睛", "Please open your eyes."),
    ReasonCode.QUALITY_OCCLUDED_MASK: (
        "请摘下口罩，露出口鼻",
        "Please take off your mask so your nose and mouth are visible.",
    ),
    ReasonCode.QUALITY_OCCLUDED_SUNGLASSES: ("请摘下墨镜", "Please take off your sunglasses."),
    ReasonCode.QUALITY_OCCLUDED_HAT: (
        "请摘下帽子或撩开刘海，露出眉毛",
        "Take off your hat or move your hair so your eyebrows are visible.",
    ),
    ReasonCode.QUALITY_OCCLUDED_HAIR_EYES: (
        "请整理头发，不要遮挡眼睛",
        "Please move your hair away from your eyes.",
    ),
    ReasonCode.QUALITY_LANDMARKS_UNRELIABLE: (
        "人脸不够清晰，请正对镜头重新拍摄",
        "Your face could not be read clearly. Face the camera and try again.",
    ),
    # ---- ReasonCode: matching (coarse on purpose: no scores, no hints) ----
    ReasonCode.MATCH_BELOW_THRESHOLD: ("人脸比对未通过", "The face does not match."),
    ReasonCode.MATCH_SECOND_FACTOR_REQUIRED: (
        "人脸比对需要再做一项验证，请选择银行卡、身份信息或短信验证",
        "The face match needs one more check: please verify with your bank card, your ID "
        "details or an SMS code.",
    ),
    ReasonCode.MATCH_TEMPLATE_OUTDATED: (
        "已登记的人脸信息无法用于本次比对，请选择其他验证方式",
        "Your enrolled face cannot be used for this check; please choose another way to verify.",
    ),
    ReasonCode.MATCH_ABOVE_THRESHOLD: ("人脸比对通过", "The face matches."),
    # ---- ReasonCode: liveness (coarse on purpose: signals that catch attacks share one text) ----
    ReasonCode.LIVENESS_CHALLENGE_FAILED: (
        "动作未完成，请按提示重试",
        "The action was not completed. Please follow the prompt and try again.",
    ),
    ReasonCode.LIVENESS_SPOOF_SUSPECTED: _SPOOF,
    ReasonCode.LIVENESS_ACTION_MISSING: (
        "未检测到指定动作，请按提示完成动作",
        "The requested action was not seen. Please follow the prompt.",
    ),
    ReasonCode.LIVENESS_UNEXPECTED_ACTION: (
        "动作与提示不符，请只做提示的动作",
        "That was not the requested action. Please do only what the prompt asks.",
    ),
    ReasonCode.LIVENESS_FACE_LOST: (
        "检测过程中人脸离开了画面，请保持脸部在框内",
        "Your face left the frame. Please keep your face inside the frame.",
    ),
    ReasonCode.LIVENESS_MULTIPLE_FACES: (
        "画面中有多张人脸，请确保只有本人",
        "More than one face is in view. Please make sure only you are in the frame.",
    ),
    ReasonCode.LIVENESS_FACE_CHANGED: _SPOOF,
    ReasonCode.LIVENESS_FLAT_MOTION: _SPOOF,
    ReasonCode.LIVENESS_INSUFFICIENT_MOTION: (
        "转头幅度不够，请按提示转动头部",
        "Please turn your head further when asked.",
    ),
    ReasonCode.LIVENESS_COLOUR_MISMATCH: _SPOOF,
    ReasonCode.LIVENESS_COLOUR_INCONCLUSIVE: (
        "环境光线过强，请到稍暗处并保持屏幕亮度后重试",
        "The light around you is too strong. Move somewhere less bright and try again.",
    ),
    ReasonCode.LIVENESS_CHALLENGE_EXPIRED: (
        "验证已超时，请重新开始",
        "The check timed out. Please start again.",
    ),
    ReasonCode.LIVENESS_CHALLENGE_MISMATCH: _SPOOF,
    ReasonCode.LIVENESS_REPLAY_SUSPECTED: _SPOOF,
    ReasonCode.LIVENESS_INJECTION_SUSPECTED: _SPOOF,
    ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL: _FRAUD,
    ReasonCode.LIMIT_LOCKED: (
        "失败次数过多，请30分钟后再试，或选择其他验证方式",
        "Too many failed attempts. Try again in 30 minutes or choose another way to verify.",
    ),
    ReasonCode.CONSENT_WITHDRAWN: (
        "您已撤回人脸识别授权，请选择其他验证方式",
        "You withdrew your consent to face verification. Please choose another way to verify.",
    ),
    ReasonCode.REVIEW_CANDIDATE_EXPIRED: (
        "待复核的人脸数据已过保存期限，请重新采集",
        "The face data awaiting review has expired. Please capture it again.",
    ),
    ReasonCode.LIMIT_DAILY_CAP: (
        "今日验证次数已达上限，请选择其他验证方式",
        "You have reached today's limit. Please choose another way to verify.",
    ),
    ReasonCode.LIVENESS_PASSIVE_UNAVAILABLE: (
        "暂时无法完成验证，请稍后重试",
        "The check cannot be completed right now. Please try again later.",
    ),
    # ---- connectors and fallbacks (issue 6) ----
    ErrorCode.CONNECTOR_UNAVAILABLE: (
        "外部核验服务暂时不可用，请稍后重试",
        "The verification provider is unavailable. Please try again later.",
    ),
    ErrorCode.CONNECTOR_TIMEOUT: (
        "外部核验服务响应超时，请稍后重试",
        "The verification provider did not answer in time. Please try again later.",
    ),
    ErrorCode.CONNECTOR_CIRCUIT_OPEN: (
        "外部核验服务暂停调用，请稍后重试",
        "Calls to the verification provider are paused. Please try again later.",
    ),
    ErrorCode.CONNECTOR_BAD_RESPONSE: (
        "外部核验服务返回了无效结果，请稍后重试",
        "The verification provider sent an invalid answer. Please try again later.",
    ),
    ErrorCode.CONNECTOR_AUTH_FAILED: (
        "外部核验服务拒绝了本服务的凭证",
        "The verification provider refused this service's credentials.",
    ),
    ErrorCode.CONNECTOR_REJECTED: (
        "外部核验服务拒绝了提交的信息，请检查后重试",
        "The verification provider refused the data. Please check it and try again.",
    ),
    ErrorCode.CARD_NUMBER_INVALID: (
        "银行卡号无效，请检查后重新输入",
        "The bank card number is invalid. Please check it and enter it again.",
    ),
    ErrorCode.PHONE_INVALID: (
        "手机号无效，请输入11位中国大陆手机号",
        "The phone number is invalid. Please enter an 11-digit mainland China mobile number.",
    ),
    ErrorCode.OTP_NOT_SENT: (
        "请先获取短信验证码",
        "Please request a text-message code first.",
    ),
    ErrorCode.OTP_EXPIRED: (
        "短信验证码已过期，请重新获取",
        "The text-message code has expired. Please request a new one.",
    ),
    ErrorCode.OTP_ATTEMPTS_EXCEEDED: (
        "验证码错误次数过多，请重新获取",
        "Too many wrong codes. Please request a new one.",
    ),
    ErrorCode.OTP_RESEND_TOO_SOON: (
        "验证码发送过于频繁，请稍后再试",
        "A code was sent a moment ago. Please wait before asking again.",
    ),
    ErrorCode.FALLBACK_NOT_ALLOWED: (
        "当前还不能使用其他验证方式，请先完成人脸验证",
        "Another way to verify is not available yet. Please complete the face check first.",
    ),
    ErrorCode.FALLBACK_WRONG_STEP: (
        "请按顺序完成验证步骤",
        "Please complete the verification steps in order.",
    ),
    ErrorCode.FALLBACK_CLOSED: (
        "该验证流程已结束",
        "This verification has already finished.",
    ),
    ReasonCode.FALLBACK_FACE_FAILED: (
        "人脸验证未通过，已转为其他验证方式",
        "The face check did not pass; another way to verify is offered.",
    ),
    ReasonCode.FALLBACK_FACE_REFUSED: (
        "您选择不使用人脸验证，已转为其他验证方式",
        "You chose not to use face verification; another way to verify is offered.",
    ),
    ReasonCode.FALLBACK_SMS_VERIFIED: ("短信验证码验证通过", "The text-message code was verified."),
    ReasonCode.FALLBACK_SMS_FAILED: (
        "短信验证码不正确，请重新输入",
        "The text-message code is wrong. Please enter it again.",
    ),
    ReasonCode.FALLBACK_BANK_CARD_MATCHED: (
        "银行卡信息核验一致",
        "The bank card details match.",
    ),
    ReasonCode.FALLBACK_BANK_CARD_MISMATCH: (
        "银行卡信息核验不一致，请使用本人名下的银行卡",
        "The bank card details do not match. Please use a card in your own name.",
    ),
    ReasonCode.FALLBACK_BANK_CARD_UNKNOWN: (
        "暂时无法核验该银行卡，请更换银行卡或稍后重试",
        "This bank card cannot be checked now. Please use another card or try later.",
    ),
    ReasonCode.FALLBACK_AUTHORITY_MATCHED: (
        "身份信息核验一致",
        "The identity details match the authority's records.",
    ),
    ReasonCode.FALLBACK_AUTHORITY_MISMATCH: (
        "身份信息核验不一致，请检查姓名和身份证号",
        "The identity details do not match. Please check the name and ID number.",
    ),
    ReasonCode.FALLBACK_AUTHORITY_NOT_FOUND: (
        "未查询到该身份信息",
        "No record of these identity details was found.",
    ),
    ReasonCode.FALLBACK_EXHAUSTED: (
        "验证未能完成，已转人工审核",
        "Verification could not be completed; it has been sent to manual review.",
    ),
    ReasonCode.PAYOUT_CARD_OWNER_VERIFIED: (
        "收款银行卡为本人所有",
        "The payout card belongs to the verified person.",
    ),
    ReasonCode.PAYOUT_CARD_NOT_OWNER: (
        "收款银行卡不属于本人，请使用本人名下的银行卡",
        "The payout card is not in the verified person's name. Please use your own card.",
    ),
    ReasonCode.PAYOUT_OWNER_UNVERIFIED: (
        "暂时无法确认收款银行卡归属，请更换银行卡或稍后重试",
        "The payout card's owner cannot be confirmed. Please use another card or try later.",
    ),
    # anti-fraud (issue 6): deliberately neutral towards the applicant
    ReasonCode.FRAUD_BLACKLIST_HIT: _FRAUD,
    ReasonCode.FRAUD_DUPLICATE_FACE: _FRAUD,
    ReasonCode.FRAUD_ID_NUMBER_OTHER_FACE: _FRAUD,
    ReasonCode.FRAUD_DEVICE_MANY_FACES: _FRAUD,
    ReasonCode.FRAUD_BATCH_BACKGROUND: _FRAUD,
    ReasonCode.FRAUD_VELOCITY: (
        "操作过于频繁，请稍后再试或选择其他验证方式",
        "Too many attempts. Please try again later or choose another way to verify.",
    ),
    **CAPTURE_MESSAGES,  # ID-card reading (issue 16), capture in the wild (issue 17)
}


def message(code: Code | str, lang: str = DEFAULT_LANG) -> str:
    """The user-facing message for ``code`` in ``lang`` (``"zh-CN"`` or ``"en"``; common variants
    such as ``"zh"``, ``"zh_CN"``, ``"en-US"`` are accepted).

    Raises :class:`~shiren.errors.InputError` (``input.invalid``) for an unsupported language and
    :class:`KeyError` for a string that is not a known code (a programming error).
    """
    zh, en = _MESSAGES[str(code)]
    return zh if normalise_lang(lang) == "zh-CN" else en


def normalise_lang(lang: str) -> str:
    """Map a language tag onto one of :data:`SUPPORTED_LANGS` or raise ``InputError``."""
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    raise InputError(
        "unsupported language",
        code=ErrorCode.INPUT_INVALID,
        detail={"lang": lang[:32], "supported": list(SUPPORTED_LANGS)},
    )


def negotiate_lang(accept_language: str | None) -> str:
    """The supported language with the highest q-value in an HTTP ``Accept-Language`` header
    (RFC 9110 §12.5.4); :data:`DEFAULT_LANG` when none is supported or the header is absent."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        try:
            lang = normalise_lang(tag) if tag.strip() not in ("", "*") else None
        except InputError:
            lang = None
        if lang is not None:
            ranked.append((-_q_value(params), position, lang))
    return min(ranked)[2] if ranked else DEFAULT_LANG


def _q_value(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def all_codes() -> tuple[Code, ...]:
    """Every code that must have a message: all error codes, then all reason codes."""
    return (*ErrorCode, *ReasonCode)


__all__ = [
    "DEFAULT_LANG",
    "SUPPORTED_LANGS",
    "all_codes",
    "message",
    "negotiate_lang",
    "normalise_lang",
]

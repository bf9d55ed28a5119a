"""The one error tree of shiren, and its stable codes.

Two families of codes are kept apart:

* :class:`ErrorCode` — *no verdict could be produced*.  Raised as a :class:`ShirenError`::

      ShirenError
      ├── InputError            the caller sent something unusable (HTTP 4xx, CLI exit 2)
      │   ├── ImageError        bytes that are not a usable image
      │   ├── FaceError         an image with no usable face
      │   └── FramesError       a frame sequence that cannot be judged
      ├── StateError            the request conflicts with stored state (expired, replayed, …)
      └── ServiceError          shiren itself cannot work right now (HTTP 5xx/503, CLI exit 3)
          ├── ModelError        a model file is missing, corrupt or unknown
          └── ConfigError       settings are invalid

* :class:`shiren.reasons.ReasonCode` — *a verdict was produced* and these codes explain it
  (``quality.too_dark``, ``match.below_threshold``).  Reasons are data, never exceptions.

Codes are append-only: once published, a code keeps its meaning forever.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable dotted error codes.  Append only; never rename or reuse."""

    INPUT_INVALID = "input.invalid"
    INPUT_FILE_NOT_FOUND = "input.file_not_found"
    IMAGE_EMPTY = "input.image_empty"
    IMAGE_TOO_LARGE = "input.image_too_large"
    IMAGE_TOO_MANY_PIXELS = "input.image_too_many_pixels"
    IMAGE_TOO_SMALL = "input.image_too_small"
    IMAGE_UNSUPPORTED_FORMAT = "input.image_unsupported_format"
    IMAGE_CORRUPT = "input.image_corrupt"
    IMAGE_TRUNCATED = "input.image_truncated"
    FACE_NOT_FOUND = "face.not_found"
    FACE_MULTIPLE = "face.multiple"
    FACE_UNUSABLE = "face.unusable"
    FRAMES_EMPTY = "input.frames_empty"
    FRAMES_TOO_FEW = "input.frames_too_few"
    FRAMES_INCONSISTENT = "input.frames_inconsistent"
    FRAMES_BAD_TIMESTAMPS = "input.frames_bad_timestamps"
    VIDEO_UNREADABLE = "input.video_unreadable"
    RECORDING_TOO_LONG = "input.recording_too_long"
    CHALLENGE_INVALID = "input.challenge_invalid"
    MODEL_UNAVAILABLE = "model.unavailable"
    MODEL_CHECKSUM_MISMATCH = "model.checksum_mismatch"
    MODEL_UNKNOWN = "model.unknown"
    MODEL_INVALID = "model.invalid"
    CONFIG_INVALID = "config.invalid"
    INTERNAL = "internal.error"
    INPUT_FILE_UNREADABLE = "input.file_unreadable"
    ID_NUMBER_INVALID = "input.id_number_invalid"
    CRYPTO_DECRYPT_FAILED = "crypto.decrypt_failed"
    CRYPTO_KEY_UNKNOWN = "crypto.key_unknown"
    AUDIT_PAYLOAD_FORBIDDEN = "audit.payload_forbidden"
    SESSION_ALREADY_USED = "session.already_used"
    RECORD_NOT_FOUND = "record.not_found"
    RECORD_CONFLICT = "record.conflict"
    RECORD_DUPLICATE = "record.duplicate"
    STORAGE_UNAVAILABLE = "storage.unavailable"
    AUTH_REQUIRED = "auth.required"
    SESSION_EXPIRED = "session.expired"
    REQUEST_TOO_LARGE = "input.request_too_large"
    SUBJECT_NOT_READY = "subject.not_ready"
    REVIEW_ALREADY_CLOSED = "review.already_closed"
    WEBHOOK_URL_INVALID = "input.webhook_url_invalid"
    CONSOLE_SIGN_IN_FAILED = "console.sign_in_failed"
    CONSOLE_LOCKED = "console.locked"
    CONSOLE_SESSION_EXPIRED = "console.session_expired"
    CONSOLE_FORBIDDEN = "console.forbidden"
    CONSOLE_CSRF_FAILED = "console.csrf_failed"
    CONSOLE_DEMO_UNAVAILABLE = "console.demo_unavailable"
    WEBHOOK_URL_FORBIDDEN = "input.webhook_url_forbidden"
    CONSENT_WITHDRAWN = "subject.consent_withdrawn"
    CAPTURE_TOKEN_INVALID = "capture.token_invalid"
    CAPTURE_TOKEN_EXPIRED = "capture.token_expired"
    CAPTURE_RATE_LIMITED = "capture.rate_limited"
    CAPTURE_CONSENT_REQUIRED = "capture.consent_required"
    CAPTURE_RETRY_NOT_ALLOWED = "capture.retry_not_allowed"
    CAPTURE_RECORDING_NOT_ALLOWED = "capture.recording_not_allowed"
    # Connectors and fallbacks (issue 6): outside providers and the non-face path.
    CONNECTOR_UNAVAILABLE = "connector.unavailable"
    CONNECTOR_TIMEOUT = "connector.timeout"
    CONNECTOR_CIRCUIT_OPEN = "connector.circuit_open"
    CONNECTOR_BAD_RESPONSE = "connector.bad_response"
    CONNECTOR_AUTH_FAILED = "connector.auth_failed"
    CONNECTOR_REJECTED = "input.connector_rejected"
    CARD_NUMBER_INVALID = "input.card_number_invalid"
    PHONE_INVALID = "input.phone_invalid"
    OTP_NOT_SENT = "otp.not_sent"
    OTP_EXPIRED = "otp.expired"
    OTP_ATTEMPTS_EXCEEDED = "otp.attempts_exceeded"
    OTP_RESEND_TOO_SOON = "otp.resend_too_soon"
    FALLBACK_NOT_ALLOWED = "fallback.not_allowed"
    FALLBACK_WRONG_STEP = "fallback.wrong_step"
    FALLBACK_CLOSED = "fallback.closed"
    # Faults (issue 7): retryable 503s with their own codes.
    STORAGE_FULL = "storage.full"
    SHARED_STATE_UNAVAILABLE = "storage.shared_state_unavailable"
    # The HTTP contract (issue 15): a method the resource does not offer (405, with ``Allow``).
    METHOD_NOT_ALLOWED = "method.not_allowed"
    # ID-card reading (issue 16): a photo that is not one side of one resident ID card.
    IDCARD_MULTIPLE = "input.idcard_multiple"
    IDCARD_UNSUPPORTED = "input.idcard_unsupported"
    IDCARD_UNREADABLE = "input.idcard_unreadable"
    IDCARD_REJECTED = "input.idcard_rejected"
    # Consent (issue 17): a purpose the lender's versioned policy does not list.
    CONSENT_PURPOSE_UNKNOWN = "input.consent_purpose_unknown"
    # The read-the-digits challenge (issue 18): one uploaded recording with its audio track.
    AUDIO_MISSING = "input.audio_missing"
    AUDIO_SILENT = "input.audio_silent"
    AUDIO_LENGTH_MISMATCH = "input.audio_length_mismatch"
    AV_TIMESTAMPS_MISMATCH = "input.av_timestamps_mismatch"
    RECORDING_TOO_LARGE = "input.recording_too_large"


class ShirenError(Exception):
    """Base of every error shiren raises on purpose.

    ``code`` is stable and machine-readable; ``message`` is a safe, human-readable English
    sentence (never containing images, embeddings, names or ID numbers); ``detail`` holds
    extra machine-readable fields that are equally safe to show a client.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"code", "message", "detail"}``."""
        return {"code": str(self.code), "message": self.message, "detail": self.detail}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={str(self.code)!r}, message={self.message!r})"


class InputError(ShirenError):
    """The caller's input cannot be used.  Not retryable with the same input."""

    code = ErrorCode.INPUT_INVALID


class ImageError(InputError):
    """Bytes that cannot be decoded into a usable image."""

    code = ErrorCode.IMAGE_CORRUPT


class FaceError(InputError):
    """A decoded image without a face that can be judged."""

    code = ErrorCode.FACE_NOT_FOUND


class FramesError(InputError):
    """A frame sequence (liveness) that cannot be judged."""

    code = ErrorCode.FRAMES_EMPTY


class StateError(ShirenError):
    """The request conflicts with stored state (expired, replayed, already used)."""

    code = ErrorCode.INPUT_INVALID


class ServiceError(ShirenError):
    """shiren cannot work right now; the caller may retry later."""

    code = ErrorCode.INTERNAL
    retryable = True


class ModelError(ServiceError):
    """A model file is missing, corrupt, unknown or fails its checksum."""

    code = ErrorCode.MODEL_UNAVAILABLE
    retryable = False


class ConfigError(ServiceError):
    """Settings are invalid or refer to things that do not exist."""

    code = ErrorCode.CONFIG_INVALID
    retryable = False


__all__ = [
    "ConfigError",
    "ErrorCode",
    "FaceError",
    "FramesError",
    "ImageError",
    "InputError",
    "ModelError",
    "ServiceError",
    "ShirenError",
    "StateError",
]

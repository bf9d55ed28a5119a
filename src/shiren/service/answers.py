"""What a capture's upload is, decoded, and which checker judges it.

A session's challenge says what answers it (:class:`~shiren.liveness.challenge.Variant`):

* ``live`` / ``motion`` — the capture page's frames (JPEGs with their ``t_ms``);
* ``recorded`` — one video filmed with the phone's camera app (issue 17), its frames sampled by
  the server (:func:`shiren.liveness.recorded.decode_recording`);
* ``read_digits`` — one recording with sound, the digits read aloud (issue 18), decoded by
  :func:`shiren.liveness.audio.decode_av` and judged by
  :class:`~shiren.liveness.readdigits_check.ReadDigitsChecker`.

Anything else — frames sent to a session that takes a recording, or the reverse — is
``input.challenge_invalid``.  Decoding happens before the session is consumed, so an unreadable
upload burns nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shiren.errors import ErrorCode, InputError
from shiren.liveness.audio import AVCapture, decode_av
from shiren.liveness.challenge import Challenge, Variant
from shiren.liveness.check import LivenessChecker
from shiren.liveness.config import FrameLimits
from shiren.liveness.frames import FrameSequence, from_arrays, from_encoded
from shiren.liveness.memo import CaptureMemo
from shiren.liveness.readdigits_check import ReadDigitsChecker, ReadDigitsConfig
from shiren.liveness.readdigits_session import read_digits_of
from shiren.liveness.recorded import decode_recording
from shiren.liveness.result import LivenessResult
from shiren.reasons import ReasonCode

RECORDED = (Variant.RECORDED, Variant.READ_DIGITS)


@dataclass(frozen=True, slots=True)
class Answer:
    """A decoded upload: the frames every later step reads (matching, fraud, evidence) and, for
    a read-the-digits session, the recording with its sound."""

    sequence: FrameSequence
    av: AVCapture | None = None


def decode_answer(
    challenge: Challenge,
    *,
    frames: Sequence[bytes],
    times_ms: Sequence[float],
    recording: bytes | None,
    limits: FrameLimits,
    nonce: str,
) -> Answer:
    """The upload decoded for ``challenge`` (see the module docstring)."""
    if (challenge.variant in RECORDED) != (recording is not None):
        raise InputError(
            "this session takes a recording"
            if recording is None
            else "this session takes live frames, not a recording",
            code=ErrorCode.CHALLENGE_INVALID,
            detail={"variant": challenge.variant.value},
        )
    if recording is None:
        return Answer(from_encoded(frames, times_ms, limits, nonce=nonce))
    if challenge.variant is Variant.RECORDED:
        return Answer(decode_recording(recording, limits, nonce=nonce))
    av = decode_av(recording, ReadDigitsConfig().limits)
    sequence = from_arrays(list(av.frames), [float(t) for t in av.times_ms], limits, nonce=nonce)
    return Answer(sequence, av)


def judge(
    checker: LivenessChecker,
    challenge: Challenge,
    answer: Answer,
    *,
    now: float,
    memo: CaptureMemo,
    lang: str = "zh-CN",
) -> LivenessResult:
    """The liveness result of ``answer``: the ordinary check, or the read-the-digits one —
    whose session challenge's signature the service's key verifies first — judged by the
    level's ``without_flash`` rule like every capture without the colour flash."""
    if answer.av is None:
        return checker.check(challenge, answer.sequence, now=now, memo=memo)
    forged = checker.key is not None and not challenge.signature_valid(checker.key)
    # the digit schedule is signed inside the session's challenge: a forged one is refused as
    # unsigned (liveness.challenge_mismatch); an expired one as expired
    digits = ReadDigitsChecker(
        checker, key=checker.key if forged else None, recogniser=checker.recogniser
    )
    rd = read_digits_of(challenge, lang)
    result = digits.check_capture(rd, answer.av, now=now, memo=memo)
    policy = checker.config.level(challenge.level)
    if result.passed and policy.without_flash != "motion":
        return LivenessResult(
            passed=False,
            score=min(result.score, 0.4999),
            level=result.level,
            nonce=result.nonce,
            signals=result.signals,
            reasons=(ReasonCode.LIVENESS_FLASH_REQUIRED,),
            frames=result.frames,
            faces_found=result.faces_found,
            duration_ms=result.duration_ms,
            timings_ms=result.timings_ms,
            models=result.models,
            variant=result.variant,
        )
    return result


__all__ = ["Answer", "decode_answer", "judge"]

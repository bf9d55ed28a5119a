"""Reason codes: why a verdict came out the way it did.

A :class:`ReasonCode` is *data* attached to a result (a quality report, a match, a liveness check),
never an exception; compare :class:`shiren.errors.ErrorCode`, which says that no verdict could be
produced at all.  Codes are stable, dotted and lower-case (``quality.too_dark``) and append-only:
once published a code keeps its meaning forever, and every code needs a zh-CN and an English
message in :mod:`shiren.messages` (a test checks it).
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Stable dotted reason codes.  Append only; never rename or reuse."""

    # Capture quality (shiren.core.quality), roughly in the order a user should fix them.
    QUALITY_NO_FACE = "quality.no_face"
    QUALITY_MULTIPLE_FACES = "quality.multiple_faces"
    QUALITY_FACE_CUT_OFF = "quality.face_cut_off"
    QUALITY_FACE_TOO_SMALL = "quality.face_too_small"
    QUALITY_FACE_TOO_LARGE = "quality.face_too_large"
    QUALITY_TOO_DARK = "quality.too_dark"
    QUALITY_OVEREXPOSED = "quality.overexposed"
    QUALITY_BACKLIGHT = "quality.backlight"
    QUALITY_LOW_CONTRAST = "quality.low_contrast"
    QUALITY_BLURRED = "quality.blurred"
    QUALITY_POSE_YAW = "quality.pose_yaw"
    QUALITY_POSE_PITCH = "quality.pose_pitch"
    QUALITY_POSE_ROLL = "quality.pose_roll"
    QUALITY_EYES_CLOSED = "quality.eyes_closed"
    QUALITY_OCCLUDED_MASK = "quality.occluded_mask"
    QUALITY_OCCLUDED_SUNGLASSES = "quality.occluded_sunglasses"
    QUALITY_OCCLUDED_HAT = "quality.occluded_hat"
    QUALITY_OCCLUDED_HAIR_EYES = "quality.occluded_hair_eyes"
    QUALITY_LANDMARKS_UNRELIABLE = "quality.landmarks_unreliable"

    # 1:1 matching.
    MATCH_BELOW_THRESHOLD = "match.below_threshold"
    MATCH_ABOVE_THRESHOLD = "match.above_threshold"
    MATCH_SECOND_FACTOR_REQUIRED = "match.second_factor_required"
    MATCH_TEMPLATE_OUTDATED = "match.template_outdated"

    # Liveness.  Public messages for these stay deliberately coarse (see shiren.messages).
    LIVENESS_CHALLENGE_FAILED = "liveness.challenge_failed"
    LIVENESS_SPOOF_SUSPECTED = "liveness.spoof_suspected"
    # Per-signal liveness reasons (for the lender's back office; the borrower sees coarse text).
    LIVENESS_ACTION_MISSING = "liveness.action_missing"
    LIVENESS_UNEXPECTED_ACTION = "liveness.unexpected_action"
    LIVENESS_FACE_LOST = "liveness.face_lost"
    LIVENESS_MULTIPLE_FACES = "liveness.multiple_faces"
    LIVENESS_FACE_CHANGED = "liveness.face_changed"
    LIVENESS_FLAT_MOTION = "liveness.flat_motion"
    LIVENESS_INSUFFICIENT_MOTION = "liveness.insufficient_motion"
    LIVENESS_COLOUR_MISMATCH = "liveness.colour_mismatch"
    LIVENESS_COLOUR_INCONCLUSIVE = "liveness.colour_inconclusive"
    LIVENESS_CHALLENGE_EXPIRED = "liveness.challenge_expired"
    LIVENESS_CHALLENGE_MISMATCH = "liveness.challenge_mismatch"
    LIVENESS_REPLAY_SUSPECTED = "liveness.replay_suspected"
    LIVENESS_PASSIVE_UNAVAILABLE = "liveness.passive_unavailable"
    # Injection attacks (shiren.liveness.injection; issue 17): the frames were fed to the page
    # (virtual camera, script, re-encoded stream) rather than filmed; the sub-kind goes to the
    # evidence only.  A weak signal alone (a virtual camera's label) suggests review, no more.
    LIVENESS_INJECTION_SUSPECTED = "liveness.injection_suspected"
    LIVENESS_INJECTION_WEAK_SIGNAL = "liveness.injection_weak_signal"

    # Retry limits (shiren.domain.decisions).
    LIMIT_LOCKED = "limit.locked"
    LIMIT_DAILY_CAP = "limit.daily_cap"

    # Consent and data lifecycle (shiren.service.consent, the retention sweep).
    CONSENT_WITHDRAWN = "consent.withdrawn"
    REVIEW_CANDIDATE_EXPIRED = "review.candidate_expired"
    # The non-face path (shiren.service.fallback) and payout ownership (shiren.service.payout).
    FALLBACK_FACE_FAILED = "fallback.face_failed"
    FALLBACK_FACE_REFUSED = "fallback.face_refused"
    FALLBACK_SMS_VERIFIED = "fallback.sms_verified"
    FALLBACK_SMS_FAILED = "fallback.sms_failed"
    FALLBACK_BANK_CARD_MATCHED = "fallback.bank_card_matched"
    FALLBACK_BANK_CARD_MISMATCH = "fallback.bank_card_mismatch"
    FALLBACK_BANK_CARD_UNKNOWN = "fallback.bank_card_unknown"
    FALLBACK_AUTHORITY_MATCHED = "fallback.authority_matched"
    FALLBACK_AUTHORITY_MISMATCH = "fallback.authority_mismatch"
    FALLBACK_AUTHORITY_NOT_FOUND = "fallback.authority_not_found"
    FALLBACK_EXHAUSTED = "fallback.exhausted"
    PAYOUT_CARD_OWNER_VERIFIED = "payout.card_owner_verified"
    PAYOUT_CARD_NOT_OWNER = "payout.card_not_owner"
    PAYOUT_OWNER_UNVERIFIED = "payout.owner_unverified"
    # Anti-fraud findings (shiren.service.fraud; issue 6).  The lender sees the code and its
    # evidence; the applicant sees only a neutral "under review" message.
    FRAUD_BLACKLIST_HIT = "fraud.blacklist_hit"
    FRAUD_DUPLICATE_FACE = "fraud.duplicate_face"
    FRAUD_ID_NUMBER_OTHER_FACE = "fraud.id_number_other_face"
    FRAUD_DEVICE_MANY_FACES = "fraud.device_many_faces"
    FRAUD_BATCH_BACKGROUND = "fraud.batch_background"
    FRAUD_VELOCITY = "fraud.velocity"
    # ID-card reading (shiren.idcard; issue 16).  Checks: each names the failure it looks for.
    LIVENESS_FLASH_UNSEEN = "liveness.flash_unseen"
    """Every required signal passed but the colour flash, whose reflection was too weak to
    measure (direct sun, a dim screen).  Never a pass: the level's ``without_flash`` rule says
    what follows (issue 17's light ladder) — ``motion``: try again with a motion-only challenge;
    ``review``: a person decides; ``fallback``: the non-face routes."""
    LIVENESS_FLASH_REQUIRED = "liveness.flash_required"
    """A capture without the colour flash (the ``motion`` or ``recorded`` challenge variants)
    whose every other signal passed, at a level whose ``without_flash`` rule is ``review`` or
    ``fallback``: the level does not pass a capture the flash did not carry (issue 17)."""
    IDCARD_NUMBER_INVALID = "idcard.number_invalid"
    IDCARD_BIRTH_DATE_MISMATCH = "idcard.birth_date_mismatch"
    IDCARD_SEX_MISMATCH = "idcard.sex_mismatch"
    IDCARD_NUMBER_MISMATCH = "idcard.number_mismatch"
    IDCARD_NAME_MISMATCH = "idcard.name_mismatch"
    IDCARD_EXPIRED = "idcard.expired"
    IDCARD_VALIDITY_INVALID = "idcard.validity_invalid"
    IDCARD_FIELDS_MISSING = "idcard.fields_missing"
    IDCARD_RECAPTURE_SUSPECTED = "idcard.recapture_suspected"
    # Capture guidance for the card photo, roughly in the order a user should fix them.
    IDCARD_NOT_FOUND = "idcard.not_found"
    IDCARD_WRONG_SIDE = "idcard.wrong_side"
    IDCARD_CUT_OFF = "idcard.cut_off"
    IDCARD_TOO_FAR = "idcard.too_far"
    IDCARD_BLURRY = "idcard.blurry"
    IDCARD_GLARE = "idcard.glare"
    # The read-the-digits challenge (shiren.liveness.readdigits; issue 18).  Public messages
    # stay coarse: the borrower is told to read the digits aloud, not which signal failed.
    LIVENESS_SPEECH_MISMATCH = "liveness.speech_mismatch"
    """The speech does not answer the schedule: not one spoken digit per window, each starting
    after its digit appeared (or speech before the first digit was shown)."""
    LIVENESS_AV_DESYNC = "liveness.av_desync"
    """The mouth's opening does not follow the voice at a plausible lag: a dubbed, shifted or
    synthesised track, or a still or looped video under live audio."""
    LIVENESS_DIGITS_MISMATCH = "liveness.digits_mismatch"
    """A configured speech recogniser heard other digits than the ones shown."""
    LIVENESS_TOO_NOISY = "liveness.too_noisy"
    """The speech or synchrony signal failed in a recording whose speech stands too little over
    the room's noise (``ReadDigitsConfig.min_snr_db``), and for synchrony in the way noise
    explains (a moving mouth, the voice at the right lag, weakly): the soft parts of the voice
    that the synchrony follows are buried, so the failure says nothing about an attack — the
    borrower is asked to read again somewhere quieter (a retry, not a review)."""
    LIVENESS_RECOGNISER_UNAVAILABLE = "liveness.recogniser_unavailable"
    """The configured speech recogniser failed (raised, or answered no text): the ``digits``
    signal fails closed — not an attack cue, not the borrower's failure."""


__all__ = ["ReasonCode"]

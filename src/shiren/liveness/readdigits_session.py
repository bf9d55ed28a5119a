"""A read-the-digits challenge as a capture session's challenge (issue 18).

A session stores one signed :class:`~shiren.liveness.challenge.Challenge`.  A read-the-digits
session's is of variant ``read_digits``: no actions, no flash, and ``digits`` — the digit
schedule (digits, when each is shown, each answer's window) without the nonce, level and times,
which the outer challenge carries and signs.  :func:`read_digits_of` rebuilds the
:class:`~shiren.liveness.readdigits.ReadDigitsChallenge` the checker judges from the two, so the
digits can never be answered under another session's nonce or after its expiry.

The language only names the digits on screen and sets the onset tolerance (one syllable per
digit in Chinese, one or two in English); it is the page's, sent with the upload and checked
against the two supported ones.
"""

from __future__ import annotations

import secrets
from typing import Any

from shiren.liveness.challenge import Challenge, Variant
from shiren.liveness.config import Level, LivenessConfig
from shiren.liveness.readdigits import (
    LANGS,
    TYPE,
    VERSION,
    ReadDigitsChallenge,
    draw_read_digits,
    parse_read_digits,
)

_OUTER = ("type", "version", "nonce", "level", "issued_at", "expires_at", "lang")


def draw_read_digits_challenge(
    config: LivenessConfig,
    level: Level | str,
    *,
    seed: int | None = None,
    now: float | None = None,
    key: bytes | None = None,
) -> Challenge:
    """A session challenge of variant ``read_digits`` (see the module docstring)."""
    rd = draw_read_digits(level, seed=seed, now=now)
    schedule = {k: v for k, v in rd.payload().items() if k not in _OUTER}
    nonce = rd.nonce if seed is not None else secrets.token_hex(16)
    challenge = Challenge(
        nonce=nonce,
        level=Level(level),
        issued_at=rd.issued_at,
        expires_at=round(rd.issued_at + config.challenge.ttl_s, 3),
        lead_in_ms=rd.lead_in_ms,
        actions=(),
        colours=(),
        variant=Variant.READ_DIGITS,
        digits=schedule,
    )
    return challenge.signed(key) if key is not None else challenge


def read_digits_of(challenge: Challenge, lang: str = "zh-CN") -> ReadDigitsChallenge:
    """The checker's challenge: the session's digit schedule under its nonce, level and
    lifetime (``input.challenge_invalid`` when the session's challenge has no digits)."""
    raw: dict[str, Any] = {
        **(challenge.digits or {}),
        "type": TYPE,
        "version": VERSION,
        "nonce": challenge.nonce,
        "level": challenge.level.value,
        "issued_at": challenge.issued_at,
        "expires_at": challenge.expires_at,
        "lang": lang if lang in LANGS else "zh-CN",
    }
    return parse_read_digits(raw)


__all__ = ["draw_read_digits_challenge", "read_digits_of"]

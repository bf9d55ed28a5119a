"""The read-the-digits challenge (issue 18, 念出屏幕上显示的数字): a signed schedule of digits.

The server draws 4–6 random digits and a schedule: after a still lead-in, the page shows one digit
at a time, digit ``i`` from ``show_ms[i]`` until the next one appears, each display lasting a
random 0.9–1.3 s (so a recording made for another session answers at the wrong moments).  The
page records sound and picture together from ``t = 0`` (the same nonce) and uploads one file.

The answer for digit ``i`` must *start* in its window ``[show_ms[i] + min_latency_ms,
show_ms[i+1] + min_latency_ms)``: nobody reads a digit faster than ``min_latency_ms`` (200 ms)
after it appears, and the next digit's own window begins as this one's ends, so the windows
tile the schedule without overlap.  Speech that starts before the first window is an answer that
did not wait for the screen.

:class:`ReadDigitsChallenge` is its own type (``"type": "read_digits"`` in its JSON) beside
:class:`shiren.liveness.challenge.Challenge`, which stays unchanged so every signature already
issued still verifies; it is signed the same way (HMAC-SHA256 over its canonical JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import random
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, Final

from shiren.errors import ErrorCode, InputError
from shiren.liveness.config import Level

TYPE: Final = "read_digits"
VERSION: Final = 1
LANGS: Final = ("zh-CN", "en")

PROMPTS: Final[dict[str, tuple[str, ...]]] = {
    "zh-CN": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}
"""What is read aloud for each digit.  The page shows the numeral large; these go beside it and
into the screen reader's text.  ``二`` (not ``两``) is what people read in a digit string."""

INSTRUCTIONS: Final[dict[str, str]] = {
    "zh-CN": "请看屏幕，数字出现后立即大声读出，一次一个",
    "en": "Watch the screen and read each digit aloud as soon as it appears, one at a time.",
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """How the server draws a schedule (milliseconds)."""

    digits: tuple[int, int] = (4, 6)
    lead_in_ms: int = 1000
    """Still and silent before the first digit: the face's and the room's baselines."""
    display_ms: tuple[int, int] = (900, 1300)
    min_latency_ms: int = 200
    tail_ms: int = 400
    ttl_s: float = 180.0


@dataclass(frozen=True, slots=True)
class DigitStep:
    digit: int
    show_ms: int
    """When the page shows the digit (``t = 0``: recording starts)."""
    window_start_ms: int
    window_end_ms: int


@dataclass(frozen=True, slots=True)
class ReadDigitsChallenge:
    """One read-the-digits challenge; immutable, serialisable, optionally signed."""

    nonce: str
    level: Level
    lang: str
    issued_at: float
    expires_at: float
    lead_in_ms: int
    steps: tuple[DigitStep, ...]
    duration_ms: int
    version: int = VERSION
    signature: str | None = None

    @property
    def digits(self) -> str:
        return "".join(str(s.digit) for s in self.steps)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(PROMPTS[self.lang][s.digit] for s in self.steps)

    def payload(self) -> dict[str, Any]:
        """Everything but the signature, as JSON-ready data (what is signed)."""
        return {
            "type": TYPE,
            "version": self.version,
            "nonce": self.nonce,
            "level": self.level.value,
            "lang": self.lang,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "lead_in_ms": self.lead_in_ms,
            "duration_ms": self.duration_ms,
            "steps": [
                {
                    "digit": s.digit,
                    "show_ms": s.show_ms,
                    "window_start_ms": s.window_start_ms,
                    "window_end_ms": s.window_end_ms,
                }
                for s in self.steps
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """The signed payload plus what the page shows (prompts, instruction) and the signature;
        the display texts are derived, never signed or trusted back."""
        return {
            **self.payload(),
            "prompts": list(self.prompts),
            "instruction": INSTRUCTIONS[self.lang],
            "signature": self.signature,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def _mac(self, key: bytes) -> str:
        canonical = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))
        return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def signed(self, key: bytes) -> ReadDigitsChallenge:
        return replace(self, signature=self._mac(key))

    def signature_valid(self, key: bytes) -> bool:
        return self.signature is not None and hmac.compare_digest(self.signature, self._mac(key))

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at


def draw_read_digits(
    level: Level | str = Level.NORMAL,
    *,
    lang: str = "zh-CN",
    schedule: Schedule | None = None,
    seed: int | None = None,
    now: float | None = None,
    key: bytes | None = None,
) -> ReadDigitsChallenge:
    """A fresh random challenge.  ``seed`` is for tests and documentation only: a server never
    passes it, so digits, timings and nonce come from the operating system's CSPRNG."""
    if lang not in LANGS:
        raise _bad(f"unsupported language {lang[:16]!r}", lang=lang[:16])
    sch = schedule or Schedule()
    rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
    nonce = f"{rng.getrandbits(128):032x}" if seed is not None else secrets.token_hex(16)
    digits: list[int] = []
    for _ in range(rng.randint(*sch.digits)):
        digits.append(rng.choice([d for d in range(10) if not digits or d != digits[-1]]))
    shows, t = [], sch.lead_in_ms
    for _ in digits:
        shows.append(t)
        t += rng.randint(*sch.display_ms)
    issued = time.time() if now is None else now
    challenge = ReadDigitsChallenge(
        nonce=nonce,
        level=Level(level),
        lang=lang,
        issued_at=round(issued, 3),
        expires_at=round(issued + sch.ttl_s, 3),
        lead_in_ms=sch.lead_in_ms,
        steps=_steps(digits, shows, t, sch.min_latency_ms),
        duration_ms=t + sch.tail_ms,
    )
    return challenge.signed(key) if key is not None else challenge


def _steps(digits: list[int], shows: list[int], end: int, latency: int) -> tuple[DigitStep, ...]:
    nexts = [*shows[1:], end]
    return tuple(
        DigitStep(d, s, s + latency, n + latency)
        for d, s, n in zip(digits, shows, nexts, strict=True)
    )


# -- parsing -----------------------------------------------------------------------------------


def _bad(message: str, **detail: Any) -> InputError:
    return InputError(message, code=ErrorCode.CHALLENGE_INVALID, detail=detail)


def _ms(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise _bad(f"{name} must be a number of milliseconds", field=name)
    if not 0 <= raw <= 60_000:
        raise _bad(f"{name} is out of range (0 … 60000 ms)", field=name)
    return int(raw)


def _step(i: int, item: Any) -> DigitStep:
    if not isinstance(item, dict):
        raise _bad(f"steps[{i}] must be an object")
    digit = item.get("digit")
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit <= 9:
        raise _bad(f"steps[{i}].digit must be 0–9")
    show, start, end = (
        _ms(item.get(k), f"steps[{i}].{k}") for k in ("show_ms", "window_start_ms", "window_end_ms")
    )
    if not show <= start < end:
        raise _bad(f"steps[{i}]: the window must start after the digit shows and end after")
    return DigitStep(digit, show, start, end)


def parse_read_digits(raw: Any) -> ReadDigitsChallenge:
    """A challenge from its JSON data, strictly validated (``input.challenge_invalid``)."""
    if not isinstance(raw, dict) or raw.get("type") != TYPE:
        raise _bad("not a read_digits challenge")
    try:
        version = int(raw.get("version", VERSION))
        if version != VERSION:
            raise _bad(f"unsupported challenge version {version}", version=version)
        nonce = raw["nonce"]
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128 or not nonce.isalnum():
            raise _bad("nonce must be 16–128 letters or digits")
        lang = raw.get("lang")
        if lang not in LANGS:
            raise _bad("lang must be zh-CN or en")
        issued, expires = float(raw["issued_at"]), float(raw["expires_at"])
        if not (math.isfinite(issued) and math.isfinite(expires) and expires >= issued):
            raise _bad("issued_at / expires_at are not valid times")
        items = raw.get("steps")
        if not isinstance(items, list) or not 1 <= len(items) <= 12:
            raise _bad("steps must be a list of 1–12 digits")
        steps = tuple(_step(i, item) for i, item in enumerate(items))
        signature = raw.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise _bad("signature must be a hex string")
        level = Level(raw.get("level", "normal"))
        lead_in = _ms(raw.get("lead_in_ms", 0), "lead_in_ms")
        duration = _ms(raw.get("duration_ms"), "duration_ms")
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"malformed challenge: {exc!s}") from None
    for prev, cur in itertools.pairwise(steps):
        if cur.show_ms <= prev.show_ms or cur.window_start_ms < prev.window_end_ms:
            raise _bad("digits and their windows must be in order, without overlap")
    if steps[0].show_ms < lead_in or steps[-1].window_end_ms > duration + 1000:
        raise _bad("the digits must fall between the lead-in and the end")
    return ReadDigitsChallenge(
        nonce=nonce,
        level=level,
        lang=str(lang),
        issued_at=issued,
        expires_at=expires,
        lead_in_ms=lead_in,
        steps=steps,
        duration_ms=duration,
        version=version,
        signature=signature,
    )


def load_read_digits(text: str) -> ReadDigitsChallenge:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"the challenge is not valid JSON: {exc.msg}") from None
    return parse_read_digits(raw)


__all__ = [
    "INSTRUCTIONS",
    "LANGS",
    "PROMPTS",
    "TYPE",
    "DigitStep",
    "ReadDigitsChallenge",
    "Schedule",
    "draw_read_digits",
    "load_read_digits",
    "parse_read_digits",
]

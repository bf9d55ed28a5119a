"""The server's random challenge: actions in time windows, a colour sequence and a nonce.

A challenge is drawn by the server, shown by the capture page, and answered by the frames the
page films.  Its timeline starts when the page starts filming (``t = 0`` in the frame metadata):

* ``[0, lead_in_ms)`` — the face stays still and frontal; per-person baselines come from here;
* then the colour flash: each :class:`ColourStep` fills the screen during ``[start_ms, end_ms)``;
* then one :class:`ActionStep` after another, each with its own window.

A recording cannot answer a challenge it has not seen: the order of the actions and the colour
sequence are random per nonce, so a replay of an earlier session (or an injected video) performs
the wrong actions at the wrong times and reflects the wrong colours.  The challenge is signed with
a server key (HMAC-SHA256 over its canonical JSON), so a client can neither forge one nor edit the
windows; the nonce is single-use (the service keeps the used ones).
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
from enum import StrEnum
from typing import Any

from shiren.errors import ErrorCode, InputError
from shiren.liveness.config import Level, LivenessConfig

CHALLENGE_VERSION = 1


class Action(StrEnum):
    """What the person is asked to do (from their own point of view)."""

    BLINK = "blink"
    OPEN_MOUTH = "open_mouth"
    TURN_LEFT = "turn_left"
    """Turn the head to one's own left: in an unmirrored camera image the nose moves right."""
    TURN_RIGHT = "turn_right"
    NOD = "nod"
    """Raise or lower the chin clearly (either direction), then come back."""


TURNS = (Action.TURN_LEFT, Action.TURN_RIGHT)


class Variant(StrEnum):
    """How the challenge is answered (issue 17's light ladder and record-and-upload fallback).

    * ``live``: the page films it live: the colour flash, then the actions in their windows;
    * ``motion``: filmed live without the colour flash (an earlier attempt's flash could not be
      seen: direct sun, a dim screen) — one action more, a head turn always;
    * ``recorded``: the borrower films the actions, in order, with the phone's own camera app and
      uploads the file (live streaming is impossible in their browser); no flash, no windows —
      the server finds each action in the recording, in the asked order.

    Which variants a level accepts, and whether a capture without the flash can pass at all, is
    the level's ``without_flash`` rule (liveness.toml), never the client's choice: the variant is
    signed with the rest of the challenge."""

    LIVE = "live"
    MOTION = "motion"
    RECORDED = "recorded"
    READ_DIGITS = "read_digits"
    """Read the digits aloud (issue 18): no actions, no flash; ``digits`` carries the digit
    schedule (:mod:`shiren.liveness.readdigits_session`) and the answer is one recording with
    sound."""


PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "white": (255, 255, 255),
}


@dataclass(frozen=True, slots=True)
class ActionStep:
    action: Action
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class ColourStep:
    name: str
    rgb: tuple[int, int, int]
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge; immutable, serialisable, optionally signed."""

    nonce: str
    level: Level
    issued_at: float
    expires_at: float
    lead_in_ms: int
    actions: tuple[ActionStep, ...]
    colours: tuple[ColourStep, ...]
    version: int = CHALLENGE_VERSION
    signature: str | None = None
    variant: Variant = Variant.LIVE
    digits: dict[str, Any] | None = None
    """The digit schedule of a ``read_digits`` challenge (signed with the rest)."""

    @property
    def duration_ms(self) -> int:
        ends = [s.end_ms for s in self.actions] + [c.end_ms for c in self.colours]
        return max([self.lead_in_ms, *ends])

    @property
    def still_until_ms(self) -> int:
        """End of the still phase (lead-in and colour flash): the first action window's start."""
        return self.actions[0].start_ms if self.actions else self.duration_ms

    def payload(self) -> dict[str, Any]:
        """Everything but the signature, as JSON-ready data (what is signed).  ``variant`` is
        written only when it is not ``live``, so challenges signed before it existed verify."""
        extra: dict[str, Any] = (
            {} if self.variant is Variant.LIVE else {"variant": self.variant.value}
        )
        if self.digits is not None:
            extra["digits"] = self.digits
        return {
            **extra,
            "version": self.version,
            "nonce": self.nonce,
            "level": self.level.value,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "lead_in_ms": self.lead_in_ms,
            "duration_ms": self.duration_ms,
            "actions": [
                {"action": s.action.value, "start_ms": s.start_ms, "end_ms": s.end_ms}
                for s in self.actions
            ],
            "colours": [
                {"name": c.name, "rgb": list(c.rgb), "start_ms": c.start_ms, "end_ms": c.end_ms}
                for c in self.colours
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.payload(),
            "variant": self.variant.value,
            "digits": self.digits,
            "signature": self.signature,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def _mac(self, key: bytes) -> str:
        canonical = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))
        return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def signed(self, key: bytes) -> Challenge:
        return replace(self, signature=self._mac(key))

    def signature_valid(self, key: bytes) -> bool:
        return self.signature is not None and hmac.compare_digest(self.signature, self._mac(key))

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires_at

    def colour_at(self, t_ms: float) -> ColourStep | None:
        for step in self.colours:
            if step.start_ms <= t_ms < step.end_ms:
                return step
        return None


def _sequence(rng: random.Random, items: list[str], count: int) -> list[str]:
    """``count`` items, no item twice in a row."""
    out: list[str] = []
    for _ in range(count):
        choices = [i for i in items if not out or i != out[-1]]
        out.append(rng.choice(choices))
    return out


def draw_challenge(
    config: LivenessConfig,
    level: Level | str = Level.NORMAL,
    *,
    seed: int | None = None,
    now: float | None = None,
    key: bytes | None = None,
    variant: Variant | str = Variant.LIVE,
) -> Challenge:
    """A new random challenge for ``level``.

    ``seed`` makes the draw (nonce included) reproducible, for tests and documentation only: a
    production server never passes it, so the draw comes from the operating system's CSPRNG.
    ``variant`` ``motion`` / ``recorded`` draws the level's ``motion_actions`` with a head turn
    always and no colour flash (see :class:`Variant`).
    """
    lv = Level(level)
    kind = Variant(variant)
    policy = config.level(lv)
    timing = config.challenge
    rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
    nonce = f"{rng.getrandbits(128):032x}" if seed is not None else secrets.token_hex(16)

    if kind is Variant.READ_DIGITS:
        raise _bad("draw a read_digits challenge with shiren.liveness.readdigits_session")
    flash = kind is Variant.LIVE
    lo, hi = policy.actions if flash else policy.motion_actions
    count = rng.randint(lo, hi)
    actions = [Action(a) for a in _sequence(rng, [a.value for a in Action], count)]
    if (policy.turn_required or not flash) and not any(a in TURNS for a in actions):
        slot = rng.randrange(count)
        options = [
            t
            for t in TURNS
            if (slot == 0 or actions[slot - 1] != t)
            and (slot == count - 1 or actions[slot + 1] != t)
        ]
        actions[slot] = rng.choice(options)

    colours: list[ColourStep] = []
    t = timing.lead_in_ms
    for name in _sequence(rng, list(timing.palette), policy.colours if flash else 0):
        colours.append(ColourStep(name, PALETTE[name], t, t + timing.colour_step_ms))
        t += timing.colour_step_ms
    steps: list[ActionStep] = []
    for action in actions:
        t += timing.action_gap_ms
        steps.append(ActionStep(action, t, t + timing.action_window_ms))
        t += timing.action_window_ms

    issued = time.time() if now is None else now
    challenge = Challenge(
        nonce=nonce,
        level=lv,
        issued_at=round(issued, 3),
        expires_at=round(issued + timing.ttl_s, 3),
        lead_in_ms=timing.lead_in_ms,
        actions=tuple(steps),
        colours=tuple(colours),
        variant=kind,
    )
    return challenge.signed(key) if key is not None else challenge


def _bad(message: str, **detail: Any) -> InputError:
    return InputError(message, code=ErrorCode.CHALLENGE_INVALID, detail=detail)


def _int_ms(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise _bad(f"{name} must be a number of milliseconds", field=name)
    value = int(raw)
    if not 0 <= value <= 10 * 60 * 1000:
        raise _bad(f"{name} is out of range (0 … 600000 ms)", field=name)
    return value


def parse_challenge(raw: Any) -> Challenge:
    """A challenge from its JSON data, strictly validated (``input.challenge_invalid``)."""
    if not isinstance(raw, dict):
        raise _bad("a challenge must be a JSON object")
    try:
        version = int(raw.get("version", CHALLENGE_VERSION))
        if version != CHALLENGE_VERSION:
            raise _bad(f"unsupported challenge version {version}", version=version)
        nonce = raw["nonce"]
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128 or not nonce.isalnum():
            raise _bad("nonce must be 16–128 letters or digits")
        level = Level(raw.get("level", "normal"))
        variant = Variant(raw.get("variant", "live"))
        digits = raw.get("digits")
        if digits is not None and not isinstance(digits, dict):
            raise _bad("digits must be an object")
        issued = float(raw["issued_at"])
        expires = float(raw["expires_at"])
        if not (math.isfinite(issued) and math.isfinite(expires) and expires >= issued):
            raise _bad("issued_at / expires_at are not valid times")
        lead_in = _int_ms(raw.get("lead_in_ms", 0), "lead_in_ms")
        actions = []
        for i, item in enumerate(raw.get("actions", [])):
            start, end = (
                _int_ms(item["start_ms"], f"actions[{i}].start_ms"),
                _int_ms(item["end_ms"], f"actions[{i}].end_ms"),
            )
            if end <= start:
                raise _bad(f"actions[{i}] ends before it starts")
            actions.append(ActionStep(Action(item["action"]), start, end))
        colours = []
        for i, item in enumerate(raw.get("colours", [])):
            rgb = tuple(int(v) for v in item["rgb"])
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise _bad(f"colours[{i}].rgb must be three values 0–255")
            start, end = (
                _int_ms(item["start_ms"], f"colours[{i}].start_ms"),
                _int_ms(item["end_ms"], f"colours[{i}].end_ms"),
            )
            if end <= start:
                raise _bad(f"colours[{i}] ends before it starts")
            colours.append(
                ColourStep(str(item.get("name", "")), (rgb[0], rgb[1], rgb[2]), start, end)
            )
        signature = raw.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise _bad("signature must be a hex string")
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"malformed challenge: {exc!s}") from None
    if not actions and variant is not Variant.READ_DIGITS:
        raise _bad("a challenge needs at least one action")
    if (variant is Variant.READ_DIGITS) != (digits is not None):
        raise _bad("a read_digits challenge, and only one, carries digits")
    for prev, cur in itertools.pairwise(actions):
        if cur.start_ms < prev.end_ms:
            raise _bad("action windows must not overlap and must be in order")
    return Challenge(
        nonce=nonce,
        level=level,
        issued_at=issued,
        expires_at=expires,
        lead_in_ms=lead_in,
        actions=tuple(actions),
        colours=tuple(colours),
        version=version,
        signature=signature,
        variant=variant,
        digits=digits,
    )


def load_challenge(text: str) -> Challenge:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(f"the challenge is not valid JSON: {exc.msg}") from None
    return parse_challenge(raw)


__all__ = [
    "PALETTE",
    "TURNS",
    "Action",
    "ActionStep",
    "Challenge",
    "ColourStep",
    "Variant",
    "draw_challenge",
    "load_challenge",
    "parse_challenge",
]

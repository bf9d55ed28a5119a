"""Step-up policy: does this lending event need a face check now, and how strong?

Pure and versioned: the same (event, subject state, policy) always gives the same answer, and the
answer names the policy version that produced it, so a decision can be explained years later.
The shipped rules live in ``shiren/data/policy.toml``; a lender edits a copy and bumps its
version.  A *risk-policy change* is itself an event: a subject whose last check was made under an
older policy version is asked again.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode


class EventType(StrEnum):
    REGISTRATION = "registration"
    FIRST_APPLICATION = "first_application"
    DISBURSEMENT = "disbursement"
    WITHDRAWAL = "withdrawal"
    LARGE_TRANSACTION = "large_transaction"
    PASSWORD_RESET = "password_reset"
    DORMANT_ACCOUNT = "dormant_account"
    RISK_POLICY_CHANGE = "risk_policy_change"
    NEW_DEVICE = "new_device"


@dataclass(frozen=True, slots=True)
class LendingEventIn:
    type: EventType
    occurred_at: datetime
    amount_minor: int = 0
    """Amount in the currency's minor unit (fen for CNY); 0 when the event has none."""
    currency: str = "CNY"
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubjectState:
    """What the policy may know about the subject (no biometrics)."""

    enrolled: bool
    last_check_at: datetime | None = None
    last_check_policy_version: str | None = None
    last_activity_at: datetime | None = None
    known_devices: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EventRule:
    always: bool = False
    level: str = "normal"
    max_age_s: int = 24 * 3600
    """A passed check younger than this covers the event."""
    amount_at_least_minor: int | None = None
    """When set, the event needs a check at or above this amount regardless of age."""
    high_amount_minor: int | None = None
    """At or above this amount the level becomes ``high`` (and max age 0)."""
    challenge: str = "actions"
    """The challenge the event's capture must answer: ``actions`` (the level's random actions
    and colour flash, with the capture page's own fallbacks), or ``read_digits`` — the
    borrower reads digits aloud (issue 18), required whatever the level offers; judged by the
    level's signals and its ``without_flash`` rule (docs/LIVENESS.md)."""


DEFAULT_CONSENT_PURPOSES: tuple[str, ...] = (
    "credit_identity_verification",
    "identity_verification",
    "face_verification",
)
"""The consent purposes of a policy without a ``[consent]`` table."""


@dataclass(frozen=True, slots=True)
class StepUpPolicy:
    version: str
    rules: dict[EventType, EventRule]
    dormant_after_days: int = 180
    match_profile: str = "standard"
    source: str = "defaults"
    consent_purposes: tuple[str, ...] = DEFAULT_CONSENT_PURPOSES
    """The purposes an enrolment's consent may name (``[consent] purposes``)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    needed: bool
    purpose: str
    """``enrol`` (no face bound yet) or ``step_up``."""
    level: str
    match_profile: str
    max_age_s: int
    reasons: tuple[str, ...]
    policy_version: str
    fallbacks: tuple[str, ...] = field(
        default=("sms_otp", "bank_card_4", "authority_name_id", "manual_review")
    )
    retry_after_s: int | None = None
    """When the subject is locked out of face checks (``limit.locked``): seconds left."""
    challenge: str = "actions"
    """The challenge the event's capture answers (:attr:`EventRule.challenge`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "needed": self.needed,
            "purpose": self.purpose,
            "level": self.level,
            "match_profile": self.match_profile,
            "max_age_s": self.max_age_s,
            "reasons": list(self.reasons),
            "policy_version": self.policy_version,
            "fallbacks": list(self.fallbacks),
            "retry_after_s": self.retry_after_s,
            "challenge": self.challenge,
        }


CHALLENGES = ("actions", "read_digits")
"""The challenges an event rule may require."""


LEVEL_ORDER = ("low", "normal", "high")


def _stronger(a: str, b: str) -> str:
    return a if LEVEL_ORDER.index(a) >= LEVEL_ORDER.index(b) else b


def decide_step_up(
    event: LendingEventIn, state: SubjectState, policy: StepUpPolicy, now: datetime
) -> Requirement:
    """The requirement for ``event``.  Reasons are stable strings (``policy.*``)."""
    rule = policy.rules.get(event.type, EventRule(always=True))
    if not state.enrolled:
        return Requirement(
            True,
            "enrol",
            _stronger(rule.level, "normal"),
            policy.match_profile,
            0,
            ("policy.not_enrolled",),
            policy.version,
            challenge=rule.challenge,
        )
    reasons: list[str] = []
    level = rule.level
    max_age = rule.max_age_s
    if rule.always:
        reasons.append(f"policy.always.{event.type.value}")
    if rule.amount_at_least_minor is not None and event.amount_minor >= rule.amount_at_least_minor:
        reasons.append("policy.amount")
    if rule.high_amount_minor is not None and event.amount_minor >= rule.high_amount_minor:
        reasons.append("policy.high_amount")
        level, max_age = "high", 0
    if state.last_check_at is None:
        reasons.append("policy.no_previous_check")
    elif now - state.last_check_at > timedelta(seconds=max_age):
        reasons.append("policy.check_too_old")
    if (
        state.last_check_policy_version is not None
        and state.last_check_policy_version != policy.version
    ):
        reasons.append("policy.policy_changed")
    if event.device_id is not None and event.device_id not in state.known_devices:
        reasons.append("policy.new_device")
        level = _stronger(level, "normal")
    if state.last_activity_at is not None and now - state.last_activity_at > timedelta(
        days=policy.dormant_after_days
    ):
        reasons.append("policy.dormant")
        level = _stronger(level, "normal")
    return Requirement(
        bool(reasons),
        "step_up",
        level,
        policy.match_profile,
        max_age,
        tuple(reasons),
        policy.version,
        challenge=rule.challenge,
    )


def _bad(msg: str) -> ConfigError:
    return ConfigError(msg, code=ErrorCode.CONFIG_INVALID)


def parse_policy(raw: dict[str, Any], source: str) -> StepUpPolicy:
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise _bad(f"{source}: the policy needs a non-empty 'version' string")
    rules: dict[EventType, EventRule] = {}
    known = set(EventRule.__dataclass_fields__)
    for name, body in (raw.get("events") or {}).items():
        try:
            etype = EventType(name)
        except ValueError:
            raise _bad(f"{source}: unknown event type {name!r}") from None
        if not isinstance(body, dict) or set(body) - known:
            raise _bad(f"{source}: events.{name} has unknown keys")
        rule = EventRule(**body)
        if rule.level not in LEVEL_ORDER or rule.max_age_s < 0:
            raise _bad(f"{source}: events.{name} has an invalid level or max_age_s")
        if rule.challenge not in CHALLENGES:
            raise _bad(f"{source}: events.{name}.challenge must be one of {', '.join(CHALLENGES)}")
        rules[etype] = rule
    missing = set(EventType) - set(rules)
    if missing:
        raise _bad(f"{source}: no rule for {', '.join(sorted(m.value for m in missing))}")
    dormant = int(raw.get("dormant_after_days", 180))
    return StepUpPolicy(
        version=version,
        rules=rules,
        dormant_after_days=dormant,
        match_profile=str(raw.get("match_profile", "standard")),
        source=source,
        consent_purposes=_purposes(raw.get("consent"), source),
    )


def _purposes(table: Any, source: str) -> tuple[str, ...]:
    if table is None:
        return DEFAULT_CONSENT_PURPOSES
    purposes = table.get("purposes") if isinstance(table, dict) else None
    if (
        not isinstance(purposes, list)
        or not purposes
        or not all(isinstance(p, str) and 0 < len(p) <= 64 for p in purposes)
        or set(table) - {"purposes"}
    ):
        raise _bad(f"{source}: [consent] needs a non-empty 'purposes' list of strings")
    return tuple(purposes)


def load_policy(path: Path | None = None) -> StepUpPolicy:
    if path is None:
        text = resources.files("shiren.data").joinpath("policy.toml").read_text("utf-8")
        source = "shiren/data/policy.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise _bad(f"cannot read the policy {path}: {exc.strerror}") from None
        source = str(path)
    try:
        return parse_policy(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"{source} is not valid TOML: {exc}") from None


__all__ = [
    "CHALLENGES",
    "EventRule",
    "EventType",
    "LendingEventIn",
    "Requirement",
    "StepUpPolicy",
    "SubjectState",
    "decide_step_up",
    "load_policy",
    "parse_policy",
]

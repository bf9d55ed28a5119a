"""Liveness configuration: challenge timing, levels and per-signal thresholds.

The shipped values live in ``shiren/data/liveness.toml``; :func:`load_config` reads that file or a
lender's own copy (same shape, validated: an unknown key or a value out of range is a
``config.invalid`` error, never silently ignored).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode


class Level(StrEnum):
    """How hard the check is: more actions, more signals that must pass, a stricter PAD."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


SIGNALS = ("challenge", "identity", "parallax", "colour", "passive")


@dataclass(frozen=True, slots=True)
class ChallengeTiming:
    ttl_s: float = 180.0
    lead_in_ms: int = 800
    colour_step_ms: int = 300
    action_window_ms: int = 2600
    action_gap_ms: int = 0
    palette: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan")


@dataclass(frozen=True, slots=True)
class LevelPolicy:
    actions: tuple[int, int] = (2, 3)
    colours: int = 8
    turn_required: bool = True
    required: tuple[str, ...] = SIGNALS
    passive_threshold: str = "normal"
    without_flash: str = "review"
    """A capture that cannot use the colour flash (the ``motion`` and ``recorded`` challenge
    variants): ``"motion"`` judges it on the motion-only rules — the level's signals but the
    colour, the 3-D motion always — and it may pass; ``"review"`` judges it the same way but never
    passes it (a person decides); ``"fallback"`` sends the borrower to the non-face routes."""
    motion_actions: tuple[int, int] = (3, 3)
    """Actions of a challenge without the flash (min, max; a head turn always)."""
    recording: bool = True
    """Whether the capture page may offer the record-and-upload fallback at this level."""
    read_digits: bool = False
    """Whether the capture page may offer "read the digits aloud" (issue 18) at this level; it is
    judged like a capture without the flash (the ``without_flash`` rule)."""


WITHOUT_FLASH = ("motion", "review", "fallback")


@dataclass(frozen=True, slots=True)
class ActionThresholds:
    blink_closed_ratio: float = 0.72
    blink_open_ratio: float = 0.86
    blink_max_ms: float = 900.0
    mouth_open_delta: float = 0.18
    turn_delta_deg: float = 15.0
    nod_delta_deg: float = 10.0
    neutral_fraction: float = 0.6
    window_slack_ms: float = 400.0
    foreign_fraction: float = 1.0


@dataclass(frozen=True, slots=True)
class IdentityThresholds:
    min_similarity: float = 0.92
    """For a network with no entry in ``by_network`` (dlib's ResNet's value)."""
    keyframes: int = 4
    by_network: dict[str, float] = field(default_factory=dict)
    """The keyframe similarity floor per face network (scores of different networks are not on
    one scale): ``[identity.by_network]`` in liveness.toml."""

    def threshold_for(self, network: str) -> float:
        """The floor for templates made by ``network``."""
        return float(self.by_network.get(network, self.min_similarity))


@dataclass(frozen=True, slots=True)
class ParallaxThresholds:
    min_yaw_span_deg: float = 12.0
    pass_residual: float = 0.02


@dataclass(frozen=True, slots=True)
class ColourThresholds:
    pass_correlation: float = 0.75
    max_lag_ms: float = 250.0
    min_frames_per_step: int = 1
    unseen_swing: float = 0.005
    """Below this chromaticity swing an uncorrelated response means the flash was not seen
    (``liveness.colour_inconclusive``: direct sun, a dim screen), not a mismatch: a face with no
    or a 1–2 % reflection drifts 0.0018–0.0042 on its own, an 8 % one swings ≥ 0.0077
    (``scripts/measure_flash_unseen.py``)."""


@dataclass(frozen=True, slots=True)
class PassiveThresholds:
    keyframes: int = 3
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"low": 0.3, "normal": 0.5, "high": 0.66}
    )
    """For a PAD model with no entry in ``by_model`` (MiniFASNet's values)."""
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)
    """Thresholds per PAD model (live scores of different models are not on one scale):
    ``[passive.by_model]`` in liveness.toml, each entry naming every threshold of
    ``thresholds``."""

    def thresholds_for(self, model: str | None) -> dict[str, float]:
        """The named thresholds for ``model``'s live score."""
        return self.by_model.get(model or "", self.thresholds)


@dataclass(frozen=True, slots=True)
class FrameLimits:
    min_frames: int = 8
    max_frames: int = 900
    max_duration_ms: float = 60000.0
    max_gap_ms: float = 1500.0
    max_side_px: int = 1920


@dataclass(frozen=True, slots=True)
class LivenessConfig:
    """Everything the liveness check needs to know that is not a model."""

    challenge: ChallengeTiming = ChallengeTiming()
    levels: dict[Level, LevelPolicy] = field(default_factory=dict)
    actions: ActionThresholds = ActionThresholds()
    identity: IdentityThresholds = IdentityThresholds()
    parallax: ParallaxThresholds = ParallaxThresholds()
    colour: ColourThresholds = ColourThresholds()
    passive: PassiveThresholds = PassiveThresholds()
    frames: FrameLimits = FrameLimits()
    source: str = "defaults"

    def level(self, level: Level | str) -> LevelPolicy:
        try:
            return self.levels[Level(level)]
        except (ValueError, KeyError):
            raise ConfigError(
                f"unknown liveness level {level!r}; known: {', '.join(lv.value for lv in Level)}",
                code=ErrorCode.CONFIG_INVALID,
                detail={"level": str(level)},
            ) from None

    def passive_threshold(self, level: Level | str, model: str | None = None) -> float:
        """The passive threshold of ``level`` for the live score of PAD model ``model``."""
        name = self.level(level).passive_threshold
        return float(self.passive.thresholds_for(model)[name])

    def with_passive_thresholds(self, thresholds: dict[str, float]) -> LivenessConfig:
        return replace(self, passive=replace(self.passive, thresholds=dict(thresholds)))


def _section(cls: type[Any], raw: dict[str, Any], where: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [{where}]: {', '.join(sorted(unknown))}",
            code=ErrorCode.CONFIG_INVALID,
            detail={"section": where},
        )
    values: dict[str, Any] = {}
    defaults = cls()
    for key, given in raw.items():
        default = getattr(defaults, key)
        value: Any = given
        if isinstance(default, tuple):
            value = tuple(given)
        elif isinstance(default, bool):
            value = bool(given)
        elif isinstance(default, float):
            value = float(given)
        elif isinstance(default, int):
            value = int(given)
        values[key] = value
    return cls(**values)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}", code=ErrorCode.CONFIG_INVALID)


def parse_config(raw: dict[str, Any], source: str) -> LivenessConfig:
    """Validate a parsed TOML document (see ``shiren/data/liveness.toml``)."""
    try:
        levels_raw = raw.get("levels", {})
        levels = {
            Level(name): _section(LevelPolicy, body, f"levels.{name}")
            for name, body in levels_raw.items()
        }
        for lv in Level:
            levels.setdefault(lv, LevelPolicy())
        config = LivenessConfig(
            challenge=_section(ChallengeTiming, raw.get("challenge", {}), "challenge"),
            levels=levels,
            actions=_section(ActionThresholds, raw.get("actions", {}), "actions"),
            identity=_section(IdentityThresholds, raw.get("identity", {}), "identity"),
            parallax=_section(ParallaxThresholds, raw.get("parallax", {}), "parallax"),
            colour=_section(ColourThresholds, raw.get("colour", {}), "colour"),
            passive=_section(PassiveThresholds, raw.get("passive", {}), "passive"),
            frames=_section(FrameLimits, raw.get("frames", {}), "frames"),
            source=source,
        )
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"invalid liveness configuration in {source}: {exc}", code=ErrorCode.CONFIG_INVALID
        ) from None
    for name, policy in config.levels.items():
        lo, hi = policy.actions
        if not 1 <= lo <= hi <= 6:
            raise ConfigError(
                f"levels.{name}.actions must be 1 ≤ min ≤ max ≤ 6", code=ErrorCode.CONFIG_INVALID
            )
        lo, hi = policy.motion_actions
        if not 2 <= lo <= hi <= 6:
            raise ConfigError(
                f"levels.{name}.motion_actions must be 2 ≤ min ≤ max ≤ 6",
                code=ErrorCode.CONFIG_INVALID,
            )
        if policy.without_flash not in WITHOUT_FLASH:
            raise ConfigError(
                f"levels.{name}.without_flash must be one of {', '.join(WITHOUT_FLASH)}",
                code=ErrorCode.CONFIG_INVALID,
            )
        bad = set(policy.required) - set(SIGNALS)
        if bad:
            raise ConfigError(
                f"levels.{name}.required names unknown signals: {', '.join(sorted(bad))}",
                code=ErrorCode.CONFIG_INVALID,
            )
        if policy.passive_threshold not in config.passive.thresholds:
            raise ConfigError(
                f"levels.{name}.passive_threshold {policy.passive_threshold!r} is not in "
                "[passive].thresholds",
                code=ErrorCode.CONFIG_INVALID,
            )
    _check_passive(config.passive)
    timing = config.challenge
    for key in ("ttl_s", "colour_step_ms", "action_window_ms"):
        _positive(f"challenge.{key}", float(getattr(timing, key)))
    if len(timing.palette) < 3:
        raise ConfigError("challenge.palette needs ≥ 3 colours", code=ErrorCode.CONFIG_INVALID)
    return config


def _check_passive(passive: PassiveThresholds) -> None:
    """Every ``[passive.by_model]`` entry names the same thresholds as ``[passive].thresholds``,
    each a live-score threshold in [0, 1]."""
    for model, named in passive.by_model.items():
        if not isinstance(named, dict) or set(named) != set(passive.thresholds):
            raise ConfigError(
                f"passive.by_model.{model} must name exactly the thresholds "
                f"{', '.join(sorted(passive.thresholds))}",
                code=ErrorCode.CONFIG_INVALID,
            )
        for name, value in named.items():
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise ConfigError(
                    f"passive.by_model.{model}.{name} must be a number in [0, 1]",
                    code=ErrorCode.CONFIG_INVALID,
                )


def load_config(path: Path | None = None) -> LivenessConfig:
    """The shipped configuration, or the lender's file at ``path``."""
    if path is None:
        text = resources.files("shiren.data").joinpath("liveness.toml").read_text("utf-8")
        source = "shiren/data/liveness.toml"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read liveness configuration {path}: {exc.strerror}",
                code=ErrorCode.CONFIG_INVALID,
            ) from None
        source = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{source} is not valid TOML: {exc}", code=ErrorCode.CONFIG_INVALID
        ) from None
    return parse_config(raw, source)


__all__ = [
    "SIGNALS",
    "WITHOUT_FLASH",
    "ActionThresholds",
    "ChallengeTiming",
    "ColourThresholds",
    "FrameLimits",
    "IdentityThresholds",
    "Level",
    "LevelPolicy",
    "LivenessConfig",
    "ParallaxThresholds",
    "PassiveThresholds",
    "load_config",
    "parse_config",
]

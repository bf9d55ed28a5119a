"""What the injection check may do to a decision: the ``[injection]`` table of ``policy.toml``.

The injection check (:mod:`shiren.liveness.injection`) says whether a capture's frames look
*fed* to the page rather than filmed by it: ``suspected`` (a decisive line crossed: physics or
the page's own code) or ``review_suggested`` (only weak evidence).  The tenant's mode says what
follows::

    [injection]
    mode = "shadow"                   # off | shadow | review | enforce
    tenants = { "<tenant id>" = "enforce" }   # optional per-tenant modes

============  ======================================================================
``off``       not measured at all
``shadow``    measured and recorded (the check's audit line), never changes the outcome
``review``    suspected → manual review (``liveness.injection_suspected``); weak
              evidence is recorded only
``enforce``   suspected → the capture fails as an attack (the coarse spoof text, an
              attempt counted); weak evidence → manual review
              (``liveness.injection_weak_signal``)
============  ======================================================================

Shipped: ``shadow``.  The decisive lines are physics, but none was measured on a real phone or
browser (docs/LIVENESS.md, "Injection attacks": the figures are from simulated capture
chains), and a decision should not hang on lines nobody has seen on real traffic: the features
are recorded on every check's audit line until a deployment has looked at its own live
distribution, then a tenant moves to ``review`` (or ``enforce``) in this table.
Pure: the service applies it (:mod:`shiren.service.injection`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode
from shiren.reasons import ReasonCode


class InjectionMode(StrEnum):
    OFF = "off"
    SHADOW = "shadow"
    REVIEW = "review"
    ENFORCE = "enforce"


DEFAULT_MODE = InjectionMode.SHADOW


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """What the mode makes of one injection result: ``fails`` — the capture fails as an attack
    (liveness failed, ``reason`` among the attack reasons); ``review`` — at least manual review
    with ``reason``; neither — nothing changes (recorded only)."""

    fails: bool = False
    review: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InjectionPolicy:
    """The default ``mode`` and per-tenant overrides."""

    mode: InjectionMode = DEFAULT_MODE
    tenants: Mapping[str, InjectionMode] = field(default_factory=dict)
    version: str = "defaults"

    def mode_for(self, tenant_id: str) -> InjectionMode:
        return self.tenants.get(tenant_id, self.mode)


def verdict(mode: InjectionMode, *, suspected: bool, review_suggested: bool) -> InjectionVerdict:
    """The effect of an injection result under ``mode`` (see the module docstring)."""
    if mode is InjectionMode.ENFORCE and suspected:
        return InjectionVerdict(True, False, ReasonCode.LIVENESS_INJECTION_SUSPECTED.value)
    if mode is InjectionMode.ENFORCE and review_suggested:
        return InjectionVerdict(False, True, ReasonCode.LIVENESS_INJECTION_WEAK_SIGNAL.value)
    if mode is InjectionMode.REVIEW and suspected:
        return InjectionVerdict(False, True, ReasonCode.LIVENESS_INJECTION_SUSPECTED.value)
    return InjectionVerdict()


def _bad(msg: str) -> ConfigError:
    return ConfigError(msg, code=ErrorCode.CONFIG_INVALID)


def _mode(value: object, where: str) -> InjectionMode:
    try:
        return InjectionMode(str(value)) if isinstance(value, str) else InjectionMode("")
    except ValueError:
        choices = ", ".join(m.value for m in InjectionMode)
        raise _bad(f"{where} must be one of {choices}") from None


def parse_injection_policy(raw: dict[str, Any], source: str) -> InjectionPolicy:
    """The ``[injection]`` table of a parsed policy (absent: the shipped default mode)."""
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise _bad(f"{source}: the policy needs a non-empty 'version' string")
    body = raw.get("injection", {})
    if not isinstance(body, dict) or set(body) - {"mode", "tenants"}:
        raise _bad(f"{source}: [injection] has unknown keys")
    mode = _mode(body.get("mode", DEFAULT_MODE.value), f"{source}: injection.mode")
    tenants = body.get("tenants", {})
    if not isinstance(tenants, dict) or not all(isinstance(t, str) and t for t in tenants):
        raise _bad(f"{source}: injection.tenants must map tenant ids to modes")
    per_tenant = {t: _mode(m, f"{source}: injection.tenants.{t}") for t, m in tenants.items()}
    return InjectionPolicy(mode=mode, tenants=per_tenant, version=version)


def load_injection_policy(path: Path | None = None) -> InjectionPolicy:
    """The injection policy of ``path`` (default: the shipped ``policy.toml``)."""
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
        return parse_injection_policy(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"{source} is not valid TOML: {exc}") from None


__all__ = [
    "DEFAULT_MODE",
    "InjectionMode",
    "InjectionPolicy",
    "InjectionVerdict",
    "load_injection_policy",
    "parse_injection_policy",
    "verdict",
]

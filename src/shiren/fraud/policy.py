"""The versioned anti-fraud policy (``shiren/data/fraud.toml``; a lender edits a copy and bumps
its version): thresholds of the 1:N searches, what a finding does (review or reject), the
device, background and velocity limits."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode

ACTIONS = ("review", "reject")
FINDINGS = (
    "blacklist",
    "duplicate_face",
    "id_number_other_face",
    "device_many_faces",
    "batch_background",
    "velocity",
)


@dataclass(frozen=True, slots=True)
class FraudPolicy:
    version: str
    duplicate_threshold: float = 0.97
    blacklist_threshold: float = 0.97
    same_id_threshold: float = 0.9694
    search_k: int = 5
    actions: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FINDINGS, "review"))
    device_max_subjects: int = 3
    device_window_s: int = 30 * 86400
    background_threshold: float = 0.92
    background_min_matches: int = 3
    background_recent: int = 200
    background_window_s: int = 86400
    velocity_window_s: int = 3600
    velocity_limits: dict[str, int] = field(
        default_factory=lambda: {"subject": 10, "device": 20, "ip": 30, "id_number": 10}
    )
    source: str = "defaults"
    networks: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per face network, the 1:N thresholds on that network's score scale (``[networks.NAME]``);
    the top-level ones are dlib's ResNet's."""

    def action(self, finding: str) -> str:
        return self.actions.get(finding, "review")

    def for_network(self, network: str) -> FraudPolicy:
        """This policy with ``network``'s thresholds (unchanged when it has no section)."""
        own = self.networks.get(network)
        if not own:
            return self
        return replace(
            self,
            duplicate_threshold=own.get("duplicate_threshold", self.duplicate_threshold),
            blacklist_threshold=own.get("blacklist_threshold", self.blacklist_threshold),
            same_id_threshold=own.get("same_id_threshold", self.same_id_threshold),
        )


def _bad(why: str, source: str) -> ConfigError:
    return ConfigError(
        f"fraud policy {source}: {why}", code=ErrorCode.CONFIG_INVALID, detail={"source": source}
    )


NETWORK_KEYS = ("duplicate_threshold", "blacklist_threshold", "same_id_threshold")


def _networks(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, section in raw.items():
        unknown = set(section) - set(NETWORK_KEYS)
        if unknown:
            raise ValueError(f"networks.{name}: unknown key(s) {sorted(unknown)}")
        out[str(name)] = {k: float(v) for k, v in section.items()}
    return out


def parse_fraud_policy(data: dict[str, Any], source: str) -> FraudPolicy:
    try:
        actions = {**dict.fromkeys(FINDINGS, "review"), **data.get("actions", {})}
        if any(a not in ACTIONS for a in actions.values()) or set(actions) - set(FINDINGS):
            raise _bad("actions must map known findings to review|reject", source)
        dev, bg, vel = data.get("device", {}), data.get("background", {}), data.get("velocity", {})
        policy = FraudPolicy(
            version=str(data["version"]),
            duplicate_threshold=float(data.get("duplicate_threshold", 0.97)),
            blacklist_threshold=float(data.get("blacklist_threshold", 0.97)),
            same_id_threshold=float(data.get("same_id_threshold", 0.9694)),
            search_k=int(data.get("search_k", 5)),
            actions=actions,
            device_max_subjects=int(dev.get("max_subjects", 3)),
            device_window_s=int(dev.get("window_s", 30 * 86400)),
            background_threshold=float(bg.get("threshold", 0.92)),
            background_min_matches=int(bg.get("min_matches", 3)),
            background_recent=int(bg.get("recent", 200)),
            background_window_s=int(bg.get("window_s", 86400)),
            velocity_window_s=int(vel.get("window_s", 3600)),
            velocity_limits={
                key: int(vel.get(key, default))
                for key, default in (("subject", 10), ("device", 20), ("ip", 30), ("id_number", 10))
            },
            source=source,
            networks=_networks(data.get("networks", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"{type(exc).__name__}: {exc}", source) from None
    if not (0 < policy.search_k <= 100) or policy.device_max_subjects < 1:
        raise _bad("search_k must be 1-100 and device.max_subjects ≥ 1", source)
    return policy


def load_fraud_policy(path: Path | None = None) -> FraudPolicy:
    """The shipped policy, or the one at ``path``."""
    if path is None:
        text = resources.files("shiren.data").joinpath("fraud.toml").read_text(encoding="utf-8")
        source = "shiren/data/fraud.toml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _bad(f"unreadable: {exc.strerror}", str(path)) from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"not TOML: {exc}", source) from None
    return parse_fraud_policy(data, source)


__all__ = ["ACTIONS", "FINDINGS", "FraudPolicy", "load_fraud_policy", "parse_fraud_policy"]

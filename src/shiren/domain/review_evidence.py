"""Reviewer evidence: whether a check sent to manual review keeps a few of its keyframes for the
reviewer to look at, and for how long.

Off by default: a capture's frames are turned into scores in memory and dropped, and nothing a
person could look at is stored.  A lender whose reviewers must *see* the borderline case (is it
the same person? a photo held up to the camera?) turns it on in the ``[review_evidence]`` table
of the same ``policy.toml`` as the step-up rules (same ``version``)::

    [review_evidence]
    keyframes = 3          # 0 (off) … 3 frames of a check decided "review"
    days = 7               # kept at most this long when nobody decides the review
    tenants = ["…"]        # optional: only these tenants (absent: every tenant)

The frames are sealed with the subject's key (erasure shreds them), deleted when the review is
decided, and deleted by the retention sweep after ``days``.  Without kept frames the console
does not offer reasons that need an inspection of the faces.  Pure: the service applies it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from shiren.errors import ConfigError, ErrorCode

MAX_KEYFRAMES = 3
"""Never more: enough to judge a face and a presentation attack, little to lose."""
MAX_DAYS = 30
"""The longest a kept frame may wait for a reviewer (the review-candidate TTL's default)."""


@dataclass(frozen=True, slots=True)
class ReviewEvidencePolicy:
    """``keyframes`` frames of a check sent to review are kept ``days`` days at most, for the
    ``tenants`` named (``None``: every tenant)."""

    keyframes: int = 0
    days: int = 7
    tenants: frozenset[str] | None = None
    version: str = "defaults"

    def keyframes_for(self, tenant_id: str) -> int:
        """How many frames a check of ``tenant_id`` sent to review keeps (0: none)."""
        if self.tenants is not None and tenant_id not in self.tenants:
            return 0
        return self.keyframes


def _bad(msg: str) -> ConfigError:
    return ConfigError(msg, code=ErrorCode.CONFIG_INVALID)


def parse_review_evidence(raw: dict[str, Any], source: str) -> ReviewEvidencePolicy:
    """The ``[review_evidence]`` table of a parsed policy (absent: off)."""
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise _bad(f"{source}: the policy needs a non-empty 'version' string")
    body = raw.get("review_evidence", {})
    if not isinstance(body, dict) or set(body) - {"keyframes", "days", "tenants"}:
        raise _bad(f"{source}: [review_evidence] has unknown keys")
    keyframes, days = body.get("keyframes", 0), body.get("days", 7)
    if not _whole(keyframes) or not 0 <= keyframes <= MAX_KEYFRAMES:
        raise _bad(f"{source}: review_evidence.keyframes must be 0 to {MAX_KEYFRAMES}")
    if not _whole(days) or not 1 <= days <= MAX_DAYS:
        raise _bad(f"{source}: review_evidence.days must be 1 to {MAX_DAYS}")
    tenants = body.get("tenants")
    if tenants is not None and (
        not isinstance(tenants, list) or not all(isinstance(t, str) and t for t in tenants)
    ):
        raise _bad(f"{source}: review_evidence.tenants must be a list of tenant ids")
    return ReviewEvidencePolicy(
        keyframes=keyframes,
        days=days,
        tenants=None if tenants is None else frozenset(tenants),
        version=version,
    )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_review_evidence(path: Path | None = None) -> ReviewEvidencePolicy:
    """The reviewer-evidence policy of ``path`` (default: the shipped ``policy.toml``)."""
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
        return parse_review_evidence(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"{source} is not valid TOML: {exc}") from None


__all__ = [
    "MAX_DAYS",
    "MAX_KEYFRAMES",
    "ReviewEvidencePolicy",
    "load_review_evidence",
    "parse_review_evidence",
]

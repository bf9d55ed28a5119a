"""The injection check's evidence of one check, as the review console shows it to reviewers.

Read from the check's own ``check.decided`` audit line (its ``injection`` block,
:meth:`shiren.service.injection.InjectionOutcome.evidence`): the tenant's mode and what it made
of the finding, who uploaded, what bounded the start of the filming, the sub-kinds that fired,
and every feature's value against its line.  Numbers, booleans and codes only — the line never
holds the camera label (only whether it names a virtual camera) and nothing here adds text to
it.  Tolerant: an older or damaged line reads as "not measured" or loses the fields it lacks;
a stored row must always render.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shiren.domain.entities import Check
from shiren.storage.ports import UnitOfWork

_CODE = re.compile(r"[a-z0-9_.]{1,64}")


@dataclass(frozen=True, slots=True)
class InjectionFeatureRow:
    """One feature: its value, its line (None: not judged on this upload), whether it fired and
    whether its line decides (physics, the page's code) or only suggests review (fitted)."""

    name: str
    value: float | None
    threshold: float | None
    fired: bool
    decisive: bool


@dataclass(frozen=True, slots=True)
class InjectionEvidence:
    mode: str
    effect: str
    """``none`` / ``review`` / ``fail``: what the mode made of the finding."""
    source: str
    """``page`` (the capture page's timer facts judged) or ``api``."""
    started_from: str
    """``session`` / ``consent`` / ``fetch``: what bounded the start of the filming."""
    suspected: bool
    review_suggested: bool
    sub_kinds: tuple[str, ...]
    features: tuple[InjectionFeatureRow, ...]
    virtual_camera_label: bool | None
    """Whether the page's camera label named a virtual camera (None: not recorded)."""
    frames: int | None


def injection_evidence(uow: UnitOfWork, tenant_id: str, check: Check) -> InjectionEvidence | None:
    """The injection evidence on ``check``'s audit line (None: not measured — the tenant's mode
    was ``off``, the capture was a recording, or the check predates the injection check)."""
    lines = uow.console.audit_at(tenant_id, check.subject_id, "check.decided", check.created_at)
    for line in lines:
        payload = _json(line.payload)
        if payload.get("check_id") == check.id and isinstance(payload.get("injection"), dict):
            return parse_injection(payload["injection"])
    return None


def parse_injection(block: dict[str, Any]) -> InjectionEvidence:
    """An audit line's ``injection`` block as the console shows it."""
    details, features = _dict(block.get("details")), _dict(block.get("features"))
    label = details.get("virtual_camera_label")
    frames = details.get("frames")
    return InjectionEvidence(
        mode=_code(block.get("mode")),
        effect=_code(block.get("effect")),
        source=_code(block.get("source")),
        started_from=_code(block.get("started_from")),
        suspected=block.get("suspected") is True,
        review_suggested=block.get("review_suggested") is True,
        sub_kinds=tuple(k for k in map(_code, _list(block.get("sub_kinds"))) if k != "—"),
        features=tuple(
            _row(name, row)
            for name, row in features.items()
            if _code(name) != "—" and isinstance(row, dict)
        ),
        virtual_camera_label=label if isinstance(label, bool) else None,
        frames=frames if isinstance(frames, int) and not isinstance(frames, bool) else None,
    )


def _row(name: str, row: dict[str, Any]) -> InjectionFeatureRow:
    return InjectionFeatureRow(
        name=name,
        value=_number(row.get("value")),
        threshold=_number(row.get("threshold")),
        fired=row.get("fired") is True,
        decisive=row.get("decisive") is True,
    )


def _code(value: object) -> str:
    """A code as stored, or "—" for anything that is not one (never free text)."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else "—"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(text: str) -> dict[str, Any]:
    try:
        return _dict(json.loads(text))
    except ValueError:
        return {}


__all__ = ["InjectionEvidence", "InjectionFeatureRow", "injection_evidence", "parse_injection"]

"""What the console shows, assembled from storage rows: a review case with its evidence, and the
dashboard's per-day series (from the database's ``GROUP BY`` counts).  Pure data, no HTML."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shiren.domain.console import DailyCount
from shiren.domain.entities import Check, Evidence, ReviewItem, Session, Subject
from shiren.messages import message
from shiren.reasons import ReasonCode
from shiren.storage.ports import UnitOfWork

DECISIONS = ("pass", "retry", "review", "fallback")
ATTACK_PREFIX = "liveness."
LOCKOUT_PREFIX = "limit."
NOT_A_FAILURE = frozenset({ReasonCode.MATCH_ABOVE_THRESHOLD.value})


@dataclass(frozen=True, slots=True)
class ReasonText:
    code: str
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class CardCheckText:
    """One check the ID card went through at enrolment: its code, texts and outcome
    (``passed`` ``None``: not applicable, e.g. the expiry without the back)."""

    code: str
    en: str
    zh: str
    passed: bool | None


@dataclass(frozen=True, slots=True)
class CaseView:
    """One review case with its evidence: the check's scores and reasons (with their texts),
    the session's challenge and timings, the policy version, and any raw images still within
    their retention (``evidence``; the current service keeps none)."""

    review: ReviewItem
    check: Check | None
    session: Session | None
    subject: Subject | None
    reasons: list[ReasonText]
    challenge: dict[str, Any]
    evidence: list[Evidence]
    seconds_to_decision: float | None
    card: list[CardCheckText] | None = None
    """When the subject's reference was cut from the ID card: the card's checks (codes and
    outcomes only: no value read is stored)."""


def reason_text(code: str) -> ReasonText:
    try:
        return ReasonText(code, message(code, "en"), message(code, "zh-CN"))
    except KeyError:  # a code from a newer version: show the code itself
        return ReasonText(code, code, code)


def challenge_summary(challenge_json: str) -> dict[str, Any]:
    """The parts of a signed challenge a reviewer needs (no nonce, no signature); tolerant of
    older or foreign shapes (a stored row must always render)."""
    try:
        doc = json.loads(challenge_json)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}

    def step(a: Any) -> tuple[Any, Any, Any]:
        if isinstance(a, dict):
            return (a.get("action"), a.get("start_ms"), a.get("end_ms"))
        return (a, None, None)

    colours = doc.get("colours") or []
    return {
        "level": doc.get("level"),
        "lead_in_ms": doc.get("lead_in_ms"),
        "duration_ms": doc.get("duration_ms"),
        "actions": [step(a) for a in doc.get("actions") or []],
        "colours": [c.get("name") if isinstance(c, dict) else c for c in colours],
    }


def case_view(uow: UnitOfWork, tenant_id: str, item: ReviewItem, now: datetime) -> CaseView:
    check = uow.checks.get(tenant_id, item.check_id)
    session = subject = None
    evidence: list[Evidence] = []
    if check is not None:
        session = uow.sessions.get(tenant_id, check.session_id)
        subject = uow.subjects.get(tenant_id, check.subject_id)
        evidence = [
            e for e in uow.evidence.list_for_check(tenant_id, check.id) if e.expires_at > now
        ]
    card = _card_checks(uow, tenant_id, subject) if subject is not None else None
    elapsed = None
    if check is not None and session is not None:
        elapsed = round((check.created_at - session.created_at).total_seconds(), 1)
    return CaseView(
        review=item,
        check=check,
        session=session,
        subject=subject,
        reasons=[reason_text(r) for r in (check.reasons if check else ())],
        challenge=challenge_summary(session.challenge_json) if session else {},
        evidence=evidence,
        seconds_to_decision=elapsed,
        card=card,
    )


def _card_checks(uow: UnitOfWork, tenant_id: str, subject: Subject) -> list[CardCheckText] | None:
    """The checks of the newest reference cut from the ID card (a row must always render: a
    malformed value reads as no card)."""
    refs = [r for r in uow.references.list_for_subject(tenant_id, subject.id) if r.card_checks]
    if not refs:
        return None
    try:
        items = json.loads(refs[-1].card_checks or "[]")
    except ValueError:
        return None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            text = reason_text(item["code"])
            passed = item.get("passed")
            out.append(
                CardCheckText(
                    text.code, text.en, text.zh, passed if passed in (True, False) else None
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Per-day series over ``days`` (UTC dates, oldest first) and the period's totals."""

    days: list[str]
    by_decision: dict[str, list[int]]
    totals: list[int]
    pass_rate: list[float | None]
    attacks: list[int]
    lockouts: list[int]
    failure_reasons: list[tuple[ReasonText, int]]
    attack_reasons: list[tuple[ReasonText, int]]
    summary: dict[str, Any] = field(default_factory=dict)


def build_dashboard(
    since: datetime, days: int, decisions: list[DailyCount], reasons: list[DailyCount]
) -> Dashboard:
    """Fold the database's daily counts into dense per-day series (days without checks: 0)."""
    day_names = [(since + timedelta(days=i)).date().isoformat() for i in range(days)]
    index = {d: i for i, d in enumerate(day_names)}
    by_decision = {d: [0] * days for d in DECISIONS}
    for cell in decisions:
        by_decision.setdefault(cell.key, [0] * days)[index[cell.day]] += cell.count
    totals = [sum(series[i] for series in by_decision.values()) for i in range(days)]
    passes = by_decision["pass"]
    pass_rate = [None if t == 0 else passes[i] / t for i, t in enumerate(totals)]
    attacks, lockouts = [0] * days, [0] * days
    failures: Counter[str] = Counter()
    attack_kinds: Counter[str] = Counter()
    for cell in reasons:
        if cell.key.startswith(ATTACK_PREFIX):
            attacks[index[cell.day]] += cell.count
            attack_kinds[cell.key] += cell.count
        if cell.key.startswith(LOCKOUT_PREFIX):
            lockouts[index[cell.day]] += cell.count
        if cell.key not in NOT_A_FAILURE:
            failures[cell.key] += cell.count
    total = sum(totals)
    summary = {
        "checks": total,
        "passed": sum(passes),
        "pass_rate": None if total == 0 else sum(passes) / total,
        "attacks": sum(attacks),
        "lockouts": sum(lockouts),
        "reviews": sum(by_decision["review"]),
    }
    return Dashboard(
        days=day_names,
        by_decision=by_decision,
        totals=totals,
        pass_rate=pass_rate,
        attacks=attacks,
        lockouts=lockouts,
        failure_reasons=[(reason_text(c), n) for c, n in failures.most_common(8)],
        attack_reasons=[(reason_text(c), n) for c, n in attack_kinds.most_common(8)],
        summary=summary,
    )


__all__ = [
    "ATTACK_PREFIX",
    "DECISIONS",
    "LOCKOUT_PREFIX",
    "CaseView",
    "Dashboard",
    "ReasonText",
    "build_dashboard",
    "case_view",
    "challenge_summary",
    "reason_text",
]

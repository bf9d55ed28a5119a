"""The ID-card evaluation end to end: make the cards of each level, read them, add up, match
portraits, read the specimen, and write ``report.json`` (with provenance) and ``report.md``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shiren.eval.idcard_eval import (
    FRONT_FIELDS,
    ReaderLike,
    read_cards,
    read_specimen,
    summarize,
    targets,
)
from shiren.eval.idcard_match import portrait_match
from shiren.eval.idcard_synth import CardGenerator, FaceBank, SynthConfig

if TYPE_CHECKING:
    from shiren.verifier import Verifier


@dataclass(frozen=True, slots=True)
class IdcardRun:
    """What to evaluate: ``cards`` synthetic cards (even indices fronts) at each of ``levels``,
    made from ``synth`` (its level is replaced per level), plus the ``specimen`` photo."""

    cards: int
    levels: tuple[str, ...]
    synth: SynthConfig
    faces: FaceBank | None = None
    specimen: Path | None = None
    font: Path | None = None


def evaluate(
    reader: ReaderLike,
    run: IdcardRun,
    *,
    verifier: Verifier | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """The report (without provenance): per level the counts and rates of
    :func:`~shiren.eval.idcard_eval.summarize`, the targets, the card-portrait match (when a
    ``verifier`` and a face bank are given); and the specimen's reading."""
    today = run.synth.today
    report: dict[str, Any] = {"protocol": protocol(run), "levels": {}}
    if run.specimen is not None:
        report["specimen"] = read_specimen(reader, run.specimen, today=today)
        if progress is not None:
            progress(1)
    for level in run.levels:
        generator = CardGenerator(replace(run.synth, level=level), faces=run.faces, font=run.font)
        level_run = read_cards(
            reader, generator.cards(run.cards), level=level, today=today, progress=progress
        )
        summary = summarize(level_run.outcomes)
        summary["targets"] = targets(summary)
        if verifier is not None and run.faces is not None:
            summary["portrait_match"] = portrait_match(verifier, run.faces, level_run)
        report["levels"][level] = summary
    return report


def protocol(run: IdcardRun) -> dict[str, Any]:
    """The run's settings, for the report (and its provenance)."""
    return {
        "cards": run.cards,
        "levels": list(run.levels),
        "seed": run.synth.seed,
        "invalid_share": run.synth.invalid_share,
        "today": run.synth.today.isoformat(),
        "faces": str(run.faces.root) if run.faces else None,
        "specimen": str(run.specimen) if run.specimen else None,
        "sides": "even card indices are fronts, odd ones backs",
        "field_match": "exact after NFKC, whitespace removed",
    }


def markdown(report: Mapping[str, Any]) -> str:
    """``report.md``: one table per level, the portrait match, the specimen."""
    p = report["protocol"]
    lines = [
        "# ID-card reader evaluation",
        "",
        f"{p['cards']} synthetic cards per level (seed {p['seed']}, invalid check digits "
        f"{p['invalid_share']:.0%}, made on {p['today']}); faces: {p['faces'] or 'silhouettes'}.",
        "",
    ]
    for level, summary in report["levels"].items():
        lines += _level_table(level, summary)
    if "specimen" in report:
        lines += _specimen_table(report["specimen"])
    return "\n".join(lines) + "\n"


def _level_table(level: str, s: Mapping[str, Any]) -> list[str]:
    lines = [f"## Level `{level}` ({s['fronts']} fronts, {s['backs']} backs)", ""]
    lines += ["| metric | measured | k / n | 95 % CI | target |", "|---|---|---|---|---|"]
    goals = dict(s["targets"])
    for name, field in s["fields"].items():
        lines.append(_row(f"fields.{name}.exact", field["exact"], field, goals))
    lines.append(_row("side_accuracy", s["side_accuracy"]["rate"], s["side_accuracy"], goals))
    lines.append(_row("portrait_found", s["portrait_found"]["rate"], s["portrait_found"], goals))
    for key, value in s["check_digit"].items():
        lines.append(_row(f"check_digit.{key}", value["rate"], value, goals))
    t = s["time_ms"]
    goal = goals.get("time_ms.p95")
    mark = "" if goal is None else f"≤ {goal['target']:g} ({_met(goal['met'])})"
    lines.append(f"| time per card p50 / p95 (ms) | {_num(t['p50'])} / {_num(t['p95'])} | "
                 f"n = {t['n']} | | {mark} |")  # fmt: skip
    lines += [
        "",
        f"Side errors: {s['side_errors'] or 'none'}.  Guidance: {s['guidance'] or 'none'}.",
    ]
    lines += [f"Failed checks: {s['failed_checks'] or 'none'}.", ""]
    if "portrait_match" in s:
        lines += _match_table(s["portrait_match"])
    return lines


def _match_table(m: Mapping[str, Any]) -> list[str]:
    lines = [
        f"Card-portrait match ({m['cards']} fronts, {m['identities']} identities, shipped "
        f"threshold {m['shipped_threshold']:.4f}):",
        "",
        "| selfie vs | genuine / impostor pairs | FNMR @ shipped | FMR @ shipped | "
        "threshold @ FMR 1e-2 | FNMR there |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("card_portrait", "original"):
        r = m[name]
        at = r.get("at_fmr_0.01")
        thr, fnmr = (_num(at["threshold"], 4), _rate(at["fnmr"])) if at else ("—", "—")
        lines.append(
            f"| {name} | {r['n_genuine']} / {r['n_impostor']} | {_rate(r['fnmr_at_shipped'])} | "
            f"{_rate(r['fmr_at_shipped'])} | {thr} | {fnmr} |"
        )
    proposal = m.get("proposed_card_threshold")
    if proposal:
        lines += ["", f"Proposed card-portrait threshold: {proposal['threshold']:.4f} (FMR ≤ "
                      f"{proposal['fmr_target']:g}, FNMR {_rate(proposal['fnmr'])}; "
                      f"{proposal['note']})."]  # fmt: skip
    return [*lines, ""]


def _specimen_table(sp: Mapping[str, Any]) -> list[str]:
    lines = [f"## Specimen `{sp['file']}`", "", "| field | expected | read | exact |"]
    lines.append("|---|---|---|---|")
    for name in FRONT_FIELDS:
        f = sp["fields"][name]
        lines.append(f"| {name} | {f['expected']} | {f['read']} | {_met(f['exact'])} |")
    lines += ["", f"Side right: {_met(sp['side_correct'])}; portrait found: "
                  f"{_met(sp['portrait_found'])}; wrong check digit flagged: "
                  f"{_met(sp['number_invalid_flagged'])}; {sp['time_ms']:.0f} ms.", ""]  # fmt: skip
    return lines


def _row(
    name: str, value: float | None, counts: Mapping[str, Any], goals: Mapping[str, Any]
) -> str:
    goal = goals.get(name)
    mark = "" if goal is None else f"≥ {goal['target']:.0%} ({_met(goal['met'])})"
    ci = counts.get("ci95")
    interval = f"{ci[0]:.1%} – {ci[1]:.1%}" if ci else ""
    shown = "—" if value is None else f"{value:.1%}"
    return f"| {name} | {shown} | {counts['k']} / {counts['n']} | {interval} | {mark} |"


def _rate(r: Mapping[str, Any]) -> str:
    return "—" if r["rate"] is None else f"{r['rate']:.1%} ({r['k']}/{r['n']})"


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _met(flag: bool | None) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


def levels_of(text: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """``"moderate"``, ``"none,strong"`` or ``"all"`` → the levels, checked against
    ``allowed``.  Raises ``ValueError`` naming the allowed values."""
    names = tuple(allowed) if text.strip() == "all" else tuple(
        n.strip() for n in text.split(",") if n.strip()
    )  # fmt: skip
    if not names or any(n not in allowed for n in names):
        raise ValueError(f"levels must be 'all' or a comma list of {', '.join(allowed)}")
    return names


__all__ = ["IdcardRun", "evaluate", "levels_of", "markdown", "protocol"]

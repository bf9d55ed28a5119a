"""``shiren compare`` and ``shiren quality``: one image pair or one capture, judged by the face
engine of a named profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import JsonOpt, LangOpt, ProfileOpt, emit, run_guarded, verifier_for


def compare(
    first: Annotated[Path, typer.Argument(help="First image (e.g. the live selfie).")],
    second: Annotated[Path, typer.Argument(help="Second image (e.g. the ID or reference photo).")],
    threshold: Annotated[
        float | None, typer.Option(help="Similarity threshold (default: calibrated).")
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Face choice: single | largest_central.")
    ] = "largest_central",
    profile: ProfileOpt = "standard",
    as_json: JsonOpt = False,
    lang: LangOpt = "en",
) -> None:
    """Say whether two images show the same person: similarity, threshold, match, reasons."""

    def action() -> dict[str, Any]:
        verifier = verifier_for(profile, threshold, policy)
        return dict(verifier.compare(first, second).to_dict(lang))

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        verdict = "MATCH" if result["match"] else "NO MATCH"
        typer.echo(
            f"{verdict}  similarity={result['similarity']:.4f}  threshold={result['threshold']:.4f}"
        )
        for reason in result["reasons"]:
            typer.echo(f"  [{reason['image']}] {reason['code']}: {reason['message']}")


def quality(
    image: Annotated[Path, typer.Argument(help="Image to judge.")],
    as_json: JsonOpt = False,
    lang: LangOpt = "zh-CN",
) -> None:
    """Judge whether a capture is good enough, with reason codes and user tips."""

    def action() -> dict[str, Any]:
        verifier = verifier_for()
        analysis = verifier.analyze(image)
        report: dict[str, Any] = analysis.quality.to_dict(lang)
        report["face"] = {
            "box": analysis.face.box.to_list(),
            "score": round(analysis.face.score, 4),
        }
        report["faces_found"] = len(analysis.faces)
        return report

    report = run_guarded(as_json, action)
    if as_json:
        emit(report)
    else:
        typer.echo("PASS" if report["passed"] else "RETRY")
        for reason in report["reasons"]:
            typer.echo(f"  {reason['code']}: {reason['message']}")


def register(app: typer.Typer) -> None:
    app.command()(compare)
    app.command()(quality)


__all__ = ["compare", "quality", "register"]

"""``shiren idcard read``: read one photo of a resident ID card and print what was found.

This is the operator's tool: it prints every field in full (the number and the name included),
with its confidence, each check with its outcome and reason code, the capture guidance and
whether a portrait was found.  It logs nothing.  Exit 0 when the photo was judged (a reading,
even "no card found"); 2 with the typed error (JSON with ``--json``) when it cannot be (not an
image, two cards, another document); 3 when the models are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import JsonOpt, LangOpt, emit, run_guarded

idcard_app = typer.Typer(help="Read Chinese resident ID cards (居民身份证).", no_args_is_help=True)

_OUTCOME = {True: "PASS", False: "FAIL", None: "N/A "}


@idcard_app.command("read")
def read(
    image: Annotated[Path, typer.Argument(help="Photo of one side of an ID card.")],
    expect_id: Annotated[
        str | None,
        typer.Option("--expect-id", help="The ID number the applicant gave (checked against it)."),
    ] = None,
    side: Annotated[
        str | None, typer.Option("--side", help="The side that was asked for: front | back.")
    ] = None,
    portrait_out: Annotated[
        Path | None, typer.Option("--portrait-out", help="Write the portrait crop here (PNG).")
    ] = None,
    as_json: JsonOpt = False,
    lang: LangOpt = "zh-CN",
) -> None:
    """Side, every field with its confidence, the checks, guidance and the portrait."""
    if side is not None and side not in ("front", "back"):
        raise typer.BadParameter("--side must be front or back")

    def action() -> dict[str, Any]:
        from shiren.core.image import load_image
        from shiren.idcard.types import CardReader

        pixels = load_image(image).pixels
        reading = CardReader.load().read(pixels, expected_id_number=expect_id, expected_side=side)
        result = reading.to_dict(lang)
        result["corners"] = (
            [[round(x, 1), round(y, 1)] for x, y in reading.corners] if reading.corners else None
        )
        if portrait_out is not None and reading.portrait is not None:
            from PIL import Image

            Image.fromarray(reading.portrait).save(portrait_out, format="PNG")
        return result

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        _print(result)


def _print(result: dict[str, Any]) -> None:
    typer.echo(f"side: {result['side']}")
    for name, field in result["fields"].items():
        typer.echo(f"  {name:12} {field['value']}  ({field['confidence']:.3f})")
    for check in result["checks"]:
        line = f"{_OUTCOME[check['passed']]}  {check['code']}"
        if check["passed"] is False:
            line += f": {check['message']}"
        reason = check["detail"].get("reason") or check["detail"].get("missing")
        typer.echo(f"{line}  ({reason})" if reason else line)
    for hint in result["guidance"]:
        typer.echo(f"guidance  {hint['code']}: {hint['message']}")
    typer.echo(f"portrait: {'found' if result['portrait_found'] else 'not found'}")


def register(app: typer.Typer) -> None:
    app.add_typer(idcard_app, name="idcard")


__all__ = ["idcard_app", "read", "register"]

"""``shiren demo capture``: open a capture session for a person at a webcam, and print its URL.

It acts on the database and keys the server uses (the same ``SHIREN_*`` settings), creates a demo
tenant and subject enrolled from ``--reference`` (a photo of the person who will face the camera:
a phone selfie or an ID-style portrait), and opens a session at ``--level``.  Open the printed URL
in a browser on the machine running ``shiren serve`` (or over HTTPS: browsers only allow the
camera on ``localhost``/``127.0.0.1`` or a secure origin).  The capture is matched against that
photo, so the demo shows the real decision; nothing is simulated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded

demo_app = typer.Typer(help="Try the service by hand.", no_args_is_help=True)


@demo_app.command("capture")
def demo_capture(
    reference: Annotated[
        Path,
        typer.Option("--reference", help="A photo of the person who will face the camera."),
    ],
    level: Annotated[str, typer.Option(help="Liveness level: low | normal | high.")] = "normal",
    base_url: Annotated[
        str | None,
        typer.Option(help="Where the server is reached (default: SHIREN_PUBLIC_URL or :8000)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a demo tenant + subject from --reference and print a capture URL (valid for the
    session TTL, SHIREN_SESSION_TTL_S, 5 minutes by default)."""
    from shiren.errors import ErrorCode, InputError
    from shiren.service.bootstrap import build_service
    from shiren.service.capture import start_demo_session
    from shiren.service.settings import load_settings

    def action() -> dict[str, Any]:
        if not reference.is_file():
            raise InputError(
                f"reference photo not found: {reference}", code=ErrorCode.INPUT_FILE_NOT_FOUND
            )
        settings = load_settings()
        service = build_service(settings)
        demo = start_demo_session(service, reference_image=reference.read_bytes(), level=level)
        origin = (base_url or settings.public_url or "http://127.0.0.1:8000").rstrip("/")
        session = service.get_session(service.authenticate(demo.api_key), demo.session_id).session
        return {
            "capture_url": origin + demo.capture_path(),
            "tenant_id": demo.tenant_id,
            "api_key": demo.api_key,
            "subject_id": demo.subject_id,
            "session_id": demo.session_id,
            "level": demo.level,
            "expires_at": session.expires_at.isoformat(),
        }

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
        return
    typer.echo(f"demo tenant {result['tenant_id']} (API key, shown once: {result['api_key']})")
    typer.echo(f"subject {result['subject_id']}, session {result['session_id']} ({level})")
    typer.echo(f"open before {result['expires_at']}:")
    typer.echo(result["capture_url"])


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")


__all__ = ["register"]

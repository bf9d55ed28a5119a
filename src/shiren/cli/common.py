"""What every ``shiren`` command shares: JSON output, the exit-code protocol, common options, and
the face engine built through the composition root (:mod:`shiren.service.bootstrap`).

Exit codes: 0 a verdict was reached (match or not, pass or not); 2 the input could not be judged
(JSON with ``code`` and ``message`` on stdout when ``--json``); 3 shiren itself cannot work (a
model missing or corrupt, bad settings).

This module imports no command module: the commands import it, and :mod:`shiren.cli.main`
assembles them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from shiren.errors import ErrorCode, InputError, ShirenError

if TYPE_CHECKING:
    from shiren.verifier import Verifier

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of user messages: zh-CN or en.")]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="fast | standard (MobileFaceNet) | dlib-fast | dlib-standard | dlib-accurate",
    ),
]


def emit(obj: Any) -> None:
    """Print one JSON document (UTF-8, not ASCII-escaped) to stdout."""
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False))


def run_guarded(as_json: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn a ShirenError into the documented exit code and output."""
    try:
        return action()
    except ShirenError as exc:
        status = 2 if isinstance(exc, InputError) else 3
        if as_json:
            emit({"error": exc.to_dict(), **exc.to_dict()})
        else:
            typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(status) from None


def verifier_for(
    profile: str = "standard", threshold: float | None = None, policy: str = "largest_central"
) -> Verifier:
    """The real :class:`~shiren.Verifier` for a named profile, from
    :func:`shiren.service.bootstrap.build_verifier`; an unknown ``--profile`` or ``--policy`` is
    a usage error (exit 2, the allowed values in the message), as for any bad option."""
    from shiren.service.bootstrap import build_verifier

    try:
        return build_verifier(profile, threshold, policy)
    except InputError as exc:
        field = exc.detail.get("field")
        allowed = exc.detail.get("allowed")
        if (
            exc.code is not ErrorCode.INPUT_INVALID
            or field not in ("profile", "policy")
            or not allowed
        ):
            raise
        if field == "profile":
            raise typer.BadParameter(f"--profile must be one of {', '.join(allowed)}") from None
        raise typer.BadParameter("--policy must be 'single' or 'largest_central'") from None


def model_dict(info: Any) -> dict[str, str]:
    """A model's identity for a report's provenance: name, version, sha256 and licence."""
    return {
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "licence": info.licence,
    }


__all__ = [
    "JsonOpt",
    "LangOpt",
    "ProfileOpt",
    "emit",
    "model_dict",
    "run_guarded",
    "verifier_for",
]

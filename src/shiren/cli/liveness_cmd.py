"""``shiren liveness challenge`` and ``shiren liveness check``.

The signing key (HMAC-SHA256) comes from ``--key-file`` (raw bytes) or the environment variable
``SHIREN_CHALLENGE_KEY`` (hex).  With a key, ``challenge`` signs and ``check`` refuses a challenge
whose signature does not verify; without one, challenges are unsigned (fine for a lab, not for a
server: the service always signs).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import JsonOpt, LangOpt, emit, run_guarded
from shiren.errors import ConfigError, ErrorCode, InputError

liveness_app = typer.Typer(
    help="Liveness: draw a challenge, check an answered one.", no_args_is_help=True
)

KEY_ENV = "SHIREN_CHALLENGE_KEY"
MIN_KEY_BYTES = 16

KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help=f"Signing key file (raw bytes); else ${KEY_ENV} (hex)."),
]
LevelOpt = Annotated[str, typer.Option("--level", help="low | normal | high.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="A liveness.toml of your own (same shape).")
]


def _key(key_file: Path | None) -> bytes | None:
    if key_file is not None:
        try:
            key = key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the key file: {exc.strerror}", code=ErrorCode.CONFIG_INVALID
            ) from None
    elif os.environ.get(KEY_ENV):
        try:
            key = bytes.fromhex(os.environ[KEY_ENV].strip())
        except ValueError:
            raise ConfigError(f"${KEY_ENV} must be hex", code=ErrorCode.CONFIG_INVALID) from None
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"the signing key must be at least {MIN_KEY_BYTES} bytes", code=ErrorCode.CONFIG_INVALID
        )
    return key


@liveness_app.command("challenge")
def challenge_cmd(
    level: LevelOpt = "normal",
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Reproducible draw (tests, docs); never on a server."),
    ] = None,
    now: Annotated[
        float | None, typer.Option("--now", help="Issue time (Unix seconds); default: now.")
    ] = None,
    key_file: KeyFileOpt = None,
    config: ConfigOpt = None,
    kind: Annotated[
        str, typer.Option("--type", help="actions (the default) | read_digits.")
    ] = "actions",
    lang: Annotated[
        str, typer.Option("--lang", help="read_digits: the prompts' language, zh-CN | en.")
    ] = "zh-CN",
    as_json: JsonOpt = False,
) -> None:
    """Draw a random challenge: actions with windows, flash colours, nonce; or, with
    ``--type read_digits``, digits to read aloud on a signed schedule."""
    from shiren.liveness.challenge import draw_challenge
    from shiren.liveness.config import load_config
    from shiren.liveness.readdigits import draw_read_digits

    def action() -> dict[str, Any]:
        if kind == "read_digits":
            ch = draw_read_digits(level, lang=lang, seed=seed, now=now, key=_key(key_file))
            return ch.to_dict()
        if kind != "actions":
            raise InputError("--type must be actions or read_digits", code=ErrorCode.INPUT_INVALID)
        cfg = load_config(config)
        return draw_challenge(cfg, level, seed=seed, now=now, key=_key(key_file)).to_dict()

    out = run_guarded(as_json, action)
    if as_json:
        emit(out)
    elif out.get("type") == "read_digits":
        shows = ", ".join(
            f"{p}@{s['show_ms']}ms" for p, s in zip(out["prompts"], out["steps"], strict=False)
        )
        typer.echo(f"nonce {out['nonce']} ({out['level']}, read_digits): {shows}")
    else:
        steps = ", ".join(f"{a['action']}@{a['start_ms']}–{a['end_ms']}ms" for a in out["actions"])
        colours = " ".join(c["name"] for c in out["colours"]) or "none"
        typer.echo(f"nonce {out['nonce']} ({out['level']}): {steps}; colours: {colours}")


@liveness_app.command("check")
def check_cmd(
    frames: Annotated[
        Path, typer.Option("--frames", help="A directory of frames (+ frames.json) or a video.")
    ],
    challenge: Annotated[Path, typer.Option("--challenge", help="The challenge JSON file.")],
    level: Annotated[
        str | None, typer.Option("--level", help="Override the challenge's level.")
    ] = None,
    fps: Annotated[
        float | None, typer.Option("--fps", help="Frame rate of a directory without frames.json.")
    ] = None,
    now: Annotated[
        float | None,
        typer.Option(
            "--now", help="Check time (Unix seconds), e.g. the upload time of a recording."
        ),
    ] = None,
    key_file: KeyFileOpt = None,
    config: ConfigOpt = None,
    pad_model: Annotated[
        str,
        typer.Option(
            "--pad-model",
            help="Passive model name: 'auto' (MiniFASNet when configured, else human-antispoof), a "
            "registry name, or '' for none.",
        ),
    ] = "auto",
    lang: LangOpt = "en",
    as_json: JsonOpt = False,
) -> None:
    """Check an answered challenge; prints the LivenessResult.  A ``read_digits`` challenge is
    answered by one video file with its sound (``--frames clip.webm``)."""
    from shiren.liveness.challenge import load_challenge
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.config import load_config
    from shiren.liveness.frames import load_frames

    def action() -> dict[str, Any]:
        cfg = load_config(config)
        try:
            text = challenge.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            raise InputError(
                "the challenge file cannot be read", code=ErrorCode.CHALLENGE_INVALID
            ) from None
        if '"read_digits"' in text:
            return _check_read_digits(text, frames, cfg, pad_model, key_file, now, lang)
        ch = load_challenge(text)
        seq = load_frames(frames, cfg.frames, fps=fps)
        checker = LivenessChecker.from_config(cfg, pad_model=pad_model or None, key=_key(key_file))
        result = checker.check(ch, seq, now=now if now is not None else time.time(), level=level)
        return result.to_dict(lang)

    out = run_guarded(as_json, action)
    if as_json:
        emit(out)
    else:
        verdict = "PASS" if out["passed"] else "FAIL"
        failed = ", ".join(out["reasons"]) or "-"
        typer.echo(f"{verdict} score={out['score']:.3f} level={out['level']} reasons: {failed}")


def _check_read_digits(
    text: str,
    recording: Path,
    cfg: Any,
    pad_model: str,
    key_file: Path | None,
    now: float | None,
    lang: str,
) -> dict[str, Any]:
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.readdigits import load_read_digits
    from shiren.liveness.readdigits_check import ReadDigitsChecker

    ch = load_read_digits(text)
    try:
        data = recording.read_bytes()
    except OSError:
        raise InputError("the recording cannot be read", code=ErrorCode.VIDEO_UNREADABLE) from None
    key = _key(key_file)
    live = LivenessChecker.from_config(cfg, pad_model=pad_model or None)
    result = ReadDigitsChecker(live, key=key).check(
        ch, data, now if now is not None else time.time()
    )
    return result.to_dict(lang)


def register(app: typer.Typer) -> None:
    app.add_typer(liveness_app, name="liveness")


__all__ = ["register"]

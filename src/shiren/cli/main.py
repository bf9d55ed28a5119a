"""The ``shiren`` command line: thin wrappers over the Python API, assembled here.

This module only puts the Typer app together: each command lives in a ``*_cmd`` module that
attaches itself to the groups it is given (its ``register`` function), and what the commands
share (JSON output, exit codes, common options, the face engine) is in :mod:`shiren.cli.common`.
Every service object a command needs is built by :mod:`shiren.service.bootstrap`, the
composition root the server uses too.

Exit codes: 0 a verdict was reached (match or not, pass or not); 2 the input could not be judged
(JSON with ``code`` and ``message`` on stdout when ``--json``); 3 shiren itself cannot work (a
model missing or corrupt, bad settings).
"""

from __future__ import annotations

import sys

import typer

from shiren.cli import (
    bench_cmd,
    calibrate_cmd,
    console_cmd,
    demo_cmd,
    face_cmd,
    fairness_cmd,
    fraud_cmd,
    idcard_cmd,
    idcard_eval_cmd,
    injection_eval_cmd,
    liveness_cmd,
    liveness_eval_cmd,
    models_add_cmd,
    models_cmd,
    pad_cmd,
    readdigits_eval_cmd,
    service_cmd,
    templates_cmd,
    verification_cmd,
)


def build_app() -> typer.Typer:
    """The whole ``shiren`` command tree (commands are listed in the order attached here)."""
    app = typer.Typer(
        name="shiren",
        help="shiren (实人): real-person verification: face quality, 1:1 match, evaluation.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    models_app = typer.Typer(help="List, verify and build the models.", no_args_is_help=True)
    eval_app = typer.Typer(
        help="Evaluate accuracy on real data, as an accountant would.", no_args_is_help=True
    )
    app.add_typer(models_app, name="models")
    face_cmd.register(app)  # compare, quality
    models_cmd.register(models_app)  # models list, models build
    verification_cmd.register(eval_app)  # eval verification
    fairness_cmd.register(eval_app)  # eval fairness
    fraud_cmd.register(eval_app)  # eval duplicates
    idcard_eval_cmd.register(eval_app)  # eval idcard
    app.add_typer(eval_app, name="eval")
    calibrate_cmd.register(app)  # calibrate, calibrate-cohorts
    bench_cmd.register(app)  # bench, bench index
    pad_cmd.register(app, eval_app)  # eval pad, train pad
    liveness_cmd.register(app)  # liveness challenge|check
    liveness_eval_cmd.register(app, eval_app)  # eval liveness, bench-liveness
    injection_eval_cmd.register(eval_app)  # eval injection
    readdigits_eval_cmd.register(eval_app)  # eval readdigits
    service_cmd.register(app)  # serve, tenant, audit, retention, keys, webhooks
    console_cmd.register(app)  # console user add
    demo_cmd.register(app)  # demo capture
    templates_cmd.register(app)  # templates status
    idcard_cmd.register(app)  # idcard read
    models_add_cmd.register(models_app)  # models add
    return app


app = build_app()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="shiren")


__all__ = ["app", "build_app", "main"]

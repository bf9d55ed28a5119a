"""``shiren console user add``: create a staff user of the review console.

Needs no models (it starts in well under a second) and acts on the database and keys the server
uses (``SHIREN_*``).  The generated password is printed once; only its scrypt hash is stored.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shiren.cli.common import emit, run_guarded

console_app = typer.Typer(help="The review console (staff sign-in).", no_args_is_help=True)
user_app = typer.Typer(help="Manage console users.", no_args_is_help=True)
console_app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Username (a-z 0-9 . _ -), unique.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant id the user works for.")],
    role: Annotated[str, typer.Option("--role", help="reviewer | auditor | admin.")] = "reviewer",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a console user and print a generated password — once."""
    from shiren.service.bootstrap import open_storage
    from shiren.service.console import make_auth

    def action() -> dict[str, str]:
        storage = open_storage()
        user, password = make_auth(storage.store, storage.keys).create_user(tenant, name, role)
        return {"user_id": user.id, "username": user.username, "role": user.role.value,
                "tenant_id": user.tenant_id, "password": password}  # fmt: skip

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        typer.echo(f"console user {result['username']} ({result['role']}) of {result['tenant_id']}")
        typer.echo(f"password (shown once, hand it over securely): {result['password']}")


def register(app: typer.Typer) -> None:
    app.add_typer(console_app, name="console")


__all__ = ["register"]

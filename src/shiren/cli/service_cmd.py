"""``shiren serve``, ``shiren tenant create`` and ``shiren audit verify``.

Settings come from the environment (``SHIREN_*``, see :mod:`shiren.service.settings`), exactly as
the server reads them, so the CLI always acts on the database and keys the server uses.  Tenant
creation and audit verification need no models, so they start in well under a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shiren.cli.main import emit, run_guarded

tenant_app = typer.Typer(help="Manage tenants (lenders).", no_args_is_help=True)
audit_app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)


def _store_and_keys() -> tuple[Any, Any]:
    from shiren.service.keys import resolve_keys
    from shiren.service.settings import load_settings
    from shiren.storage.sql import SqlStore, make_engine, migrate

    settings = load_settings()
    keys = resolve_keys(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)
    return SqlStore(engine), keys


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the REST service (migrates the configured database first)."""
    import uvicorn

    run_guarded(False, _store_and_keys)  # migrations + key checks before any worker starts
    uvicorn.run(
        "shiren.api.asgi:build",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
    )


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="The lender's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a tenant and print its API key — once: only a hash of it is stored."""
    from shiren.domain.entities import utcnow
    from shiren.service.app import create_tenant

    def action() -> dict[str, str]:
        store, keys = _store_and_keys()
        tenant, api_key = create_tenant(store, keys, name, utcnow())
        return {"tenant_id": tenant.id, "name": tenant.name, "api_key": api_key}

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        typer.echo(f"tenant {result['tenant_id']} ({result['name']})")
        typer.echo(f"API key (shown once, store it now): {result['api_key']}")


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant id (default: all tenants).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Verify the audit chain(s): exit 0 when intact, 1 when broken (first bad seq printed)."""
    from shiren.service.app import verify_audit

    def action() -> list[dict[str, Any]]:
        store, keys = _store_and_keys()
        if tenant is not None:
            ids = [tenant]
        else:
            with store() as uow:
                ids = [t.id for t in uow.tenants.list_all()]
        out = []
        for tid in ids:
            res = verify_audit(store, keys.audit_key, tid)
            out.append(
                {
                    "tenant_id": tid,
                    "ok": res.ok,
                    "checked": res.checked,
                    "first_bad_seq": res.first_bad_seq,
                    "problem": None if res.problem is None else res.problem.value,
                }
            )
        return out

    results = run_guarded(as_json, action)
    if as_json:
        emit(results)
    else:
        for r in results:
            if r["ok"]:
                typer.echo(f"ok      {r['tenant_id']}  {r['checked']} events")
            else:
                typer.echo(
                    f"BROKEN  {r['tenant_id']}  first bad seq {r['first_bad_seq']} "
                    f"({r['problem']}) after {r['checked']} good events"
                )
    if not all(r["ok"] for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(audit_app, name="audit")


__all__ = ["register"]

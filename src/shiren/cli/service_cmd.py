"""``shiren serve``, ``shiren tenant create``, ``shiren audit verify``, ``shiren retention
sweep``, ``shiren keys rotate|rotate-tenant`` and ``shiren webhooks deliver``.

Settings come from the environment (``SHIREN_*``, see :mod:`shiren.service.settings`) and the
storage is opened by the server's own composition root
(:func:`shiren.service.bootstrap.open_storage`), so the CLI always acts on the database and keys
the server uses.  Tenant
creation, audit verification, the retention sweep and key rotation need no models, so they start
in well under a second (and can run from cron).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded

tenant_app = typer.Typer(help="Manage tenants (lenders).", no_args_is_help=True)
audit_app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)
retention_app = typer.Typer(help="Enforce data retention.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage encryption keys.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Deliver webhooks from the outbox.", no_args_is_help=True)


def _production() -> bool:
    """Whether the settings say production (the webhook SSRF guard's loopback exception)."""
    from shiren.service.settings import load_settings

    return load_settings().env == "production"


def _check_plug_ins() -> None:
    """A lender's speech recogniser must import before the workers start (they call it)."""
    from shiren.models.speech import resolve_factory
    from shiren.service.settings import load_settings

    spec = load_settings().speech_recogniser
    if spec:
        resolve_factory(spec)


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Also deliver webhooks in a background thread.")
    ] = False,
) -> None:
    """Run the REST service (migrates the configured database first)."""
    import uvicorn

    from shiren.service.bootstrap import open_storage

    storage = run_guarded(False, open_storage)  # migrations + key checks first
    run_guarded(False, _check_plug_ins)  # a typed error here, not a traceback in a worker
    if deliver:
        from shiren.service.webhooks import WebhookDeliverer

        # One thread in the supervising process, whatever --workers says: several deliverers
        # would be safe (the claim is exclusive) but buy nothing here.
        WebhookDeliverer(storage.store, storage.keys, production=_production()).start_thread()
    from shiren.api.server import server_options  # slow-client deadlines (docs/RELIABILITY.md)

    uvicorn.run(
        "shiren.api.asgi:build",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(),
    )


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="The lender's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a tenant and print its API key — once: only a hash of it is stored."""
    from shiren.domain.entities import utcnow
    from shiren.service.app import create_tenant
    from shiren.service.bootstrap import open_storage

    def action() -> dict[str, str]:
        storage = open_storage()
        tenant, api_key = create_tenant(storage.store, storage.keys, name, utcnow())
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
    from shiren.service.bootstrap import open_storage

    def action() -> list[dict[str, Any]]:
        storage = open_storage()
        store, keys = storage.store, storage.keys
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


def _parse_now(text: str | None) -> Any:
    from datetime import UTC, datetime

    from shiren.domain.entities import utcnow
    from shiren.errors import InputError

    if text is None:
        return utcnow()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError("--now must be an ISO 8601 timestamp", detail={"field": "now"}) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@retention_app.command("sweep")
def retention_sweep(
    now: Annotated[
        str | None,
        typer.Option("--now", help="Sweep as of this ISO 8601 time, UTC if naive (default: now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete templates and evidence past their retention, clear the faces of pending reviews
    older than SHIREN_REVIEW_CANDIDATE_TTL_DAYS, expire stale sessions; audited.
    Idempotent: run it from cron as often as you like."""
    from shiren.service.app import sweep
    from shiren.service.bootstrap import open_storage

    def action() -> dict[str, int]:
        from shiren.service.fraud import gallery_sweeper
        from shiren.service.settings import load_settings

        at = _parse_now(now)
        settings = load_settings()
        storage = open_storage(settings)
        return sweep(
            storage.store,
            storage.keys.audit_key,
            at,
            review_candidate_ttl_days=settings.review_candidate_ttl_days,
            on_faces_deleted=gallery_sweeper(storage.sql),  # issue 6: the 1:N galleries
        ).to_dict()

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        typer.echo(
            f"deleted {result['templates']} templates and {result['evidence']} evidence rows, "
            f"cleared {result['review_candidates']} pending review faces, "
            f"expired {result['sessions_expired']} sessions ({result['tenants']} tenants)"
        )


@keys_app.command("rotate")
def keys_rotate(
    new_key_id: Annotated[
        str,
        typer.Option(
            "--new-key-id",
            help="The id of the new master key: must equal SHIREN_MASTER_KEY_ID (a confirmation "
            "that the intended key is the current one).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-wrap every tenant's data key under the new master key (SHIREN_MASTER_KEY), opening the
    old wrapping with SHIREN_RETIRED_MASTER_KEYS; one transaction per tenant, audited.

    No downtime: deploy the servers with the new key current and the old one retired first,
    then run this (again after a failure: done tenants are skipped); drop the retired key only
    when it reports 0 failed.  Exit 1 when some tenant could not be re-wrapped.
    """
    from shiren.domain.entities import utcnow
    from shiren.errors import InputError
    from shiren.service.app import rotate_master_key
    from shiren.service.bootstrap import open_storage

    def action() -> dict[str, Any]:
        storage = open_storage()
        if storage.keys.ring.current.key_id != new_key_id:
            raise InputError(
                "--new-key-id does not match SHIREN_MASTER_KEY_ID",
                detail={"field": "new_key_id"},
            )
        return rotate_master_key(storage.store, storage.keys, utcnow()).to_dict()

    result = run_guarded(as_json, action)
    if as_json:
        emit(result)
    else:
        typer.echo(
            f"master key {result['key_id']}: {result['rewrapped']} tenant keys re-wrapped, "
            f"{result['already_current']} already current, {len(result['failed'])} failed"
        )
        for tenant_id in result["failed"]:
            typer.echo(f"FAILED  {tenant_id}")
    if result["failed"]:
        raise typer.Exit(1)


@keys_app.command("rotate-tenant")
def keys_rotate_tenant(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The tenant whose data key to rotate.")
    ] = None,
    all_tenants: Annotated[bool, typer.Option("--all", help="Rotate every tenant's key.")] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace-s",
            help="Seconds to let requests that started before the new key finish (default 60).",
        ),
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replace a tenant's data key: a new key becomes current while the old one stays readable,
    every subject key and tenant-sealed field is re-sealed in batches, then the old key is
    dropped; audited (key.rotation_started, key.rotated).  No downtime; safe to interrupt:
    running it again resumes the rotation in progress."""
    from shiren.errors import InputError
    from shiren.service.bootstrap import open_storage
    from shiren.service.rotation import rotate_tenant_keys

    def action() -> list[dict[str, object]]:
        if (tenant is None) == (not all_tenants):
            raise InputError(
                "give exactly one of --tenant ID and --all", detail={"field": "tenant"}
            )
        storage = open_storage()
        store, keys = storage.store, storage.keys
        if tenant is not None:
            ids = [tenant]
        else:
            with store() as uow:
                ids = [t.id for t in uow.tenants.list_all()]
        return [r.to_dict() for r in rotate_tenant_keys(store, keys, ids, grace_s=grace)]

    results = run_guarded(as_json, action)
    if as_json:
        emit(results)
        return
    for r in results:
        typer.echo(
            f"tenant {r['tenant_id']}: data key v{r['from_version']} -> v{r['to_version']}, "
            f"{r['subject_keys_rewrapped']} subject keys re-wrapped, "
            f"{r['fields_resealed']} fields re-sealed" + (" (resumed)" if r["resumed"] else "")
        )


@webhooks_app.command("deliver")
def webhooks_deliver(
    once: Annotated[bool, typer.Option("--once", help="One batch, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between idle polls.")] = 2.0,
    max_attempts: Annotated[int, typer.Option(help="Attempts before a row fails.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --once).")] = False,
) -> None:
    """Claim due webhook rows, POST them signed, retry failures with back-off.  Safe to run
    in several processes at once: each row is claimed by one worker at a time."""
    import threading

    from shiren.service.bootstrap import open_storage
    from shiren.service.webhooks import WebhookDeliverer

    def make() -> WebhookDeliverer:
        storage = open_storage()
        return WebhookDeliverer(
            storage.store, storage.keys, max_attempts=max_attempts, production=_production()
        )

    deliverer = run_guarded(as_json, make)
    if once:
        result = run_guarded(as_json, lambda: deliverer.deliver_once().to_dict())
        if as_json:
            emit(result)
        else:
            typer.echo(
                f"delivered {result['delivered']}, retrying {result['retried']}, "
                f"failed {result['failed']}"
            )
        return
    stop = threading.Event()
    try:
        deliverer.run(stop, interval_s=interval)
    except KeyboardInterrupt:
        stop.set()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(audit_app, name="audit")
    app.add_typer(retention_app, name="retention")
    app.add_typer(keys_app, name="keys")
    app.add_typer(webhooks_app, name="webhooks")


__all__ = ["register"]

"""``shiren templates status``: which face networks the stored templates were made with (issue 14).

A deployment that changed its network (dlib's ResNet → MobileFaceNet) keeps every enrolled
borrower: a check uses the network of the subject's templates, and a passing step-up adds the
shipped network's template (src/shiren/service/matching.py).  This command shows how far that
migration has come, per tenant: templates by network and template version, and how many enrolled
subjects have no template of the shipped network yet.  Counts only: nothing is decrypted.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded

templates_app = typer.Typer(help="Stored face templates and their networks.", no_args_is_help=True)


def _status(store: Any, shipped: str) -> list[dict[str, Any]]:
    from shiren.service.matching import network_of

    rows: list[dict[str, Any]] = []
    with store() as uow:
        tenant_ids = [t.id for t in uow.tenants.list_all()]
        for tenant_id in tenant_ids:
            by: Counter[tuple[str, int]] = Counter()
            subjects: dict[str, set[str]] = {}
            after = ""
            while page := uow.templates.list_for_tenant(tenant_id, after_id=after, limit=1000):
                for t in page:
                    network = network_of(t.embedder)
                    by[(network, t.template_version)] += 1
                    subjects.setdefault(t.subject_id, set()).add(network)
                after = page[-1].id
            rows.append(
                {
                    "tenant": tenant_id,
                    "templates": [
                        {"network": n, "template_version": v, "count": c}
                        for (n, v), c in sorted(by.items())
                    ],
                    "subjects": len(subjects),
                    "subjects_without_shipped_network": sum(
                        1 for nets in subjects.values() if shipped not in nets
                    ),
                }
            )
    return rows


@templates_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Templates per tenant, by network and version; subjects still on an older network."""
    from shiren.service.bootstrap import open_storage
    from shiren.verifier import PROFILES

    shipped = PROFILES["standard"].embedder

    def action() -> dict[str, Any]:
        store = open_storage().store
        return {"shipped_network": shipped, "tenants": _status(store, shipped)}

    report = run_guarded(as_json, action)
    if as_json:
        emit(report)
        return
    typer.echo(f"shipped network: {shipped}")
    for row in report["tenants"]:
        typer.echo(
            f"tenant {row['tenant']}: {row['subjects']} subjects with templates, "
            f"{row['subjects_without_shipped_network']} not yet on {shipped}"
        )
        for t in row["templates"]:
            typer.echo(f"  {t['network']:24} v{t['template_version']}  {t['count']}")


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")


__all__ = ["register"]

"""``shiren bench index`` and ``shiren eval duplicates``: the anti-fraud measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiren.cli.common import emit, model_dict, run_guarded, verifier_for


def index_bench(
    n: Annotated[int, typer.Option("--n", min=100, help="Gallery size (templates).")] = 1_000_000,
    queries: Annotated[int, typer.Option(min=10, help="Probes for latency and recall.")] = 1000,
    adds: Annotated[int, typer.Option(min=10, help="Single inserts timed after the build.")] = 1000,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per query.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic gallery.")] = 7,
    backend: Annotated[
        str, typer.Option(help="ivf (embedded default) | hnsw (usearch) | exact | pgvector.")
    ] = "ivf",
    database_url: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URL for --backend pgvector (a scratch database)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="Build threads (0 = all cores).")] = 0,
) -> None:
    """Build an index of N synthetic 128-d templates; print add / query latency, memory and
    recall@1 against exact search as JSON."""
    from shiren.eval.index_bench import run_index_bench

    if backend not in ("ivf", "hnsw", "exact", "pgvector"):
        raise typer.BadParameter("--backend must be ivf, hnsw, exact or pgvector")
    if backend == "pgvector" and not database_url:
        raise typer.BadParameter("--backend pgvector needs --database-url")
    from shiren.eval.provenance import provenance

    report = run_index_bench(
        n,
        queries=queries,
        adds=adds,
        k=k,
        seed=seed,
        backend=backend,
        threads=threads,
        database_url=database_url,
    )
    settings = {k: v for k, v in report.items() if k in ("backend", "n", "k", "seed")}
    report["provenance"] = provenance({**settings, "threads": threads}, [])
    emit(report)


def duplicates(
    pairs: Annotated[Path, typer.Option("--pairs", help="LFW pairs.txt or CSV: its images.")],
    images: Annotated[Path, typer.Option("--images", help="Image folder (person/xxx.jpg).")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json).")],
    people: Annotated[
        int | None, typer.Option(min=4, help="Only the first N people (a small real slice).")
    ] = None,
    target: Annotated[float, typer.Option(help="Target false-hit rate.")] = 1e-3,
    k: Annotated[int, typer.Option(min=1, help="Hits per search.")] = 10,
    workers: Annotated[int, typer.Option(min=1, help="Template worker processes.")] = 2,
    cache: Annotated[Path | None, typer.Option("--cache", help="Template cache folder.")] = None,
    profile: Annotated[
        str, typer.Option(help="fast | standard | dlib-fast | dlib-standard | dlib-accurate.")
    ] = "standard",
) -> None:
    """1:N duplicate identities: first image enrolled, later images re-enrol under other ID
    numbers; detection and false-hit rates with a cross-validated threshold (report.json)."""
    from shiren.eval.duplicates import duplicates_report, person_of, score_probes
    from shiren.eval.embeddings import compute_templates
    from shiren.eval.pairs import read_pairs
    from shiren.eval.provenance import provenance, write_json
    from shiren.fraud.policy import load_fraud_policy
    from shiren.models.registry import default_model_dir

    def action() -> dict[str, Any]:
        if not images.is_dir():
            raise typer.BadParameter(f"--images {images} is not a folder")
        pair_list = read_pairs(pairs)
        rels = sorted({p.a for p in pair_list} | {p.b for p in pair_list})
        if people is not None:
            keep = set(sorted({person_of(r) for r in rels})[:people])
            rels = [r for r in rels if person_of(r) in keep]
        verifier = verifier_for(profile)
        found = compute_templates(
            verifier,
            images,
            rels,
            cache_dir=cache or default_model_dir().parent / "templates",
            workers=workers,
        )
        templates = {r: found.templates[r] for r in rels if r in found.templates}
        scores, gallery_size = score_probes(templates, k)
        policy = load_fraud_policy().for_network(verifier.embedder.info.name)
        report = duplicates_report(scores, gallery_size, policy.duplicate_threshold, target)
        report["images"] = len(rels)
        report["failed_images"] = len([r for r in rels if r in found.failures])
        report["provenance"] = provenance(
            {
                "pairs": pairs.name,
                "people": people,
                "k": k,
                "views": list(verifier.config.views),
                "metric": verifier.embedder.metric,
                "index": "usearch-hnsw",
                "policy_version": policy.version,
            },
            [model_dict(m) for m in verifier.models],
        )
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "report.json", report)
        return report

    report = run_guarded(True, action)
    emit(
        {k: report[k] for k in ("gallery_size", "mated_probes", "non_mated_probes")}
        | {
            "cross_validated": report["cross_validated"]["detection"]["rate"],
            "cross_validated_false_hit": report["cross_validated"]["false_hit"]["rate"],
            "at_policy_threshold": report["at_policy_threshold"],
        }
    )


def register(eval_app: typer.Typer) -> None:
    """``shiren eval duplicates`` (issue 6: 1:N duplicate identities); ``shiren bench index`` is
    attached by :mod:`shiren.cli.bench_cmd`."""
    eval_app.command("duplicates")(duplicates)


__all__ = ["duplicates", "index_bench", "register"]
